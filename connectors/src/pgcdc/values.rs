//! PostgreSQL column types to Arrow, and values in PostgreSQL's text format to Arrow
//! arrays.
//!
//! pgoutput v1 sends every value in its type's text output, and the snapshot selects
//! the same text (`concat(column)`); both connections set `DateStyle = ISO`, `TimeZone = UTC`,
//! `extra_float_digits = 3` and `bytea_output = hex`, so the formats parsed here are the
//! only ones that arrive. A value that does not parse (a `NaN` numeric, a date BC) makes
//! its row a reject, never a panic.
//!
//! | PostgreSQL | Arrow |
//! |---|---|
//! | bool | Boolean |
//! | int2 / int4 / int8 | Int16 / Int32 / Int64 |
//! | float4 / float8 | Float32 / Float64 |
//! | numeric(p,s), p <= 38 | Decimal128(p, s) |
//! | numeric without a precision, or p > 38 | Utf8 (exact text) |
//! | bytea | Binary |
//! | date | Date32 |
//! | timestamp / timestamptz | Timestamp(µs) / Timestamp(µs, UTC) |
//! | text, varchar, bpchar, name, json, jsonb, uuid, anything else | Utf8 |

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::decode::Value;
use crate::db::types::{days_from_civil, days_in_month};
use crate::error::Result;

/// The metadata columns every row gets, after the table's own.
pub const OP_COLUMN: &str = "_op";
/// The commit LSN of the row's transaction (snapshot rows: the slot's start LSN).
pub const LSN_COLUMN: &str = "_lsn";
/// The commit time of the row's transaction (null for snapshot rows).
pub const COMMIT_TS_COLUMN: &str = "_commit_ts";

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
pub(crate) const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// How one column's values are read and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    Decimal(u8, i8),
    Text,
    Bytes,
    Date,
    Timestamp,
    TimestampTz,
}

