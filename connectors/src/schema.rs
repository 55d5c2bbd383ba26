//! Column types by their SQL names, declared schemas, and the schema entry a source leaves
//! for its topic.
//!
//! A pipeline file declares a schema as a column list: `schema = "id BIGINT NOT NULL, name
//! VARCHAR, amount DECIMAL(12,2), ts TIMESTAMP"`. Types use the names `sluice sql` uses;
//! each maps to one Arrow type (the table below), which is what flows through a pipeline.
//!
//! | name | Arrow |
//! |---|---|
//! | BOOLEAN | Boolean |
//! | SMALLINT | Int16 |
//! | INT, INTEGER | Int32 |
//! | BIGINT | Int64 |
//! | REAL, FLOAT | Float32 |
//! | DOUBLE | Float64 |
//! | DECIMAL(p,s), NUMERIC(p,s) | Decimal128(p, s) |
//! | VARCHAR, TEXT, STRING | Utf8 |
//! | BYTEA, BINARY | Binary |
//! | DATE | Date32 |
//! | TIMESTAMP | Timestamp(µs) |
//! | TIMESTAMPTZ | Timestamp(µs, UTC) |
//!
//! A source writes the schema of what it produced to the compacted topic
//! [`SCHEMAS_TOPIC`] (key: the topic's name), so a sink reading the topic needs no
//! declaration of its own.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The compacted topic holding one schema entry per topic written by a source.
pub const SCHEMAS_TOPIC: &str = "__sluice_schemas";

/// The Arrow type of a SQL type name (case-insensitive; `DECIMAL(p,s)` with its arguments).
pub fn parse_type(name: &str) -> Result<DataType> {
    let upper = name.trim().to_ascii_uppercase();
    let (base, args) = match upper.split_once('(') {
        Some((base, rest)) => {
            let args = rest
                .strip_suffix(')')
                .ok_or_else(|| Error::config(format!("type `{name}`: missing `)`")))?;
            (base.trim().to_string(), Some(args.to_string()))
        }
        None => (upper.clone(), None),
    };
    let ty = match (base.as_str(), args) {
        ("BOOLEAN" | "BOOL", None) => DataType::Boolean,
        ("SMALLINT" | "INT2", None) => DataType::Int16,
        ("INT" | "INTEGER" | "INT4", None) => DataType::Int32,
        ("BIGINT" | "INT8", None) => DataType::Int64,
        ("REAL" | "FLOAT" | "FLOAT4", None) => DataType::Float32,
        ("DOUBLE" | "DOUBLE PRECISION" | "FLOAT8", None) => DataType::Float64,
        ("VARCHAR" | "TEXT" | "STRING", _) => DataType::Utf8,
        ("BYTEA" | "BINARY" | "BYTES", None) => DataType::Binary,
        ("DATE", None) => DataType::Date32,
        ("TIMESTAMP", None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        ("TIMESTAMPTZ", None) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ("DECIMAL" | "NUMERIC", Some(args)) => {
            let parse = |s: &str| s.trim().parse::<i64>().ok();
            let (precision, scale) = match args.split_once(',') {
                Some((p, s)) => (parse(p), parse(s)),
                None => (parse(&args), Some(0)),
            };
            match (precision, scale) {
                (Some(p @ 1..=38), Some(s)) if (0..=p).contains(&s) => {
                    DataType::Decimal128(p as u8, s as i8)
                }
                _ => {
                    return Err(Error::config(format!(
                        "type `{name}`: DECIMAL takes a precision from 1 to 38 and a scale \
                         from 0 to the precision, e.g. DECIMAL(12,2)"
                    )));
                }
            }
        }
        ("DECIMAL" | "NUMERIC", None) => DataType::Decimal128(38, 10),
        _ => {
            return Err(Error::config(format!(
                "unknown type `{name}`: use BOOLEAN, SMALLINT, INT, BIGINT, REAL, DOUBLE, \
                 DECIMAL(p,s), VARCHAR, BYTEA, DATE, TIMESTAMP or TIMESTAMPTZ"
            )));
        }
    };
    Ok(ty)
}

/// The SQL name of an Arrow type, the inverse of [`parse_type`] for the types it makes
/// (other Arrow types get their nearest name).
pub fn type_name(ty: &DataType) -> String {
    match ty {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INT".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTEA".into(),
        DataType::FixedSizeBinary(_) => "BYTEA".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        _ => "VARCHAR".into(),
    }
}

/// Parses a column list: `id BIGINT NOT NULL, name VARCHAR, amount DECIMAL(12,2)`.
pub fn parse_schema(columns: &str) -> Result<SchemaRef> {
    let mut fields = Vec::new();
    for column in split_top_level(columns) {
        let column = column.trim();
        if column.is_empty() {
            continue;
        }
        let (name, rest) = column.split_once(char::is_whitespace).ok_or_else(|| {
            Error::config(format!(
                "schema column `{column}` has no type: write `{column} BIGINT`"
            ))
        })?;
        let rest = rest.trim();
        let upper = rest.to_ascii_uppercase();
        let (ty, nullable) = match upper.strip_suffix("NOT NULL") {
            Some(ty) => (rest.get(..ty.len()).unwrap_or(ty).trim(), false),
            None => (rest, true),
        };
        let name = name.trim_matches('"');
        if fields.iter().any(|f: &Field| f.name() == name) {
            return Err(Error::config(format!("schema names column `{name}` twice")));
        }
        fields.push(Field::new(name, parse_type(ty)?, nullable));
    }
    if fields.is_empty() {
        return Err(Error::config("the schema names no columns"));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Splits at commas outside parentheses (`DECIMAL(12,2)` stays whole).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Formats a schema as the column list [`parse_schema`] reads.
pub fn format_schema(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "" } else { " NOT NULL" };
            format!("{} {}{null}", f.name(), type_name(f.data_type()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`SCHEMAS_TOPIC`] holds for a topic: the columns of its records, their encoding and
/// the fields forming the record key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaEntry {
    /// The column list, as [`format_schema`] writes it.
    pub columns: String,
    /// The value format of the records (`json`, `csv`, `avro`, `raw`).
    pub format: String,
    /// The fields forming the record key (empty: records have no key).
    #[serde(default)]
    pub key: Vec<String>,
}

impl SchemaEntry {
    /// The entry's Arrow schema.
    pub fn schema(&self) -> Result<SchemaRef> {
        parse_schema(&self.columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lists_round_trip() {
        let text = "id BIGINT NOT NULL, name VARCHAR, amount DECIMAL(12,2), ts TIMESTAMP, d DATE";
        let schema = parse_schema(text).unwrap();
        assert_eq!(schema.field(2).data_type(), &DataType::Decimal128(12, 2));
        assert!(!schema.field(0).is_nullable());
        assert_eq!(format_schema(&schema), text);
    }

    #[test]
    fn bad_types_name_the_choices() {
        let err = parse_schema("id LONG").unwrap_err().to_string();
        assert!(
            err.contains("unknown type `LONG`") && err.contains("BIGINT"),
            "{err}"
        );
        assert!(
            parse_schema("id")
                .unwrap_err()
                .to_string()
                .contains("has no type")
        );
        assert!(
            parse_schema("a INT, a INT")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
