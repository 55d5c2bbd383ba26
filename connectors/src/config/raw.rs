//! A pipeline file's sections as read, before anything is checked: what the TOML reader
//! (here) and the YAML reader ([`super::yaml`]) both produce, so every check after reading
//! (the runtime's keys, each connector's and transform's) is the same for both syntaxes.
//!
//! Invariant: every span is a byte range of the file's text, starting on the section's
//! first line, so [`super::Settings`] can find the lines of its keys.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::settings::SourceText;
use crate::error::{Error, Result};

/// The file's sections in file order, and what reading found wrong outside them.
#[derive(Debug, Default)]
pub(super) struct RawDocument {
    pub(super) pipeline: Option<RawSection>,
    pub(super) source: Vec<RawSection>,
    pub(super) sink: Vec<RawSection>,
    /// Whole problem lines (`FILE:LINE: message`) about the document's shape, reported
    /// with the checks' problems rather than instead of them.
    pub(super) problems: Vec<String>,
}

/// One `pipeline`, `source` or `sink` section.
#[derive(Debug)]
pub(super) struct RawSection {
    pub(super) table: toml::Table,
    /// The section's bytes in the file.
    pub(super) span: Range<usize>,
    /// Each transform's bytes, where the syntax gives them (YAML); empty when they are only
    /// known to lie inside `span` (TOML).
    pub(super) transform_spans: Vec<Range<usize>>,
    /// Values the reader could not carry into `table` (a YAML null), by line: the section
    /// is not named yet, so the caller words them as its other problems.
    pub(super) problems: Vec<(usize, String)>,
}

impl RawSection {
    fn toml(table: Spanned<toml::Table>) -> RawSection {
        let span = table.span();
        RawSection {
            table: table.into_inner(),
            span,
            transform_spans: Vec::new(),
            problems: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    pipeline: Option<Spanned<toml::Table>>,
    #[serde(default)]
    source: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    sink: Vec<Spanned<toml::Table>>,
}

/// Reads TOML text; a syntax error (or a top-level key other than `pipeline`, `source`
/// and `sink`) is the one error returned, at its line.
pub(super) fn read_toml(text: &SourceText) -> Result<RawDocument> {
    let file: TomlFile = toml::from_str(&text.text).map_err(|e| {
        let line = e.span().map(|s| text.line_at(s.start)).unwrap_or(1);
        Error::config(format!("{}:{line}: {}", text.path, e.message().trim()))
    })?;
    Ok(RawDocument {
        pipeline: file.pipeline.map(RawSection::toml),
        source: file.source.into_iter().map(RawSection::toml).collect(),
        sink: file.sink.into_iter().map(RawSection::toml).collect(),
        problems: Vec::new(),
    })
}