impl Kind {
    /// The kind of a column of type `oid` with modifier `typmod` (`atttypmod`).
    pub(crate) fn of(oid: u32, typmod: i32) -> Kind {
        match oid {
            16 => Kind::Bool,
            17 => Kind::Bytes,
            20 => Kind::I64,
            21 => Kind::I16,
            23 => Kind::I32,
            700 => Kind::F32,
            701 => Kind::F64,
            1082 => Kind::Date,
            1114 => Kind::Timestamp,
            1184 => Kind::TimestampTz,
            1700 if typmod >= 4 => {
                // numeric's typmod is ((precision << 16) | scale) + VARHDRSZ (4).
                let packed = typmod - 4;
                let precision = (packed >> 16) & 0xffff;
                let scale = packed & 0xffff;
                if (1..=38).contains(&precision) && scale <= precision {
                    Kind::Decimal(precision as u8, scale as i8)
                } else {
                    Kind::Text
                }
            }
            _ => Kind::Text,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::I16 => DataType::Int16,
            Kind::I32 => DataType::Int32,
            Kind::I64 => DataType::Int64,
            Kind::F32 => DataType::Float32,
            Kind::F64 => DataType::Float64,
            Kind::Decimal(p, s) => DataType::Decimal128(p, s),
            Kind::Text => DataType::Utf8,
            Kind::Bytes => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// Parses one value in PostgreSQL's text output for the type.
    pub(crate) fn parse(self, text: &str) -> Result<Cell, String> {
        let bad = |what: &str| format!("`{text}` is not a valid {what}");
        Ok(match self {
            Kind::Bool => match text {
                "t" | "true" => Cell::Bool(true),
                "f" | "false" => Cell::Bool(false),
                _ => return Err(bad("boolean")),
            },
            Kind::I16 => Cell::I16(text.parse().map_err(|_| bad("smallint"))?),
            Kind::I32 => Cell::I32(text.parse().map_err(|_| bad("integer"))?),
            Kind::I64 => Cell::I64(text.parse().map_err(|_| bad("bigint"))?),
            Kind::F32 => Cell::F64(parse_float(text).ok_or_else(|| bad("real"))?),
            Kind::F64 => Cell::F64(parse_float(text).ok_or_else(|| bad("double"))?),
            Kind::Decimal(_, scale) => Cell::Decimal(
                parse_decimal(text, scale).ok_or_else(|| bad(&format!("DECIMAL scale {scale}")))?,
            ),
            Kind::Text => Cell::Text(text.to_string()),
            Kind::Bytes => Cell::Bytes(parse_hex_bytea(text).ok_or_else(|| bad("hex bytea"))?),
            Kind::Date => Cell::I32(parse_date(text).ok_or_else(|| bad("date (ISO, AD)"))?),
            Kind::Timestamp => {
                Cell::I64(parse_timestamp(text, false).ok_or_else(|| bad("timestamp"))?)
            }
            Kind::TimestampTz => {
                Cell::I64(parse_timestamp(text, true).ok_or_else(|| bad("timestamptz"))?)
            }
        })
    }
}

/// One parsed value, waiting for its row's other values to parse before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F64(f64),
    Decimal(i128),
    Text(String),
    Bytes(Vec<u8>),
}

/// A table as the source emits it: its columns' kinds and the Arrow schema of its rows.
#[derive(Debug)]
pub(crate) struct Layout {
    /// `schema.table`: the batch's stream.
    pub(crate) stream: String,
    /// Column names and kinds, in table order.
    pub(crate) columns: Vec<(String, Kind)>,
    /// Primary key columns (the record key).
    pub(crate) key: Vec<String>,
    /// The columns plus `_op`, `_lsn`, `_commit_ts`.
    pub(crate) schema: SchemaRef,
}

impl Layout {
    /// A layout from (name, type oid, typmod) columns.
    pub(crate) fn new(stream: String, columns: &[(String, u32, i32)], key: Vec<String>) -> Layout {
        let columns: Vec<(String, Kind)> = columns
            .iter()
            .map(|(name, oid, typmod)| (name.clone(), Kind::of(*oid, *typmod)))
            .collect();
        let mut fields: Vec<Field> = columns
            .iter()
            .map(|(name, kind)| Field::new(name, kind.data_type(), true))
            .collect();
        fields.push(Field::new(OP_COLUMN, DataType::Utf8, false));
        fields.push(Field::new(LSN_COLUMN, DataType::Int64, true));
        fields.push(Field::new(
            COMMIT_TS_COLUMN,
            Kind::TimestampTz.data_type(),
            true,
        ));
        Layout {
            stream,
            columns,
            key,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    /// Parses a row of text values (`None`: null) into cells, or says which column is bad.
    pub(crate) fn parse_text_row<'a>(
        &self,
        values: impl ExactSizeIterator<Item = Option<&'a str>>,
    ) -> Result<Vec<Cell>, String> {
        if values.len() != self.columns.len() {
            return Err(format!(
                "{} values for the {} columns of {}: the table changed; restart the pipeline",
                values.len(),
                self.columns.len(),
                self.stream
            ));
        }
        values
            .zip(&self.columns)
            .map(|(value, (name, kind))| match value {
                None => Ok(Cell::Null),
                Some(text) => kind.parse(text).map_err(|e| format!("column {name}: {e}")),
            })
            .collect()
    }

    /// Parses a pgoutput tuple; unchanged TOASTed values become null.
    pub(crate) fn parse_tuple(&self, values: &[Value]) -> Result<Vec<Cell>, String> {
        let mut texts = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            texts.push(match value {
                Value::Null | Value::Unchanged => None,
                Value::Text(bytes) => Some(
                    std::str::from_utf8(bytes)
                        .map_err(|_| format!("column {} is not UTF-8 text", i + 1))?,
                ),
                Value::Binary(_) => {
                    return Err("a binary-format value arrived; the source asks for text".into());
                }
            });
        }
        self.parse_text_row(texts.into_iter())
    }
}

/// Rows of one table being gathered into a batch.
pub(crate) struct Rows {
    layout: Arc<Layout>,
    columns: Vec<Column>,
    op: StringBuilder,
    lsn: Int64Builder,
    commit_ts: TimestampMicrosecondBuilder,
    tombstones: Vec<bool>,
}

impl Rows {
    pub(crate) fn new(layout: Arc<Layout>) -> Rows {
        let columns = layout
            .columns
            .iter()
            .map(|(_, k)| Column::new(*k))
            .collect();
        Rows {
            layout,
            columns,
            op: StringBuilder::new(),
            lsn: Int64Builder::new(),
            commit_ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            tombstones: Vec::new(),
        }
    }

