//! `json`: a JSON object per row (nulls left out), written by a per-column encoder for the
//! common column types and through arrow-json for the rest; read through arrow-json.
//!
//! The fast path writes exactly what arrow-json writes (numbers through `lexical-core`,
//! strings escaped as serde_json does, timestamps as chrono's ISO form, non-finite floats
//! as `null`) into one buffer that every row's value is a slice of: arrow-json's writer
//! formats timestamps through `fmt::Debug` and each row then needed its own copy, which
//! together were a fifth of a CSV -> topic -> Parquet pipeline's time.

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int64Array,
    RecordBatch, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::json::{LineDelimitedWriter, ReaderBuilder};
use bytes::BufMut;

use super::Encoded;
use crate::db::types::civil_from_days;
use crate::error::{Error, Result};

pub(super) fn encode(rows: &RecordBatch) -> Result<Encoded> {
    match FastColumns::new(rows)? {
        Some(columns) => Ok(columns.encode(rows.num_rows())),
        None => encode_with_arrow(rows),
    }
}

/// arrow-json's writer, for column types the fast path does not take.
fn encode_with_arrow(rows: &RecordBatch) -> Result<Encoded> {
    let mut out = Vec::with_capacity(rows.num_rows() * 64);
    {
        let mut writer = LineDelimitedWriter::new(&mut out);
        writer.write(rows)?;
        writer.finish()?;
    }
    // JSON escapes newlines inside strings, so every '\n' ends a row.
    let mut spans = Vec::with_capacity(rows.num_rows());
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &out) {
        if end > start {
            spans.push((start, end));
        }
        start = end + 1;
    }
    let values = Encoded {
        open: out.len(),
        bytes: out,
        spans,
    };
    if values.len() != rows.num_rows() {
        return Err(Error::Data {
            position: "json encoder".into(),
            reason: format!("{} rows became {} values", rows.num_rows(), values.len()),
        });
    }
    Ok(values)
}

