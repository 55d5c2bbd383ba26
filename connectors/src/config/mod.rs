//! Pipeline files: TOML or YAML naming a pipeline's sources, sinks and their transforms.
//!
//! ```toml
//! [pipeline]
//! name = "orders"              # default: the file's stem
//! on_error = "dead_letter"     # fail (default) | skip | dead_letter
//!
//! [[source]]
//! name = "orders-csv"
//! type = "file"
//! path = "orders/*.csv"        # relative paths start at the pipeline file's folder
//! format = "csv"
//! topic = "orders"
//! key = ["order_id"]
//!
//! [[source.transform]]
//! type = "cast"
//! fields = { amount = "DOUBLE" }
//!
//! [[sink]]
//! name = "warehouse"
//! type = "postgres"
//! topics = ["orders"]
//! url = "postgres://postgres:${PG_PASSWORD:-}@127.0.0.1/test"
//! table = "orders"
//! mode = "upsert"
//! ```
//!
//! A file named `*.yaml` or `*.yml` holds the same document in YAML: a `pipeline:` mapping
//! and `source:` and `sink:` lists of mappings, each with an optional `transform:` list
//! (`yaml.rs` says how values map, and why a null is a problem):
//!
//! ```yaml
//! pipeline:
//!   name: orders
//! source:
//!   - name: orders-csv
//!     type: file
//!     path: orders/*.csv
//!     topic: orders
//!     transform:
//!       - type: cast
//!         fields: { amount: DOUBLE }
//! ```
//!
//! Reading (`raw.rs` for TOML, `yaml.rs`) turns either syntax into the same TOML tables,
//! with the byte span of each section; everything after that is shared (`section.rs`
//! splits each section), so connectors never learn which syntax a file used. Loading
//! reports every problem at once, each with the line it came from: the runtime's own keys
//! are checked here, each connector's and transform's keys by its factory. `${NAME}` in
//! strings is replaced from the environment ([`env`]).

pub mod env;
mod raw;
mod section;
mod settings;
#[cfg(test)]
mod tests;
mod yaml;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use raw::RawDocument;
use section::section;
pub use settings::Settings;
pub(crate) use settings::{SourceText, Syntax};

use crate::error::{Error, Result};

/// What to do with a record that cannot be read, converted or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop the pipeline, naming the record's position (the default).
    #[default]
    Fail,
    /// Count it and go on.
    Skip,
    /// Write it, with the error and its position in headers, to the dead-letter topic.
    DeadLetter,
}

/// The `[pipeline]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// The pipeline's name: positions, consumer groups and the dead-letter topic are named
    /// after it. Default: the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Bad-record policy for every connector that does not set its own.
    #[serde(default)]
    pub on_error: OnError,
    /// The dead-letter topic. Default: `<name>.dead-letter`.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// How often sinks commit, in milliseconds (default 5000).
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// How long a connector keeps retrying an outside failure (a database down, a disk
    /// full) before the pipeline fails, in milliseconds (default 300000).
    #[serde(default = "default_retry_timeout_ms")]
    pub retry_timeout_ms: u64,
}

fn default_retry_timeout_ms() -> u64 {
    300_000
}

fn default_commit_interval_ms() -> u64 {
    5_000
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            name: None,
            on_error: OnError::Fail,
            dead_letter_topic: None,
            commit_interval_ms: default_commit_interval_ms(),
            retry_timeout_ms: default_retry_timeout_ms(),
        }
    }
}

/// A string or a list of strings (`key = "id"` or `key = ["a", "b"]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
    /// Not given.
    #[default]
    #[serde(skip)]
    None,
}

impl OneOrMany {
    /// As a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
            OneOrMany::None => Vec::new(),
        }
    }
}

/// The keys every source has, handled by the runtime.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceCommon {
    /// Its name (unique among the pipeline's sources and sinks).
    pub name: String,
    /// Which connector (`file`, `parquet`, `postgres`, `mysql`, `sqlite`, `stdin`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The topic written; `{stream}` is replaced by the batch's stream (a table's name).
    pub topic: String,
    /// Fields forming the record key (default: the source's, e.g. a primary key).
    #[serde(default)]
    pub key: OneOrMany,
    /// How record values are encoded in the topic: json (default), csv, avro, raw.
    #[serde(default = "default_value_format")]
    pub value_format: String,
    /// Partitions of the topic if the pipeline creates it (default 1).
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// A field holding the record's timestamp (TIMESTAMP, DATE or epoch milliseconds);
    /// default: the time it was read.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Rows per poll (default 10 000).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// How long one log transaction may stay open while the source has more to read, in
    /// milliseconds (default 200): batches read back to back share a transaction, whose
    /// records and the position after its last batch commit together. A source with
    /// nothing new, or done, commits at once. 0: one transaction per batch.
    #[serde(default = "default_transaction_interval_ms")]
    pub transaction_interval_ms: u64,
    /// Bad-record policy (default: the pipeline's).
    #[serde(default)]
    pub on_error: Option<OnError>,
}