    pub(crate) fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    pub(crate) fn len(&self) -> usize {
        self.tombstones.len()
    }

    /// Adds a row; `cells` came from this layout's parse, so they match its columns.
    /// `commit_ts` is Unix microseconds.
    pub(crate) fn push(
        &mut self,
        cells: Vec<Cell>,
        op: &str,
        lsn: Option<i64>,
        commit_ts: Option<i64>,
    ) {
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            column.append(cell);
        }
        self.op.append_value(op);
        self.lsn.append_option(lsn);
        self.commit_ts.append_option(commit_ts);
        self.tombstones.push(op == "d");
    }

    /// The batch, and per row whether it is a delete.
    pub(crate) fn finish(mut self) -> Result<(RecordBatch, Vec<bool>)> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len() + 3);
        for column in &mut self.columns {
            arrays.push(column.finish()?);
        }
        arrays.push(Arc::new(self.op.finish()));
        arrays.push(Arc::new(self.lsn.finish()));
        arrays.push(Arc::new(self.commit_ts.finish()));
        let batch = RecordBatch::try_new(self.layout.schema.clone(), arrays)?;
        Ok((batch, self.tombstones))
    }
}

/// One column's Arrow builder.
enum Column {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, bool),
}

impl Column {
    fn new(kind: Kind) -> Column {
        match kind {
            Kind::Bool => Column::Bool(BooleanBuilder::new()),
            Kind::I16 => Column::I16(Int16Builder::new()),
            Kind::I32 => Column::I32(Int32Builder::new()),
            Kind::I64 => Column::I64(Int64Builder::new()),
            Kind::F32 => Column::F32(Float32Builder::new()),
            Kind::F64 => Column::F64(Float64Builder::new()),
            Kind::Decimal(p, s) => Column::Decimal(Decimal128Builder::new(), p, s),
            Kind::Text => Column::Text(StringBuilder::new()),
            Kind::Bytes => Column::Bytes(BinaryBuilder::new()),
            Kind::Date => Column::Date(Date32Builder::new()),
            Kind::Timestamp => Column::Timestamp(TimestampMicrosecondBuilder::new(), false),
            Kind::TimestampTz => Column::Timestamp(TimestampMicrosecondBuilder::new(), true),
        }
    }

    /// Appends a cell; a cell of another kind (impossible: cells come from this column's
    /// kind) is stored as null rather than trusted.
    fn append(&mut self, cell: Cell) {
        match (self, cell) {
            (Column::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Column::I16(b), Cell::I16(v)) => b.append_value(v),
            (Column::I32(b), Cell::I32(v)) => b.append_value(v),
            (Column::Date(b), Cell::I32(v)) => b.append_value(v),
            (Column::I64(b), Cell::I64(v)) => b.append_value(v),
            (Column::Timestamp(b, _), Cell::I64(v)) => b.append_value(v),
            (Column::F32(b), Cell::F64(v)) => b.append_value(v as f32),
            (Column::F64(b), Cell::F64(v)) => b.append_value(v),
            (Column::Decimal(b, _, _), Cell::Decimal(v)) => b.append_value(v),
            (Column::Text(b), Cell::Text(v)) => b.append_value(v),
            (Column::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (Column::Bool(b), _) => b.append_null(),
            (Column::I16(b), _) => b.append_null(),
            (Column::I32(b), _) => b.append_null(),
            (Column::I64(b), _) => b.append_null(),
            (Column::F32(b), _) => b.append_null(),
            (Column::F64(b), _) => b.append_null(),
            (Column::Decimal(b, _, _), _) => b.append_null(),
            (Column::Text(b), _) => b.append_null(),
            (Column::Bytes(b), _) => b.append_null(),
            (Column::Date(b), _) => b.append_null(),
            (Column::Timestamp(b, _), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::I16(b) => Arc::new(b.finish()),
            Column::I32(b) => Arc::new(b.finish()),
            Column::I64(b) => Arc::new(b.finish()),
            Column::F32(b) => Arc::new(b.finish()),
            Column::F64(b) => Arc::new(b.finish()),
            Column::Decimal(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s)?),
            Column::Text(b) => Arc::new(b.finish()),
            Column::Bytes(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Timestamp(b, false) => Arc::new(b.finish()),
            Column::Timestamp(b, true) => Arc::new(b.finish().with_timezone("UTC")),
        })
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// `-123.45` at `scale` 3 -> -123450. More fraction digits than the scale, `NaN` and
/// overflow are refused.
pub(crate) fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).ok()?;
    if whole.is_empty() && fraction.is_empty() || fraction.len() > scale {
        return None;
    }
    let mut value: i128 = 0;
    let padded = fraction.chars().chain(std::iter::repeat('0')).take(scale);
    for c in whole.chars().chain(padded) {
        let digit = c.to_digit(10)?;
        value = value.checked_mul(10)?.checked_add(i128::from(digit))?;
    }
    Some(if negative { -value } else { value })
}

/// `\x0aff` -> [10, 255].
fn parse_hex_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks_exact(2)
        .map(|pair| {
            let hi = *pair.first()?;
            let lo = *pair.get(1)?;
            Some(((hex_digit(hi)? << 4) | hex_digit(lo)?) as u8)
        })
        .collect()
}

