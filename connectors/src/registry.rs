//! Connector kinds by the `type` a pipeline file gives them, and [`Extensions`]: kinds a
//! program adds (the `sluice` binary adds the `sql` transform; tests add their own).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Settings;
use crate::error::Result;
use crate::sink::Sink;
use crate::source::Source;
use crate::transform::Transform;

/// Builds a source from its settings.
pub type SourceFactory = Arc<dyn Fn(&Settings) -> Result<Box<dyn Source>> + Send + Sync>;
/// Builds a sink from its settings.
pub type SinkFactory = Arc<dyn Fn(&Settings) -> Result<Box<dyn Sink>> + Send + Sync>;
/// Builds a transform from its settings.
pub type TransformFactory = Arc<dyn Fn(&Settings) -> Result<Box<dyn Transform>> + Send + Sync>;

/// Source, sink and transform types added to the built-in ones (an added type of the same
/// name takes precedence).
#[derive(Clone, Default)]
pub struct Extensions {
    sources: HashMap<String, SourceFactory>,
    sinks: HashMap<String, SinkFactory>,
    transforms: HashMap<String, TransformFactory>,
}

impl Extensions {
    /// No extensions.
    pub fn new() -> Extensions {
        Extensions::default()
    }

    /// Adds a source type.
    pub fn source(
        mut self,
        kind: &str,
        factory: impl Fn(&Settings) -> Result<Box<dyn Source>> + Send + Sync + 'static,
    ) -> Self {
        self.sources.insert(kind.to_string(), Arc::new(factory));
        self
    }

    /// Adds a sink type.
    pub fn sink(
        mut self,
        kind: &str,
        factory: impl Fn(&Settings) -> Result<Box<dyn Sink>> + Send + Sync + 'static,
    ) -> Self {
        self.sinks.insert(kind.to_string(), Arc::new(factory));
        self
    }

    /// Adds a transform type.
    pub fn transform(
        mut self,
        kind: &str,
        factory: impl Fn(&Settings) -> Result<Box<dyn Transform>> + Send + Sync + 'static,
    ) -> Self {
        self.transforms.insert(kind.to_string(), Arc::new(factory));
        self
    }

    pub(crate) fn build_source(&self, settings: &Settings) -> Result<Box<dyn Source>> {
        match self.sources.get(&settings.kind) {
            Some(factory) => factory(settings),
            None => source(settings),
        }
    }

    pub(crate) fn build_sink(&self, settings: &Settings) -> Result<Box<dyn Sink>> {
        match self.sinks.get(&settings.kind) {
            Some(factory) => factory(settings),
            None => sink(settings),
        }
    }

    pub(crate) fn transform_factory(&self, kind: &str) -> Option<&TransformFactory> {
        self.transforms.get(kind)
    }
}

/// The source types.
pub const SOURCE_KINDS: &[&str] = &[
    "file",
    "parquet",
    "stdin",
    "postgres",
    "postgres-cdc",
    "mysql",
    "sqlite",
];
/// The sink types.
pub const SINK_KINDS: &[&str] = &["file", "parquet", "stdout", "postgres", "mysql", "sqlite"];

/// Builds the source a section describes (parsing its keys; nothing is opened yet).
pub fn source(settings: &Settings) -> Result<Box<dyn Source>> {
    match settings.kind.as_str() {
        "file" => Ok(Box::new(crate::file::FileSource::new(settings)?)),
        "parquet" => Ok(Box::new(crate::parquet::ParquetSource::new(settings)?)),
        "stdin" => Ok(Box::new(crate::stdio::StdinSource::new(settings)?)),
        "postgres-cdc" => Ok(Box::new(crate::pgcdc::PostgresCdcSource::new(settings)?)),
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
        "file" => Ok(Box::new(crate::file::FileSink::new(settings)?)),
        "parquet" => Ok(Box::new(crate::parquet::ParquetSink::new(settings)?)),
        "stdout" => Ok(Box::new(crate::stdio::StdoutSink::new(settings)?)),
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