/// The keys every sink has, handled by the runtime.
#[derive(Debug, Clone, Deserialize)]
pub struct SinkCommon {
    /// Its name (unique among the pipeline's sources and sinks).
    pub name: String,
    /// Which connector (`file`, `parquet`, `postgres`, `mysql`, `sqlite`, `stdout`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The topics read (`topic` is accepted for one).
    #[serde(default, alias = "topic")]
    pub topics: OneOrMany,
    /// How record values are encoded: json (default), csv, avro, raw.
    #[serde(default)]
    pub value_format: Option<String>,
    /// The columns of the records (`id BIGINT, name VARCHAR`); default: the topic's schema
    /// entry, left by the source that wrote it, else inferred from the first records (JSON).
    #[serde(default)]
    pub schema: Option<String>,
    /// Fields forming the key: what upserts match and tombstones name (default: the
    /// topic's schema entry).
    #[serde(default)]
    pub key: OneOrMany,
    /// The consumer group (default `sluice-connect.<pipeline>.<sink>`).
    #[serde(default)]
    pub group: Option<String>,
    /// Where to start without committed offsets: earliest (default) or latest.
    #[serde(default = "default_start")]
    pub start: String,
    /// Records per write (default 10 000).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Bad-record policy (default: the pipeline's).
    #[serde(default)]
    pub on_error: Option<OnError>,
}

fn default_value_format() -> String {
    "json".into()
}
fn default_partitions() -> i32 {
    1
}
fn default_batch_rows() -> usize {
    10_000
}
fn default_transaction_interval_ms() -> u64 {
    200
}
fn default_start() -> String {
    "earliest".into()
}

/// Keys of [`SourceCommon`] and [`SinkCommon`] and the transform list: taken out of a
/// section before its connector sees it.
const SOURCE_KEYS: &[&str] = &[
    "name",
    "type",
    "topic",
    "key",
    "value_format",
    "partitions",
    "timestamp",
    "batch_rows",
    "transaction_interval_ms",
    "on_error",
    "transform",
];
const SINK_KEYS: &[&str] = &[
    "name",
    "type",
    "topics",
    "topic",
    "value_format",
    "schema",
    "key",
    "group",
    "start",
    "batch_rows",
    "on_error",
    "transform",
];

/// A source of the file: the runtime's keys, its transforms and its connector's settings.
#[derive(Debug, Clone)]
pub struct SourceSection {
    /// The runtime's keys.
    pub common: SourceCommon,
    /// Transforms applied to its rows, in order.
    pub transforms: Vec<Settings>,
    /// The connector's keys.
    pub settings: Settings,
}

/// A sink of the file.
#[derive(Debug, Clone)]
pub struct SinkSection {
    /// The runtime's keys.
    pub common: SinkCommon,
    /// Transforms applied to its rows, in order.
    pub transforms: Vec<Settings>,
    /// The connector's keys.
    pub settings: Settings,
}

/// A parsed pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    /// The `[pipeline]` table, its name filled in.
    pub pipeline: PipelineSettings,
    /// The pipeline's name.
    pub name: String,
    /// Sources in file order.
    pub sources: Vec<SourceSection>,
    /// Sinks in file order.
    pub sinks: Vec<SinkSection>,
}

