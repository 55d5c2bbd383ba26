//! YAML pipeline files: the TOML form's document written as YAML, read into the same
//! [`RawDocument`] so connectors never learn which syntax a file used.
//!
//! ```yaml
//! pipeline:
//!   name: orders
//! source:                     # `[[source]]` tables become the items of one list
//!   - name: orders-csv
//!     type: file
//!     path: orders/*.csv
//!     topic: orders
//!     transform:              # `[[source.transform]]` likewise
//!       - type: cast
//!         fields: { amount: DOUBLE }
//! sink:
//!   - name: warehouse
//!     type: postgres
//!     topics: [orders]
//!     url: postgres://postgres@127.0.0.1/test
//! ```
//!
//! Values map to TOML's kinds: strings, integers, floats, booleans, sequences (arrays) and
//! mappings (tables); YAML 1.2's core schema decides which a plain scalar is (`yes` is a
//! string, `0x1F` an integer). Anchors and aliases are expanded (with the parser's bound
//! on how much). TOML has no null, so a null (`key:` with nothing after it, `~`, `null`)
//! is a problem at its line; so is a mapping key that is not a string, and a tag other
//! than the core schema's (`!!str`).
//! A syntax error or a duplicate key stops reading: it is the one error, at its line.

use std::ops::Range;

use saphyr::{LoadableYamlNode, MarkedYaml, Marker, Scalar, YamlData};

use super::raw::{RawDocument, RawSection};
use super::settings::SourceText;
use crate::error::{Error, Result};

/// Reads YAML text into the sections the TOML reader gives.
pub(super) fn read(text: &SourceText) -> Result<RawDocument> {
    let path = &text.path;
    let documents = MarkedYaml::load_from_str(&text.text)
        .map_err(|e| Error::config(format!("{path}:{}: {}", e.marker().line(), e.info())))?;
    let root = match documents.as_slice() {
        [] => return Ok(RawDocument::default()),
        [root] => root,
        [_, second, ..] => {
            return Err(Error::config(format!(
                "{path}:{}: a pipeline file is one YAML document: this is a second one \
                 (remove the `---` before it)",
                second.span.start.line()
            )));
        }
    };
    let mut document = RawDocument::default();
    let entries = match &root.data {
        YamlData::Mapping(entries) => entries,
        YamlData::Value(Scalar::Null) => return Ok(document),
        _ => {
            return Err(Error::config(format!(
                "{path}:{}: a pipeline file is a mapping with the keys `pipeline`, \
                 `source` and `sink`",
                root.span.start.line()
            )));
        }
    };
    let reader = Reader { text };
    for (key, value) in entries {
        let line = key.span.start.line();
        match key.data.as_str() {
            Some("pipeline") => match &value.data {
                YamlData::Mapping(_) => document.pipeline = Some(reader.section(value)),
                _ => document.problems.push(format!(
                    "{path}:{line}: `pipeline` is a mapping of keys (`name: orders`)"
                )),
            },
            Some(list @ ("source" | "sink")) => {
                let YamlData::Sequence(items) = &value.data else {
                    document.problems.push(format!(
                        "{path}:{line}: `{list}` is a list: start each {list} with `- name: ...`"
                    ));
                    continue;
                };
                for item in items {
                    if !matches!(item.data, YamlData::Mapping(_)) {
                        document.problems.push(format!(
                            "{path}:{}: each {list} is a mapping of keys (`- name: ...`)",
                            item.span.start.line()
                        ));
                        continue;
                    }
                    let section = reader.section(item);
                    match list {
                        "source" => document.source.push(section),
                        _ => document.sink.push(section),
                    }
                }
            }
            Some(other) => {
                let hint = match other {
                    "sources" => " (write `source`)",
                    "sinks" => " (write `sink`)",
                    "pipelines" => " (write `pipeline`)",
                    _ => "",
                };
                document.problems.push(format!(
                    "{path}:{line}: unknown key `{other}`{hint}: a pipeline file has \
                     `pipeline`, `source` and `sink`"
                ));
            }
            None => document
                .problems
                .push(format!("{path}:{line}: {}", key_not_a_string(key))),
        }
    }
    Ok(document)
}

