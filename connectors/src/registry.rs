//! Connector kinds by the `type` a pipeline file gives them.

use crate::config::Settings;
use crate::error::Result;
use crate::sink::Sink;
use crate::source::Source;

/// The source types.
pub const SOURCE_KINDS: &[&str] = &["postgres", "mysql", "sqlite"];
/// The sink types.
pub const SINK_KINDS: &[&str] = &["postgres", "mysql", "sqlite"];

/// Builds the source a section describes (parsing its keys; nothing is opened yet).
pub fn source(settings: &Settings) -> Result<Box<dyn Source>> {
    match settings.kind.as_str() {
        "postgres" => Ok(Box::new(crate::postgres::source::build(settings)?)),
        "sqlite" => Ok(Box::new(crate::sqlite::source::build(settings)?)),
        "mysql" => Ok(Box::new(crate::mysql::source::build(settings)?)),
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
        "postgres" => Ok(Box::new(crate::postgres::sink::build(settings)?)),
        "sqlite" => Ok(Box::new(crate::sqlite::sink::build(settings)?)),
        "mysql" => Ok(Box::new(crate::mysql::sink::build(settings)?)),
        other => Err(settings.error(
            Some("type"),
            format!(
                "unknown sink type `{other}`: use one of {}",
                SINK_KINDS.join(", ")
            ),
        )),
    }
}
