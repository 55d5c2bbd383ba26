//! The schema entry a connector source leaves for each topic it writes, so `CREATE TABLE t
//! WITH (topic = 'x')` needs no column list: the entry gives the columns and the value
//! format, and for `avro` the Avro schema the records were written with.
//!
//! Entries live on the compacted topic [`SCHEMAS_TOPIC`] (key: the topic's name; value:
//! JSON `{"columns": "id BIGINT NOT NULL, name VARCHAR", "format": "avro", "key": [...]}`;
//! a null value: no entry). `sluice-connectors` writes them (`schema::SchemaEntry`); this
//! crate reads them with its own [`SchemaEntry`], since the connectors crate depends on
//! this one. Only committed entries count (sources write them in their transactions).
//!
//! The Avro schema of an `avro` entry is derived from its columns by the rule the
//! connectors' avro converter writes with, which [`avro_schema`] restates: a record `row`
//! whose fields are the columns in order; a nullable column is the union `["null", type]`;
//! SMALLINT and INT are `int`, BIGINT `long`, REAL `float`, DOUBLE `double`, VARCHAR
//! `string`, BYTEA `bytes`, BOOLEAN `boolean`, DATE `int`/`date`, TIMESTAMP
//! `long`/`timestamp-micros`. Decoding with any other schema would misread the bytes;
//! tests/cli_connect.rs writes avro through a pipeline and reads it back here.

use serde::Deserialize;
use serde_json::json;

use super::table::{ColumnDef, ColumnType, Format};
use crate::backend::Backend;
use crate::provider::pushdown::ScanBounds;
use crate::{Error, Result};

/// The compacted topic of schema entries (the connectors' `schema::SCHEMAS_TOPIC`).
pub const SCHEMAS_TOPIC: &str = "__sluice_schemas";

/// A topic's schema entry, as the connectors write it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SchemaEntry {
    /// The column list: `id BIGINT NOT NULL, name VARCHAR, amount DECIMAL(12,2)`.
    pub columns: String,
    /// The value format of the records: `json`, `csv`, `avro` or `raw`.
    pub format: String,
    /// The columns forming the record key (empty: the records have no key).
    #[serde(default)]
    pub key: Vec<String>,
}

/// The committed schema entry of `topic`, if there is one.
pub fn read(backend: &Backend, topic: &str) -> Result<Option<SchemaEntry>> {
    let ranges = match backend.plan_ranges(SCHEMAS_TOPIC, &ScanBounds::default()) {
        Ok(ranges) => ranges,
        // No source has written an entry anywhere yet.
        Err(Error::Log(sluice_core::Error::UnknownTopic { .. })) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut entry = None;
    for range in ranges {
        let mut reader = backend.reader(SCHEMAS_TOPIC, range)?;
        while reader.visit_next(|record| {
            if record.key != Some(topic.as_bytes()) {
                return Ok(true);
            }
            entry = match record.value {
                None => None,
                Some(value) => {
                    Some(
                        serde_json::from_slice(value).map_err(|e| Error::CorruptCatalog {
                            topic: SCHEMAS_TOPIC.into(),
                            offset: record.offset,
                            reason: format!("the schema entry of {topic}: {e}"),
                        })?,
                    )
                }
            };
            Ok(true)
        })? {}
    }
    Ok(entry)
}

impl SchemaEntry {
    /// The entry's value format.
    pub fn format(&self) -> std::result::Result<Format, String> {
        match self.format.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "raw" => Ok(Format::Raw),
            "avro" => Ok(Format::Avro),
            other => Err(format!("its format '{other}' is not one topic tables read")),
        }
    }

    /// The entry's columns as topic-table columns.
    pub fn columns(&self) -> std::result::Result<Vec<ColumnDef>, String> {
        let mut columns = Vec::new();
        for column in split_top_level(&self.columns) {
            let column = column.trim();
            if column.is_empty() {
                continue;
            }
            let (name, rest) = column
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("column `{column}` has no type"))?;
            let rest = rest.trim();
            let upper = rest.to_ascii_uppercase();
            let (sql_type, nullable) = match upper.strip_suffix("NOT NULL") {
                Some(ty) => (rest.get(..ty.len()).unwrap_or(ty).trim(), false),
                None => (rest, true),
            };
            let ty = ColumnType::from_sql(sql_type).ok_or_else(|| {
                format!(
                    "column {name} is {sql_type}, which topic tables do not hold yet (BOOLEAN, \
                     TINYINT, SMALLINT, INT, BIGINT, REAL, DOUBLE, VARCHAR, BYTEA, DATE and \
                     TIMESTAMP do)"
                )
            })?;
            columns.push(ColumnDef {
                name: name.to_string(),
                ty,
                nullable,
            });
        }
        Ok(columns)
    }
}

