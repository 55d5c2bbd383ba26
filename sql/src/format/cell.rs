//! One field's value on its way between a record and an Arrow column: parsed from text
//! into the column's type ([`Cell::from_text`]; JSON values go through `json.rs`, which
//! uses the helpers here), or read from an Arrow scalar and written back out
//! ([`Cell::from_scalar`], [`Cell::to_json`], [`Cell::to_text`]). A decoded record is a
//! row of [`Field`]s, one per declared column.
//!
//! Conversions are strict where a silent change would lose data: an integer column takes
//! integers in range (not 1.5, not "1"), a float column any number. A VARCHAR column takes
//! any JSON value (non-strings as their JSON text), as Flink and Spark do.

use std::ops::Range;

use datafusion::arrow::compute::kernels::cast_utils::{Parser, string_to_timestamp_nanos};
use datafusion::arrow::datatypes::Date32Type;
use datafusion::arrow::temporal_conversions::{date32_to_datetime, timestamp_ms_to_datetime};
use datafusion::common::ScalarValue;

use crate::catalog::ColumnType;

/// A value of one of the [`ColumnType`]s (or NULL).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// Days since the epoch.
    Date(i32),
    /// Milliseconds since the epoch.
    TimestampMs(i64),
}

/// One declared column's share of a decoded record, kept until the whole record is judged
/// (so a record is appended to every column or to none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    /// A value of the column's type, or NULL.
    Cell(Cell),
    /// VARCHAR or BYTEA text at this range of the decoder's text buffer: a JSON string is
    /// copied once, there, instead of into a `String` of its own.
    Text(Range<usize>),
    /// A valid, non-NULL value of a column the query does not read, checked only so that
    /// `on_error` judges the record the same whatever the query selects.
    Checked,
    /// The field does not convert to the column's type: why.
    Bad(String),
}

impl Field {
    pub(crate) const NULL: Field = Field::Cell(Cell::Null);

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Field::Cell(Cell::Null))
    }
}

impl From<Result<Cell, String>> for Field {
    fn from(converted: Result<Cell, String>) -> Self {
        match converted {
            Ok(cell) => Field::Cell(cell),
            Err(reason) => Field::Bad(reason),
        }
    }
}

/// At most this many characters of an offending value go into an error message.
const SHOWN_CHARS: usize = 40;

fn shown(text: &str) -> String {
    let mut s: String = text.chars().take(SHOWN_CHARS).collect();
    if text.chars().count() > SHOWN_CHARS {
        s.push('…');
    }
    s
}

pub(crate) fn mismatch(ty: ColumnType, found: &str) -> String {
    format!("expected {}, found {}", ty.sql_name(), shown(found))
}

pub(crate) fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    string_to_timestamp_nanos(text)
        .ok()
        .map(|ns| ns.div_euclid(1_000_000))
}

pub(crate) fn int_cell(ty: ColumnType, v: i64) -> Option<Cell> {
    Some(match ty {
        ColumnType::TinyInt => Cell::I8(i8::try_from(v).ok()?),
        ColumnType::SmallInt => Cell::I16(i16::try_from(v).ok()?),
        ColumnType::Int => Cell::I32(i32::try_from(v).ok()?),
        _ => Cell::I64(v),
    })
}