/// One column as the fast path writes it.
enum FastColumn {
    Bool(BooleanArray),
    /// Every integer type up to 64 bits signed, widened (the digits are the same).
    Int(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    Text(StringArray),
    Date(Date32Array),
    /// A timestamp without a time zone, as seconds and nanoseconds.
    Timestamp(ArrayRef, TimeUnit),
}

/// The columns of a batch with their keys (`"name":`), when all of them take the fast path.
struct FastColumns {
    columns: Vec<(Vec<u8>, FastColumn)>,
}

impl FastColumns {
    fn new(rows: &RecordBatch) -> Result<Option<FastColumns>> {
        let mut columns = Vec::with_capacity(rows.num_columns());
        for (field, array) in rows.schema().fields().iter().zip(rows.columns()) {
            let column = match array.data_type() {
                DataType::Boolean => FastColumn::Bool(array.as_boolean().clone()),
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32 => {
                    FastColumn::Int(cast(array, &DataType::Int64)?.as_primitive().clone())
                }
                DataType::Float32 => FastColumn::F32(array.as_primitive().clone()),
                DataType::Float64 => FastColumn::F64(array.as_primitive().clone()),
                DataType::Utf8 => FastColumn::Text(array.as_string::<i32>().clone()),
                DataType::LargeUtf8 | DataType::Utf8View => {
                    FastColumn::Text(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
                }
                DataType::Date32 => FastColumn::Date(array.as_primitive().clone()),
                DataType::Timestamp(unit, None) => FastColumn::Timestamp(array.clone(), *unit),
                _ => return Ok(None),
            };
            let mut key = serde_json::to_vec(field.name()).map_err(|e| Error::Data {
                position: "json encoder".into(),
                reason: e.to_string(),
            })?;
            key.push(b':');
            columns.push((key, column));
        }
        // A date or timestamp outside years 0..=9999 is written by chrono in another form.
        let in_range = columns.iter().all(|(_, c)| match c {
            FastColumn::Date(a) => a.iter().flatten().all(|d| civil_year_in_range(d.into())),
            FastColumn::Timestamp(a, unit) => (0..a.len())
                .filter(|&i| a.is_valid(i))
                .all(|i| civil_year_in_range(split_timestamp(a, *unit, i).0.div_euclid(86_400))),
            _ => true,
        });
        Ok(in_range.then_some(FastColumns { columns }))
    }

    fn encode(&self, rows: usize) -> Encoded {
        let mut values = Encoded::with_capacity(rows, rows * 16 * self.columns.len().max(1));
        for row in 0..rows {
            let buf = values.buffer();
            buf.put_u8(b'{');
            let mut first = true;
            for (key, column) in &self.columns {
                if !column_valid(column, row) {
                    continue;
                }
                if !first {
                    buf.put_u8(b',');
                }
                first = false;
                buf.put_slice(key);
                write_value(buf, column, row);
            }
            buf.put_u8(b'}');
            values.end_value();
        }
        values
    }
}

fn column_valid(column: &FastColumn, row: usize) -> bool {
    match column {
        FastColumn::Bool(a) => a.is_valid(row),
        FastColumn::Int(a) => a.is_valid(row),
        FastColumn::F32(a) => a.is_valid(row),
        FastColumn::F64(a) => a.is_valid(row),
        FastColumn::Text(a) => a.is_valid(row),
        FastColumn::Date(a) => a.is_valid(row),
        FastColumn::Timestamp(a, _) => a.is_valid(row),
    }
}

fn write_value(buf: &mut Vec<u8>, column: &FastColumn, row: usize) {
    // Zeroed only for the numbers that use it (the zeroing costs on every call).
    let digits = || [0u8; lexical_core::BUFFER_SIZE];
    match column {
        FastColumn::Bool(a) => buf.put_slice(if a.value(row) { b"true" } else { b"false" }),
        FastColumn::Int(a) => buf.put_slice(lexical_core::write(a.value(row), &mut digits())),
        FastColumn::F32(a) => write_float(buf, a.value(row), &mut digits()),
        FastColumn::F64(a) => write_float(buf, a.value(row), &mut digits()),
        FastColumn::Text(a) => write_string(buf, a.value(row)),
        FastColumn::Date(a) => {
            let mut text = Text::new();
            text.push(b'"');
            text.date(a.value(row).into());
            text.push(b'"');
            text.put(buf);
        }
        FastColumn::Timestamp(a, unit) => {
            let (secs, nanos) = split_timestamp(a, *unit, row);
            let mut text = Text::new();
            text.push(b'"');
            text.date(secs.div_euclid(86_400));
            text.push(b'T');
            text.time(secs.rem_euclid(86_400), nanos);
            text.push(b'"');
            text.put(buf);
        }
    }
}

fn write_float<F: lexical_core::ToLexical + FloatLike>(
    buf: &mut Vec<u8>,
    v: F,
    digits: &mut [u8; lexical_core::BUFFER_SIZE],
) {
    if v.finite() {
        buf.put_slice(lexical_core::write(v, digits));
    } else {
        buf.put_slice(b"null");
    }
}

/// Whether a float is finite (JSON has no NaN or infinity: arrow-json writes `null`).
trait FloatLike: Copy {
    fn finite(self) -> bool;
}

impl FloatLike for f32 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}

impl FloatLike for f64 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}

/// A JSON string, escaped as serde_json (and so arrow-json) escapes it.
fn write_string(buf: &mut Vec<u8>, s: &str) {
    let needs_escape = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    if needs_escape {
        let mut writer = buf.writer();
        // Writing to memory cannot fail.
        let _ = serde_json::to_writer(&mut writer, s);
    } else {
        buf.put_u8(b'"');
        buf.put_slice(s.as_bytes());
        buf.put_u8(b'"');
    }
}