/// Splits a column list on the commas outside parentheses (`DECIMAL(12,2)` keeps its).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0_usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(text.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

/// The Avro schema (JSON text) the connectors' avro converter writes rows of `columns`
/// with (see the module docs).
pub fn avro_schema(columns: &[ColumnDef]) -> std::result::Result<String, String> {
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        let ty = match column.ty {
            ColumnType::Boolean => json!("boolean"),
            ColumnType::SmallInt | ColumnType::Int => json!("int"),
            ColumnType::BigInt => json!("long"),
            ColumnType::Real => json!("float"),
            ColumnType::Double => json!("double"),
            ColumnType::Varchar => json!("string"),
            ColumnType::Bytea => json!("bytes"),
            ColumnType::Date => json!({"type": "int", "logicalType": "date"}),
            ColumnType::Timestamp => json!({"type": "long", "logicalType": "timestamp-micros"}),
            ColumnType::TinyInt => {
                return Err(format!(
                    "column {} is TINYINT, which the avro converter does not write",
                    column.name
                ));
            }
        };
        let ty = if column.nullable {
            json!(["null", ty])
        } else {
            ty
        };
        fields.push(json!({"name": column.name, "type": ty}));
    }
    Ok(json!({"type": "record", "name": "row", "fields": fields}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column list as the connectors write it becomes columns, DECIMAL's comma and NOT
    /// NULL included; a type topic tables lack is named in the error.
    #[test]
    fn column_lists_become_columns() {
        let entry = SchemaEntry {
            columns: "id BIGINT NOT NULL, name VARCHAR, ts TIMESTAMP".into(),
            format: "avro".into(),
            key: Vec::new(),
        };
        let columns = entry.columns().expect("columns");
        let described: Vec<(&str, ColumnType, bool)> = columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.nullable))
            .collect();
        assert_eq!(
            described,
            [
                ("id", ColumnType::BigInt, false),
                ("name", ColumnType::Varchar, true),
                ("ts", ColumnType::Timestamp, true),
            ]
        );
        assert_eq!(entry.format(), Ok(Format::Avro));
        let decimal = SchemaEntry {
            columns: "amount DECIMAL(12,2), id INT".into(),
            ..entry
        };
        let error = decimal.columns().expect_err("no decimals yet");
        assert!(error.contains("amount is DECIMAL(12,2)"), "{error}");
    }

    /// The derived schema is the connectors' (record `row`, nullable as unions).
    #[test]
    fn avro_schema_matches_the_converter() {
        let columns = SchemaEntry {
            columns: "id BIGINT NOT NULL, d DATE".into(),
            format: "avro".into(),
            key: Vec::new(),
        }
        .columns()
        .expect("columns");
        assert_eq!(
            avro_schema(&columns).expect("schema"),
            r#"{"fields":[{"name":"id","type":"long"},{"name":"d","type":["null",{"logicalType":"date","type":"int"}]}],"name":"row","type":"record"}"#
        );
    }
}
