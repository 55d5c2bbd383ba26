//! The `file` connectors: a source reading text files (lines, JSON lines, CSV) once or as
//! they grow, and a sink writing them exactly once. The user reference is
//! `docs/connectors/file.md`.
//!
//! # Layout
//!
//! - [`parse`]: records to rows in bulk, shared with the `stdin` source; `csv_fast`, its
//!   fast path for CSV (the same rows as arrow's decoder, or it hands the chunk over).
//! - [`discover`]: which files a path, directory or glob names, in name order.
//! - [`source`]: the source, its modes and positions.
//! - [`commit`]: the manifest protocol that makes file sinks (this one and `parquet`)
//!   exactly-once.
//! - [`roll`]: open data files rolled by rows, bytes and age (shared with `parquet`).
//! - [`sink`]: the sink and its text encoders.

mod ahead;
pub mod commit;
mod csv_fast;
pub mod discover;
pub mod parse;
pub mod roll;
pub mod sink;
pub mod source;

use serde::Deserialize;

pub use parse::{CsvOptions, TextFormat};
pub use sink::FileSink;
pub use source::FileSource;

use crate::config::Settings;
use crate::error::Result;

/// How a source reads its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    /// Every matching file, then done.
    #[default]
    Once,
    /// Keep following: appended bytes, new files, rotation.
    Tail,
}

/// The checked text keys shared by the `file` and `stdin` sources.
#[derive(Debug, Clone)]
pub(crate) struct TextSettings {
    pub(crate) format: TextFormat,
    pub(crate) csv: CsvOptions,
    pub(crate) declared: Option<arrow::datatypes::SchemaRef>,
}

impl TextSettings {
    /// Checks the format keys; the format defaults to the path's extension.
    pub(crate) fn check(
        settings: &Settings,
        format: Option<TextFormat>,
        path: &str,
        columns: Option<&str>,
        header: bool,
        delimiter: Option<&str>,
        quote: Option<&str>,
    ) -> Result<TextSettings> {
        let format = match format {
            Some(format) => format,
            None => match path.rsplit('.').next() {
                Some("csv") => TextFormat::Csv,
                Some("jsonl" | "ndjson" | "json") => TextFormat::Jsonl,
                _ => TextFormat::Lines,
            },
        };
        let declared = match columns {
            Some(_) if format == TextFormat::Lines => {
                return Err(settings.error(
                    Some("columns"),
                    "format `lines` has one column, `line`: columns are for jsonl and csv",
                ));
            }
            Some(columns) => Some(
                crate::schema::parse_schema(columns)
                    .map_err(|e| settings.error(Some("columns"), e))?,
            ),
            None => None,
        };
        let byte = |key: &str, value: Option<&str>, default: u8| match value {
            None => Ok(default),
            Some(v) if v.len() == 1 => Ok(v.as_bytes()[0]),
            Some("\\t") => Ok(b'\t'),
            Some(v) => Err(settings.error(
                Some(key),
                format!("{key} is one ASCII character (\",\", \";\", \"\\t\"), not `{v}`"),
            )),
        };
        let csv = CsvOptions {
            header,
            delimiter: byte("delimiter", delimiter, b',')?,
            quote: byte("quote", quote, b'"')?,
        };
        Ok(TextSettings {
            format,
            csv,
            declared,
        })
    }
}