impl PipelineFile {
    /// Reads and parses a pipeline file, substituting `${NAME}` from the environment. A
    /// file named `*.yaml` or `*.yml` is read as YAML, any other as TOML.
    pub fn load(path: &Path) -> Result<PipelineFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        PipelineFile::parse_as(
            Syntax::of_path(path),
            &path.display().to_string(),
            &text,
            &|name| std::env::var(name).ok(),
        )
    }

    /// Parses pipeline-file text in TOML; `origin` names it in errors. Every problem found
    /// is reported, one per line of the error.
    pub fn parse(
        origin: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineFile> {
        PipelineFile::parse_as(Syntax::Toml, origin, text, env)
    }

    /// Parses pipeline-file text in YAML, as [`PipelineFile::parse`] does TOML: the same
    /// document, the same checks, problems at the lines of the YAML text.
    pub fn parse_yaml(
        origin: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineFile> {
        PipelineFile::parse_as(Syntax::Yaml, origin, text, env)
    }

    fn parse_as(
        syntax: Syntax,
        origin: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineFile> {
        let shared = Arc::new(SourceText {
            path: origin.to_string(),
            text: text.to_string(),
            syntax,
        });
        let raw: RawDocument = match syntax {
            Syntax::Toml => raw::read_toml(&shared)?,
            Syntax::Yaml => yaml::read(&shared)?,
        };
        let mut problems = raw.problems;

        let stem = Path::new(origin)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into());
        let pipeline = match raw.pipeline {
            Some(section) => {
                let mut value = toml::Value::Table(section.table);
                env::substitute_value(&mut value, env, &mut problems);
                let settings = Settings::new(
                    "pipeline",
                    stem.clone(),
                    "pipeline".into(),
                    value.as_table().cloned().unwrap_or_default(),
                    shared.clone(),
                    section.span,
                );
                for (line, message) in section.problems {
                    problems.push(settings.problem_at(line, message));
                }
                match settings.parse::<PipelineSettings>() {
                    Ok(p) => p,
                    Err(e) => {
                        problems.push(e.to_string());
                        PipelineSettings::default()
                    }
                }
            }
            None => PipelineSettings::default(),
        };
        let name = pipeline.name.clone().unwrap_or(stem);

        let mut sources = Vec::new();
        for (i, raw_section) in raw.source.into_iter().enumerate() {
            if let Some(section) = section::<SourceCommon>(
                raw_section,
                "source",
                i,
                SOURCE_KEYS,
                &shared,
                env,
                &mut problems,
            ) {
                let (common, transforms, settings) = section;
                if common.partitions < 1 {
                    problems.push(
                        settings.problem(Some("partitions"), "partitions must be at least 1"),
                    );
                }
                if common.batch_rows == 0 {
                    problems.push(
                        settings.problem(Some("batch_rows"), "batch_rows must be at least 1"),
                    );
                }
                check_format(&settings, &common.value_format, &mut problems);
                sources.push(SourceSection {
                    common,
                    transforms,
                    settings,
                });
            }
        }
        let mut sinks = Vec::new();
        for (i, raw_section) in raw.sink.into_iter().enumerate() {
            if let Some((common, transforms, settings)) = section::<SinkCommon>(
                raw_section,
                "sink",
                i,
                SINK_KEYS,
                &shared,
                env,
                &mut problems,
            ) {
                if common.topics.to_vec().is_empty() {
                    let example = syntax.spell("topics = [\"orders\"]", "topics: [orders]");
                    problems.push(
                        settings.problem(None, format!("name the topics it reads: {example}")),
                    );
                }
                if !matches!(common.start.as_str(), "earliest" | "latest") {
                    problems
                        .push(settings.problem(Some("start"), "start is `earliest` or `latest`"));
                }
                if let Some(format) = &common.value_format {
                    check_format(&settings, format, &mut problems);
                }
                if let Some(schema) = &common.schema
                    && let Err(e) = crate::schema::parse_schema(schema)
                {
                    problems.push(settings.problem(Some("schema"), e));
                }
                sinks.push(SinkSection {
                    common,
                    transforms,
                    settings,
                });
            }
        }
        if sources.is_empty() && sinks.is_empty() && problems.is_empty() {
            let sections = syntax.spell("[[source]] and no [[sink]]", "`source:` and no `sink:`");
            problems.push(format!(
                "{origin}: the pipeline has no {sections}: add at least one"
            ));
        }
        let mut names = std::collections::HashSet::new();
        for settings in sources
            .iter()
            .map(|s| &s.settings)
            .chain(sinks.iter().map(|s| &s.settings))
        {
            if !names.insert(settings.name.clone()) {
                problems
                    .push(settings.problem(Some("name"), "another source or sink has this name"));
            }
        }
        if !problems.is_empty() {
            return Err(Error::config(problems.join("\n")));
        }
        Ok(PipelineFile {
            pipeline,
            name,
            sources,
            sinks,
        })
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> String {
        self.pipeline
            .dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}.dead-letter", self.name))
    }

    /// How long outside failures are retried.
    pub fn retry_timeout(&self) -> Duration {
        Duration::from_millis(self.pipeline.retry_timeout_ms)
    }

    /// How often sinks commit.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.pipeline.commit_interval_ms.max(1))
    }
}

fn check_format(settings: &Settings, format: &str, problems: &mut Vec<String>) {
    if !crate::convert::FORMATS.contains(&format) {
        problems.push(settings.problem(
            Some("value_format"),
            format!(
                "unknown value_format `{format}`: use {}",
                crate::convert::FORMATS.join(", ")
            ),
        ));
    }
}