impl Cell {
    /// A text field (CSV) as a value of `ty`. Text is trimmed for every type but VARCHAR.
    pub(crate) fn from_text(ty: ColumnType, text: &str) -> Result<Cell, String> {
        let trimmed = text.trim();
        let converted = match ty {
            ColumnType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" => Some(Cell::Bool(true)),
                "false" | "f" | "0" => Some(Cell::Bool(false)),
                _ => None,
            },
            ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int | ColumnType::BigInt => {
                trimmed.parse::<i64>().ok().and_then(|v| int_cell(ty, v))
            }
            ColumnType::Real => trimmed.parse::<f32>().ok().map(Cell::F32),
            ColumnType::Double => trimmed.parse::<f64>().ok().map(Cell::F64),
            ColumnType::Varchar => Some(Cell::Text(text.to_string())),
            ColumnType::Bytea => Some(Cell::Bytes(text.as_bytes().to_vec())),
            ColumnType::Date => Date32Type::parse(trimmed).map(Cell::Date),
            ColumnType::Timestamp => parse_timestamp_ms(trimmed).map(Cell::TimestampMs),
        };
        converted.ok_or_else(|| mismatch(ty, &format!("'{text}'")))
    }

    /// A scalar of a table's Arrow type (what INSERT hands over) as a cell.
    pub(crate) fn from_scalar(value: &ScalarValue) -> Result<Cell, String> {
        use ScalarValue as S;
        if value.is_null() {
            return Ok(Cell::Null);
        }
        Ok(match value {
            S::Boolean(Some(v)) => Cell::Bool(*v),
            S::Int8(Some(v)) => Cell::I8(*v),
            S::Int16(Some(v)) => Cell::I16(*v),
            S::Int32(Some(v)) => Cell::I32(*v),
            S::Int64(Some(v)) => Cell::I64(*v),
            S::Float32(Some(v)) => Cell::F32(*v),
            S::Float64(Some(v)) => Cell::F64(*v),
            S::Utf8(Some(v)) | S::LargeUtf8(Some(v)) | S::Utf8View(Some(v)) => {
                Cell::Text(v.clone())
            }
            S::Binary(Some(v)) | S::LargeBinary(Some(v)) | S::BinaryView(Some(v)) => {
                Cell::Bytes(v.clone())
            }
            S::Date32(Some(v)) => Cell::Date(*v),
            S::TimestampMillisecond(Some(v), _) => Cell::TimestampMs(*v),
            other => return Err(format!("unsupported value type {}", other.data_type())),
        })
    }

    /// The cell as JSON: numbers, strings, booleans; dates and timestamps as ISO 8601
    /// text; bytes as (lossy) UTF-8 text.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Cell::Null => J::Null,
            Cell::Bool(v) => J::Bool(*v),
            Cell::I8(v) => J::from(*v),
            Cell::I16(v) => J::from(*v),
            Cell::I32(v) => J::from(*v),
            Cell::I64(v) => J::from(*v),
            Cell::F32(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(J::Null, J::Number),
            Cell::F64(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
            Cell::Text(_) | Cell::Bytes(_) | Cell::Date(_) | Cell::TimestampMs(_) => {
                J::String(self.to_text().unwrap_or_default())
            }
        }
    }

    /// The cell as text (CSV); `None` for NULL.
    pub(crate) fn to_text(&self) -> Option<String> {
        Some(match self {
            Cell::Null => return None,
            Cell::Bool(v) => v.to_string(),
            Cell::I8(v) => v.to_string(),
            Cell::I16(v) => v.to_string(),
            Cell::I32(v) => v.to_string(),
            Cell::I64(v) => v.to_string(),
            Cell::F32(v) => v.to_string(),
            Cell::F64(v) => v.to_string(),
            Cell::Text(v) => v.clone(),
            Cell::Bytes(v) => String::from_utf8_lossy(v).into_owned(),
            Cell::Date(v) => date32_to_datetime(*v)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| v.to_string()),
            Cell::TimestampMs(v) => timestamp_ms_to_datetime(*v)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3f").to_string())
                .unwrap_or_else(|| v.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Timestamps are read from ISO text or epoch milliseconds and written as ISO text
    // that reads back to the same instant.
    #[test]
    fn timestamps_round_trip_through_text() {
        let cell = Cell::from_text(ColumnType::Timestamp, "2024-03-01T12:00:00.250Z").unwrap();
        assert_eq!(cell, Cell::TimestampMs(1_709_294_400_250));
        assert_eq!(
            Cell::from_text(ColumnType::Timestamp, "1709294400250").unwrap(),
            cell
        );
        let text = cell.to_text().unwrap();
        assert_eq!(text, "2024-03-01T12:00:00.250");
        assert_eq!(Cell::from_text(ColumnType::Timestamp, &text).unwrap(), cell);
        let date = Cell::from_text(ColumnType::Date, "2024-03-01").unwrap();
        assert_eq!(date.to_text().unwrap(), "2024-03-01");
    }
}