/// The seconds since the epoch and the nanoseconds within the second of a timestamp.
fn split_timestamp(array: &ArrayRef, unit: TimeUnit, row: usize) -> (i64, u32) {
    use arrow::datatypes::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    let (v, per_sec) = match unit {
        TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(row), 1),
        TimeUnit::Millisecond => (
            array.as_primitive::<TimestampMillisecondType>().value(row),
            1_000,
        ),
        TimeUnit::Microsecond => (
            array.as_primitive::<TimestampMicrosecondType>().value(row),
            1_000_000,
        ),
        TimeUnit::Nanosecond => (
            array.as_primitive::<TimestampNanosecondType>().value(row),
            1_000_000_000,
        ),
    };
    let secs = v.div_euclid(per_sec);
    let sub = v.rem_euclid(per_sec);
    (secs, (sub * (1_000_000_000 / per_sec)) as u32)
}

fn civil_year_in_range(days: i64) -> bool {
    (0..=9999).contains(&civil_from_days(days).0)
}

/// A date or timestamp's text, built on the stack and copied into the buffer once: a
/// copy per piece (a `memmove` call each) cost more than formatting the pieces.
struct Text {
    bytes: [u8; 40],
    len: usize,
}

impl Text {
    fn new() -> Text {
        Text {
            bytes: [0; 40],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `v` in exactly `width` digits (zero-padded; width at most 9).
    fn digits(&mut self, v: u32, width: usize) {
        let end = (self.len + width).min(self.bytes.len());
        let mut v = v;
        for slot in self
            .bytes
            .get_mut(self.len..end)
            .unwrap_or_default()
            .iter_mut()
            .rev()
        {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len = end;
    }

    fn put(&self, buf: &mut Vec<u8>) {
        buf.put_slice(self.bytes.get(..self.len).unwrap_or_default());
    }

    /// `YYYY-MM-DD` (years 0..=9999, checked by the caller).
    fn date(&mut self, days: i64) {
        let (year, month, day) = civil_from_days(days);
        self.digits(year as u32, 4);
        self.push(b'-');
        self.digits(month, 2);
        self.push(b'-');
        self.digits(day, 2);
    }

    /// `HH:MM:SS` and the fraction as chrono writes it: none, or 3, 6 or 9 digits.
    fn time(&mut self, secs_of_day: i64, nanos: u32) {
        let s = secs_of_day as u32;
        self.digits(s / 3600, 2);
        self.push(b':');
        self.digits(s / 60 % 60, 2);
        self.push(b':');
        self.digits(s % 60, 2);
        if nanos == 0 {
            return;
        }
        self.push(b'.');
        if nanos.is_multiple_of(1_000_000) {
            self.digits(nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            self.digits(nanos / 1_000, 6);
        } else {
            self.digits(nanos, 9);
        }
    }
}

pub(super) fn decode(schema: &SchemaRef, values: &[&[u8]]) -> Result<RecordBatch> {
    if let Some(rows) = super::json_flat::decode(schema, values) {
        return Ok(rows);
    }
    decode_with_arrow(schema, values)
}

/// arrow-json's decoder: the reference, and the path for what the fast one does not take.
pub(super) fn decode_with_arrow(schema: &SchemaRef, values: &[&[u8]]) -> Result<RecordBatch> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(values.len().max(1))
        .build_decoder()?;
    super::feed_lines(values, |bytes| decoder.decode(bytes))?;
    super::one_row_each(
        schema,
        decoder.flush()?,
        values.len(),
        "json",
        "JSON objects",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Int8Array, Int32Array, LargeStringArray, TimestampMicrosecondArray,
        TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt32Array,
    };
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn via_arrow(rows: &RecordBatch) -> Vec<String> {
        encode_with_arrow(rows)
            .unwrap()
            .iter()
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .collect()
    }

    fn via_fast(rows: &RecordBatch) -> Vec<String> {
        FastColumns::new(rows)
            .unwrap()
            .expect("every column takes the fast path")
            .encode(rows.num_rows())
            .iter()
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .collect()
    }

    // Guards the fast encoder against departing from arrow-json's output, byte for byte:
    // nulls left out, escapes, non-finite floats, every timestamp unit and fraction width,
    // dates and instants before 1970 and at the ends of the supported years.
    #[test]
    fn fast_path_writes_what_arrow_json_writes() {
        let ms = [
            Some(0),
            Some(1_709_251_200_123),
            Some(-1),
            None,
            Some(253_402_300_799_999),
            Some(-62_167_219_200_000),
        ];
        let us = [
            Some(1_709_251_200_123_456),
            Some(1_709_251_200_000_000),
            Some(1_709_251_200_120_000),
            Some(-1_500_000),
            None,
            Some(7),
        ];
        let ns = [
            Some(1_709_251_200_123_456_789),
            Some(1_000_000_000),
            Some(-1),
            Some(1_709_251_200_100_000_000),
            None,
            Some(0),
        ];
        let fields = vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i8", DataType::Int8, true),
            Field::new("i32", DataType::Int32, true),
            Field::new("i64", DataType::Int64, true),
            Field::new("u32", DataType::UInt32, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("s \"q\"", DataType::Utf8, true),
            Field::new("ls", DataType::LargeUtf8, true),
            Field::new("d", DataType::Date32, true),
            Field::new("ts_s", DataType::Timestamp(TimeUnit::Second, None), true),
            Field::new(
                "ts_ms",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new(
                "ts_us",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new(
                "ts_ns",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
        ];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
                None,
                Some(false),
            ])),
            Arc::new(Int8Array::from(vec![
                Some(-128),
                Some(127),
                None,
                Some(0),
                Some(1),
                Some(-1),
            ])),
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                None,
                Some(i32::MAX),
                Some(0),
                Some(42),
                None,
            ])),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(i64::MAX),
                None,
                Some(0),
                Some(-7),
                Some(1 << 53),
            ])),
            Arc::new(UInt32Array::from(vec![
                Some(u32::MAX),
                Some(0),
                None,
                Some(1),
                None,
                Some(9),
            ])),
            Arc::new(Float32Array::from(vec![
                Some(1.1f32),
                Some(f32::NAN),
                Some(-0.0),
                Some(3.0e38),
                None,
                Some(1e-7),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(4.04),
                Some(f64::INFINITY),
                Some(1.0),
                Some(1e21),
                Some(-2.5e-300),
                None,
            ])),
            Arc::new(StringArray::from(vec![
                Some("plain"),
                Some("quote \" back \\ nl \n tab \t ctl \u{1} é ☃"),
                Some(""),
                None,
                Some("</script>"),
                Some("\u{7f}"),
            ])),
            Arc::new(LargeStringArray::from(vec![
                Some("large"),
                None,
                Some("x"),
                Some(""),
                Some("\r"),
                Some("y"),
            ])),
            Arc::new(Date32Array::from(vec![
                Some(0),
                Some(19_783),
                Some(-1),
                None,
                Some(2_932_896),
                Some(-719_528),
            ])),
            Arc::new(TimestampSecondArray::from(vec![
                Some(0),
                Some(-1),
                Some(1_709_251_200),
                None,
                Some(86_399),
                Some(951_782_400),
            ])),
            Arc::new(TimestampMillisecondArray::from(ms.to_vec())),
            Arc::new(TimestampMicrosecondArray::from(us.to_vec())),
            Arc::new(TimestampNanosecondArray::from(ns.to_vec())),
        ];
        let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        assert_eq!(via_fast(&rows), via_arrow(&rows));

        let empty = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true)])),
            vec![Arc::new(Int32Array::from(vec![None, None]))],
        )
        .unwrap();
        assert_eq!(via_fast(&empty), vec!["{}", "{}"]);
        assert_eq!(via_fast(&empty), via_arrow(&empty));
    }

    #[test]
    fn years_chrono_writes_differently_and_other_types_use_arrow() {
        // Year 10000 is written `+10000-01-01` by chrono: the batch goes through arrow.
        let far = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)])),
            vec![Arc::new(Date32Array::from(vec![Some(2_932_897)]))],
        )
        .unwrap();
        assert!(FastColumns::new(&far).unwrap().is_none());
        let values = encode(&far).unwrap();
        assert_eq!(values.len(), 1);
        assert_eq!(
            String::from_utf8(values.get(0).unwrap().to_vec()).unwrap(),
            via_arrow(&far)[0]
        );
    }
}
