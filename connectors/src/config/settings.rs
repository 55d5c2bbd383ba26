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
    /// How keys are written in `text`: what [`Settings::line_of`] looks for.
    pub(crate) syntax: Syntax,
}

/// The syntax of a pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// `key = value`, sections as `[[source]]` tables.
    Toml,
    /// `key: value`, sections as items of the `source:` and `sink:` lists.
    Yaml,
}

impl Syntax {
    /// By the file's extension: `.yaml` and `.yml` are YAML, anything else TOML.
    pub(crate) fn of_path(path: &Path) -> Syntax {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") => {
                Syntax::Yaml
            }
            _ => Syntax::Toml,
        }
    }

    /// The TOML or the YAML spelling of an example in a message.
    pub(crate) fn spell(self, toml: &'static str, yaml: &'static str) -> &'static str {
        match self {
            Syntax::Toml => toml,
            Syntax::Yaml => yaml,
        }
    }
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
            syntax: Syntax::Toml,
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
        let line = key
            .and_then(|k| self.line_of(k))
            .unwrap_or_else(|| self.line());
        self.problem_at(line, message)
    }

    /// A problem report at a line the reader found: `FILE:LINE: role "name": message`.
    pub(crate) fn problem_at(&self, line: usize, message: impl std::fmt::Display) -> String {
        let message = message.to_string();
        // A connector's own check may already have placed its problem.
        if message.starts_with(&format!("{}:", self.text.path)) {
            return message;
        }
        format!(
            "{}:{line}: {} \"{}\": {message}",
            self.text.path, self.role, self.name
        )
    }

    /// The line the section starts at.
    pub fn line(&self) -> usize {
        self.text.line_at(self.span.start)
    }

    /// The line `key` is set on within this section (`key = ...` in TOML, `key: ...` in
    /// YAML); `None` if the section does not set it on a line of its own.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        match self.text.syntax {
            Syntax::Toml => self.toml_line_of(key),
            Syntax::Yaml => self.yaml_line_of(key),
        }
    }

    /// TOML: from the section's header to the next top-level header (`[pipeline]`,
    /// `[[source]]`, `[[sink]]`).
    fn toml_line_of(&self, key: &str) -> Option<usize> {
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

    /// YAML: the span is the section's mapping, which starts at its first key; its own keys
    /// are the lines with a key at that column (keys of nested mappings sit further right).
    /// Only `- ` and indentation come before a key in block style, so the column is the
    /// same in bytes and in characters.
    fn yaml_line_of(&self, key: &str) -> Option<usize> {
        let text = &self.text.text;
        let line_start = text
            .get(..self.span.start)?
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let column = self.span.start - line_start;
        let body = text.get(line_start..self.span.end)?;
        let mut offset = line_start;
        for line in body.split_inclusive('\n') {
            let indent_only = line
                .get(..column)
                .is_some_and(|before| before.bytes().all(|b| b == b' ' || b == b'-'));
            if indent_only
                && let Some(rest) = line.get(column..)
                && yaml_key_is(rest, key)
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

/// Whether a YAML line (from its key's column) sets `key`: `key:`, `"key":` or `'key':`.
fn yaml_key_is(line: &str, key: &str) -> bool {
    let rest = [("", ""), ("\"", "\""), ("'", "'")]
        .iter()
        .find_map(|(open, close)| {
            line.strip_prefix(open)?
                .strip_prefix(key)?
                .strip_prefix(close)
        });
    // A plain key ends at `:` followed by a space or the line's end (`key:value` is a
    // plain scalar, not a key).
    rest.and_then(|r| r.trim_start_matches(' ').strip_prefix(':'))
        .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\n', '\r']))
}