/// Converts nodes, turning the parser's positions into the byte offsets the checks use.
struct Reader<'a> {
    text: &'a SourceText,
}

impl Reader<'_> {
    /// One `pipeline`, `source` or `sink` mapping.
    fn section(&self, node: &MarkedYaml) -> RawSection {
        let mut problems = Vec::new();
        let table = match self.value(node, "", &mut problems) {
            Some(toml::Value::Table(table)) => table,
            _ => toml::Table::new(),
        };
        // Each transform's own span, so its problems point into it rather than at the
        // first key of that name anywhere in the section.
        let transform_spans = match &node.data {
            YamlData::Mapping(entries) => entries
                .iter()
                .find(|(key, _)| key.data.as_str() == Some("transform"))
                .and_then(|(_, list)| list.data.as_vec())
                .map(|items| items.iter().map(|item| self.span(item)).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        RawSection {
            table,
            span: self.span(node),
            transform_spans,
            problems,
        }
    }

    /// A node as a TOML value; `None`, with a problem, for what TOML cannot hold. `at` is
    /// the node's key path in the section (`fields.amount`), for messages.
    fn value(
        &self,
        node: &MarkedYaml,
        at: &str,
        problems: &mut Vec<(usize, String)>,
    ) -> Option<toml::Value> {
        let line = node.span.start.line();
        match &node.data {
            YamlData::Value(scalar) => match scalar {
                Scalar::String(s) => Some(toml::Value::String(s.to_string())),
                Scalar::Integer(i) => Some(toml::Value::Integer(*i)),
                Scalar::FloatingPoint(f) => Some(toml::Value::Float(f.into_inner())),
                Scalar::Boolean(b) => Some(toml::Value::Boolean(*b)),
                Scalar::Null => {
                    problems.push((
                        line,
                        format!(
                            "`{at}` has no value (YAML null): give it one, or leave the key out"
                        ),
                    ));
                    None
                }
            },
            YamlData::Sequence(items) => Some(toml::Value::Array(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.value(item, &format!("{at}[{i}]"), problems))
                    .collect(),
            )),
            YamlData::Mapping(entries) => {
                let mut table = toml::Table::new();
                for (key, value) in entries {
                    let Some(name) = key.data.as_str() else {
                        problems.push((key.span.start.line(), key_not_a_string(key)));
                        continue;
                    };
                    let path = if at.is_empty() {
                        name.to_string()
                    } else {
                        format!("{at}.{name}")
                    };
                    if let Some(value) = self.value(value, &path, problems) {
                        table.insert(name.to_string(), value);
                    }
                }
                Some(toml::Value::Table(table))
            }
            YamlData::Tagged(tag, _) => {
                problems.push((
                    line,
                    format!("`{at}`: YAML tags such as `{tag}` are not supported: remove it"),
                ));
                None
            }
            // The loader expands aliases and resolves scalars, core-schema tags included;
            // what is left (`!!binary`) has no TOML value.
            YamlData::Alias(_) | YamlData::Representation(..) | YamlData::BadValue => {
                problems.push((
                    line,
                    format!("`{at}`: cannot read this value as a string, number or boolean"),
                ));
                None
            }
        }
    }

    /// A node's bytes in the text (the parser counts characters).
    fn span(&self, node: &MarkedYaml) -> Range<usize> {
        self.offset(node.span.start)..self.offset(node.span.end)
    }

    fn offset(&self, marker: Marker) -> usize {
        let text = &self.text.text;
        text.char_indices()
            .nth(marker.index())
            .map_or(text.len(), |(byte, _)| byte)
    }
}

/// The problem of a mapping key that is not a string (`7:`, `true:`, `[a, b]:`).
fn key_not_a_string(key: &MarkedYaml) -> String {
    let written = match &key.data {
        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
        YamlData::Value(Scalar::FloatingPoint(f)) => f.to_string(),
        YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
        _ => return "keys are strings: this key is a list, a mapping or null".into(),
    };
    format!("keys are strings: write `\"{written}\":` to use `{written}` as one")
}