fn hex_digit(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

/// Days since 1970-01-01 of an ISO `YYYY-MM-DD` (AD only).
pub(crate) fn parse_date(text: &str) -> Option<i32> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    i32::try_from(days_from_civil(year, month, day)).ok()
}

/// Unix microseconds of `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]`; the offset is
/// required with `with_zone` and refused without.
pub(crate) fn parse_timestamp(text: &str, with_zone: bool) -> Option<i64> {
    let (date, time) = text.split_once(' ')?;
    let days = i64::from(parse_date(date)?);
    // The zone starts at the first sign after the seconds.
    let zone_at = time.find(['+', '-']);
    let (clock, zone) = match zone_at {
        Some(at) => (time.get(..at)?, Some(time.get(at..)?)),
        None => (time, None),
    };
    if zone.is_some() != with_zone {
        return None;
    }
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.splitn(3, ':');
    let hours: i64 = hms.next()?.parse().ok()?;
    let minutes: i64 = hms.next()?.parse().ok()?;
    let seconds: i64 = hms.next()?.parse().ok()?;
    if hours > 24 || minutes > 59 || seconds > 60 || fraction.len() > 6 {
        return None;
    }
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").parse().ok()?
    };
    let mut total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
    if let Some(zone) = zone {
        let (sign, rest) = zone.split_at(1);
        let mut parts = rest.splitn(3, ':');
        let zh: i64 = parts.next()?.parse().ok()?;
        let zm: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let zs: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let offset = (zh * 60 + zm) * 60 + zs;
        total -= if sign == "-" { -offset } else { offset };
    }
    total.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_typmods_give_decimals_or_text() {
        // Proves numeric(12,2) maps to DECIMAL(12,2) and unbounded numeric to text.
        assert_eq!(Kind::of(1700, (12 << 16 | 2) + 4), Kind::Decimal(12, 2));
        assert_eq!(Kind::of(1700, -1), Kind::Text);
        assert_eq!(Kind::of(1700, (50 << 16) + 4), Kind::Text);
        assert_eq!(Kind::of(3802, -1), Kind::Text);
    }

    #[test]
    fn text_formats_parse() {
        // Proves the text outputs PostgreSQL sends (ISO dates, UTC zones, hex bytea) parse.
        assert_eq!(parse_decimal("-123.4", 2), Some(-12340));
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_decimal("NaN", 2), None);
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2000-03-01"), Some(11017));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(
            parse_timestamp("1970-01-01 00:00:01.5", false),
            Some(1_500_000)
        );
        assert_eq!(parse_timestamp("1970-01-01 01:00:00+01", true), Some(0));
        assert_eq!(
            parse_timestamp("1970-01-01 00:00:00-05:30", true),
            Some(19_800_000_000)
        );
        assert_eq!(parse_timestamp("1970-01-01 00:00:00", true), None);
        assert_eq!(parse_hex_bytea("\\x00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(parse_hex_bytea("\\x0"), None);
        assert_eq!(Kind::Bool.parse("t"), Ok(Cell::Bool(true)));
        assert!(Kind::I16.parse("70000").is_err());
        assert_eq!(Kind::F64.parse("Infinity"), Ok(Cell::F64(f64::INFINITY)));
    }
}
