//! Connector kinds by the `type` a pipeline file gives them.

use crate::config::Settings;
use crate::error::Result;
use crate::sink::Sink;
use crate::source::Source;

/// The source types.
pub const SOURCE_KINDS: &[&str] = &["file", "parquet", "stdin"];
/// The sink types.
pub const SINK_KINDS: &[&str] = &["file", "parquet", "stdout"];

/// Builds the source a section describes (parsing its keys; nothing is opened yet).
pub fn source(settings: &Settings) -> Result<Box<dyn Source>> {
    match settings.kind.as_str() {
        "file" => Ok(Box::new(crate::file::FileSource::new(settings)?)),
        "parquet" => Ok(Box::new(crate::parquet::ParquetSource::new(settings)?)),
        "stdin" => Ok(Box::new(crate::stdio::StdinSource::new(settings)?)),
        other => Err(settings.error(
            Some("type"),
            format!(
                "unknown source type `{other}`: use one of {}",
                SOURCE_KINDS.join(", ")
            ),
        )),
    }
}

/// Builds the sink a section describes (parsing its keys; nothing is opened yet).
pub fn sink(settings: &Settings) -> Result<Box<dyn Sink>> {
    match settings.kind.as_str() {
        "file" => Ok(Box::new(crate::file::FileSink::new(settings)?)),
        "parquet" => Ok(Box::new(crate::parquet::ParquetSink::new(settings)?)),
        "stdout" => Ok(Box::new(crate::stdio::StdoutSink::new(settings)?)),
        other => Err(settings.error(
            Some("type"),
            format!(
                "unknown sink type `{other}`: use one of {}",
                SINK_KINDS.join(", ")
            ),
        )),
    }
}
