//! [`Settings`]: one connector's (or transform's) table of the pipeline file, as handed to
//! its factory, able to say which line a key came from.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The pipeline file's text, shared by every section for line lookups.
#[derive(Debug)]
pub(crate) struct SourceText {
    pub(crate) path: String,
    pub(crate) text: String,
}

impl SourceText {
    /// The 1-based line of a byte offset.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text
            .as_bytes()
            .get(..offset)
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
            + 1
    }
}

/// One table of the pipeline file: a source's, a sink's or a transform's own keys (the
/// keys the runtime handles, such as `name`, `type` and `topic`, are taken out first).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The section's `name`.
    pub name: String,
    /// The section's `type`.
    pub kind: String,
    /// `source`, `sink`, `transform` or `pipeline`: how problems name the section.
    pub role: &'static str,
    table: toml::Table,
    text: Arc<SourceText>,
    span: Range<usize>,
}

impl Settings {
    pub(crate) fn new(
        role: &'static str,
        name: String,
        kind: String,
        table: toml::Table,
        text: Arc<SourceText>,
        span: Range<usize>,
    ) -> Settings {
        Settings {
            name,
            kind,
            role,
            table,
            text,
            span,
        }
    }

    /// Settings built in code (tests, benchmarks): `table` as if read from a file.
    pub fn from_table(name: &str, kind: &str, table: toml::Table) -> Settings {
        let text = Arc::new(SourceText {
            path: "<code>".into(),
            text: String::new(),
        });
        Settings::new("connector", name.into(), kind.into(), table, text, 0..0)
    }

    /// The raw keys.
    pub fn table(&self) -> &toml::Table {
        &self.table
    }

    /// Deserializes the keys into the connector's config struct. Errors (a missing key, an
    /// unknown one, a wrong type) name the file, the line and the section. Use
    /// `#[serde(deny_unknown_fields)]` so typos are caught.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        toml::Value::Table(self.table.clone())
            .try_into::<T>()
            .map_err(|e| {
                let message = e.message().trim().to_string();
                // serde names the offending key in backticks: point at its line if present.
                let key = message
                    .split('`')
                    .nth(1)
                    .filter(|k| self.table.contains_key(*k));
                self.error(key, message.clone())
            })
    }

    /// A configuration error at `key`'s line (or the section's), naming the section.
    pub fn error(&self, key: Option<&str>, message: impl std::fmt::Display) -> Error {
        Error::config(self.problem(key, message))
    }

    /// A problem report at `key`'s line (or the section's): `FILE:LINE: role "name": message`.
    pub fn problem(&self, key: Option<&str>, message: impl std::fmt::Display) -> String {
        let message = message.to_string();
        // A connector's own check may already have placed its problem.
        if message.starts_with(&format!("{}:", self.text.path)) {
            return message;
        }
        let line = key
            .and_then(|k| self.line_of(k))
            .unwrap_or_else(|| self.line());
        format!(
            "{}:{line}: {} \"{}\": {message}",
            self.text.path, self.role, self.name
        )
    }

    /// The line the section starts at.
    pub fn line(&self) -> usize {
        self.text.line_at(self.span.start)
    }

    /// The line `key = ...` is on, within this section: from its header to the next
    /// top-level header (`[pipeline]`, `[[source]]`, `[[sink]]`).
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let body = self.text.text.get(self.span.start..)?;
        let mut offset = self.span.start;
        for (i, line) in body.split_inclusive('\n').enumerate() {
            let trimmed = line.trim_start();
            let top_level_header = trimmed.starts_with('[')
                && !trimmed
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .contains('.');
            if i > 0 && top_level_header {
                return None;
            }
            if let Some(rest) = trimmed.strip_prefix(key)
                && rest.trim_start().starts_with('=')
            {
                return Some(self.text.line_at(offset));
            }
            offset += line.len();
        }
        None
    }

    /// A path from the settings, relative paths taken from the pipeline file's folder.
    pub fn resolve_path(&self, path: &str) -> std::path::PathBuf {
        let path = Path::new(path);
        if path.is_absolute() || self.text.path == "<code>" {
            return path.to_path_buf();
        }
        match Path::new(&self.text.path).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }
}
