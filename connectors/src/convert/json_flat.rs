//! A fast path for decoding `json` record values: flat objects whose keys are the
//! schema's columns and whose values are plain literals — what Sluice's own `json`
//! encoder writes — parsed straight into Arrow builders. Anything it is not sure of (an
//! escape, an unknown or repeated key, a nested value, an exponent or a fraction in an
//! integer column, a timestamp written otherwise, a column type it does not build) makes
//! it give the whole batch back to arrow-json, so results and errors are arrow-json's.
//! arrow-json's tape decoder, with timestamps parsed through its generic text parser, was
//! a quarter of a CSV -> topic -> Parquet pipeline's CPU.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder, TimestampMillisecondBuilder, TimestampNanosecondBuilder,
    TimestampSecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use crate::db::types::{days_from_civil, days_in_month};

/// Decodes `values` into rows of `schema`, or `None` to leave them to arrow-json.
pub(super) fn decode(schema: &SchemaRef, values: &[&[u8]]) -> Option<RecordBatch> {
    let mut columns = schema
        .fields()
        .iter()
        .map(|f| Column::new(f.data_type(), values.len()))
        .collect::<Option<Vec<_>>>()?;
    let names: Vec<&[u8]> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_bytes())
        .collect();
    let nullable: Vec<bool> = schema.fields().iter().map(|f| f.is_nullable()).collect();
    let mut seen = vec![false; columns.len()];
    for value in values {
        seen.iter_mut().for_each(|s| *s = false);
        let mut p = Parser { s: value, i: 0 };
        p.ws();
        p.eat(b'{')?;
        p.ws();
        if !p.eat_if(b'}') {
            loop {
                p.ws();
                let key = p.plain_string()?;
                let index = names.iter().position(|n| *n == key)?;
                if std::mem::replace(&mut seen[index], true) {
                    return None;
                }
                p.ws();
                p.eat(b':')?;
                p.ws();
                if p.literal(b"null") {
                    if !nullable[index] {
                        return None;
                    }
                    columns[index].null();
                } else {
                    columns[index].value(&mut p)?;
                }
                p.ws();
                if p.eat_if(b',') {
                    continue;
                }
                p.eat(b'}')?;
                break;
            }
        }
        p.ws();
        if p.i != p.s.len() {
            return None;
        }
        for (i, seen) in seen.iter().enumerate() {
            if !seen {
                if !nullable[i] {
                    return None;
                }
                columns[i].null();
            }
        }
    }
    let arrays: Vec<ArrayRef> = columns.iter_mut().map(Column::finish).collect();
    RecordBatch::try_new(schema.clone(), arrays).ok()
}

/// A cursor over one value's bytes; every step is bounds-checked.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.eat_if(b).then_some(())
    }

    fn eat_if(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let hit = self.s.get(self.i..self.i + word.len()) == Some(word);
        if hit {
            self.i += word.len();
        }
        hit
    }

    /// A string without escapes or control characters, its bytes between the quotes.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = self.s.get(self.i..)?;
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        let body = rest.get(..len)?;
        if rest.get(len) != Some(&b'"') || body.iter().any(|&b| b < 0x20) {
            return None;
        }
        self.i += len + 1;
        Some(body)
    }

    /// A JSON number's text (syntax checked by the caller's parse).
    fn number(&mut self) -> Option<&'a str> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.i += 1;
        }
        let text = std::str::from_utf8(self.s.get(start..self.i)?).ok()?;
        (!text.is_empty()).then_some(text)
    }

    /// An integer as JSON writes it: optional minus, no leading zeros, no fraction.
    fn integer(&mut self) -> Option<i64> {
        let text = self.number()?;
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return None;
        }
        text.parse().ok()
    }

    /// A number in JSON's grammar, as a float of type `F` (parsed from the text, so an
    /// `f32` is rounded once).
    fn float<F: std::str::FromStr>(&mut self) -> Option<F> {
        let text = self.number()?;
        json_number(text.as_bytes()).then(|| text.parse().ok())?
    }
}

/// Whether `t` is a number in JSON's grammar: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn json_number(t: &[u8]) -> bool {
    let mut i = usize::from(t.first() == Some(&b'-'));
    let run = |i: &mut usize| {
        let start = *i;
        while t.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = run(&mut i);
    if n == 0 || (n > 1 && t.get(int_start) == Some(&b'0')) {
        return false;
    }
    if t.get(i) == Some(&b'.') {
        i += 1;
        if run(&mut i) == 0 {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if run(&mut i) == 0 {
            return false;
        }
    }
    i == t.len()
}

/// A column's builder.
enum Column {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Text(StringBuilder),
    Date(Date32Builder),
    TsS(TimestampSecondBuilder),
    TsMs(TimestampMillisecondBuilder),
    TsUs(TimestampMicrosecondBuilder),
    TsNs(TimestampNanosecondBuilder),
}

impl Column {
    fn new(t: &DataType, rows: usize) -> Option<Column> {
        Some(match t {
            DataType::Boolean => Column::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Int8 => Column::I8(Int8Builder::with_capacity(rows)),
            DataType::Int16 => Column::I16(Int16Builder::with_capacity(rows)),
            DataType::Int32 => Column::I32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Column::I64(Int64Builder::with_capacity(rows)),
            DataType::Float32 => Column::F32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => Column::F64(Float64Builder::with_capacity(rows)),
            DataType::Utf8 => Column::Text(StringBuilder::with_capacity(rows, rows * 16)),
            DataType::Date32 => Column::Date(Date32Builder::with_capacity(rows)),
            DataType::Timestamp(TimeUnit::Second, None) => {
                Column::TsS(TimestampSecondBuilder::with_capacity(rows))
            }
            DataType::Timestamp(TimeUnit::Millisecond, None) => {
                Column::TsMs(TimestampMillisecondBuilder::with_capacity(rows))
            }
            DataType::Timestamp(TimeUnit::Microsecond, None) => {
                Column::TsUs(TimestampMicrosecondBuilder::with_capacity(rows))
            }
            DataType::Timestamp(TimeUnit::Nanosecond, None) => {
                Column::TsNs(TimestampNanosecondBuilder::with_capacity(rows))
            }
            _ => return None,
        })
    }

    fn null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::I8(b) => b.append_null(),
            Column::I16(b) => b.append_null(),
            Column::I32(b) => b.append_null(),
            Column::I64(b) => b.append_null(),
            Column::F32(b) => b.append_null(),
            Column::F64(b) => b.append_null(),
            Column::Text(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::TsS(b) => b.append_null(),
            Column::TsMs(b) => b.append_null(),
            Column::TsUs(b) => b.append_null(),
            Column::TsNs(b) => b.append_null(),
        }
    }

    /// Reads one non-null value into the column; `None` if it is not one this path takes.
    fn value(&mut self, p: &mut Parser<'_>) -> Option<()> {
        match self {
            Column::Bool(b) => {
                if p.literal(b"true") {
                    b.append_value(true);
                } else if p.literal(b"false") {
                    b.append_value(false);
                } else {
                    return None;
                }
            }
            Column::I8(b) => b.append_value(i8::try_from(p.integer()?).ok()?),
            Column::I16(b) => b.append_value(i16::try_from(p.integer()?).ok()?),
            Column::I32(b) => b.append_value(i32::try_from(p.integer()?).ok()?),
            Column::I64(b) => b.append_value(p.integer()?),
            Column::F32(b) => b.append_value(p.float()?),
            Column::F64(b) => b.append_value(p.float()?),
            Column::Text(b) => b.append_value(std::str::from_utf8(p.plain_string()?).ok()?),
            Column::Date(b) => {
                let text = p.plain_string()?;
                if text.len() != 10 {
                    return None;
                }
                b.append_value(i32::try_from(parse_date(text)?).ok()?);
            }
            Column::TsS(b) => b.append_value(parse_timestamp(p.plain_string()?, 0)?),
            Column::TsMs(b) => b.append_value(parse_timestamp(p.plain_string()?, 3)?),
            Column::TsUs(b) => b.append_value(parse_timestamp(p.plain_string()?, 6)?),
            Column::TsNs(b) => b.append_value(parse_timestamp(p.plain_string()?, 9)?),
        }
        Some(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::I8(b) => Arc::new(b.finish()),
            Column::I16(b) => Arc::new(b.finish()),
            Column::I32(b) => Arc::new(b.finish()),
            Column::I64(b) => Arc::new(b.finish()),
            Column::F32(b) => Arc::new(b.finish()),
            Column::F64(b) => Arc::new(b.finish()),
            Column::Text(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::TsS(b) => Arc::new(b.finish()),
            Column::TsMs(b) => Arc::new(b.finish()),
            Column::TsUs(b) => Arc::new(b.finish()),
            Column::TsNs(b) => Arc::new(b.finish()),
        }
    }
}

fn digits(text: &[u8]) -> Option<i64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')))
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (a real calendar date). Computed directly
/// (through chrono it was a tenth of a sink's decoding).
fn parse_date(text: &[u8]) -> Option<i64> {
    if text.get(4) != Some(&b'-') || text.get(7) != Some(&b'-') {
        return None;
    }
    let year = digits(text.get(0..4)?)?;
    let month = digits(text.get(5..7)?)?;
    let day = digits(text.get(8..10)?)?;
    let (month, day) = (u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `YYYY-MM-DDTHH:MM:SS[.f]` (or a space for the `T`; no zone) in units of 10^-`scale`
/// seconds; `None` for any other form, or a fraction finer than the unit.
fn parse_timestamp(text: &[u8], scale: u32) -> Option<i64> {
    if text.len() < 19 || !matches!(text.get(10), Some(b'T' | b' ')) {
        return None;
    }
    let days = parse_date(text.get(0..10)?)?;
    if text.get(13) != Some(&b':') || text.get(16) != Some(&b':') {
        return None;
    }
    let h = digits(text.get(11..13)?)?;
    let m = digits(text.get(14..16)?)?;
    let s = digits(text.get(17..19)?)?;
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let mut fraction = 0i64;
    if text.len() > 19 {
        if text.get(19) != Some(&b'.') {
            return None;
        }
        let f = text.get(20..)?;
        if f.is_empty() || f.len() > scale as usize {
            return None;
        }
        fraction = digits(f)? * 10i64.pow(scale - f.len() as u32);
    }
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    secs.checked_mul(10i64.pow(scale))?.checked_add(fraction)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Date32Array, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::schema::parse_schema;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i8", DataType::Int8, true),
            Field::new("i32", DataType::Int32, true),
            Field::new("i64", DataType::Int64, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
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
        ]))
    }

    fn arrow(schema: &SchemaRef, values: &[&str]) -> RecordBatch {
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        super::super::json::decode_with_arrow(schema, &refs).unwrap()
    }

    fn fast(schema: &SchemaRef, values: &[&str]) -> Option<RecordBatch> {
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        decode(schema, &refs)
    }

    // Guards the fast path against departing from arrow-json: every value it takes must
    // decode to exactly what arrow-json decodes.
    // Guards the direct date arithmetic against chrono's, over every day of years
    // 0..=9999 at the calendar's edges and every month's invalid days.
    #[test]
    fn dates_count_days_as_chrono_does() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for year in (0..=9999).filter(|y| y % 97 == 0 || [1600, 1900, 2000, 2100].contains(y)) {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    let want = chrono::NaiveDate::from_ymd_opt(year, month, day)
                        .map(|d| d.signed_duration_since(epoch).num_days());
                    assert_eq!(parse_date(text.as_bytes()), want, "{text}");
                }
            }
        }
    }

    #[test]
    fn takes_what_arrow_json_reads_the_same() {
        let schema = schema();
        let values = [
            r#"{"b":true,"i8":-128,"i32":2147483647,"i64":-9223372036854775808,"f32":1.1,"f64":4.04,"s":"plain é ☃","d":"2024-03-01","ts_s":"1970-01-01T00:00:00","ts_ms":"2024-03-01T01:02:03.004","ts_us":"2024-03-01 01:02:03.000005","ts_ns":"1969-12-31T23:59:59.999999999"}"#,
            r#"{}"#,
            r#" { "s" : "" , "b" : false , "f64" : -0.0 } "#,
            r#"{"f64":1e21,"f32":-2.5E-3,"i64":0,"d":"0000-01-01","ts_ms":"9999-12-31T23:59:59.999"}"#,
            r#"{"b":null,"i8":null,"s":null,"ts_ns":null,"f64":12,"ts_us":"2024-02-29T12:00:00.5"}"#,
        ];
        let got = fast(&schema, &values).expect("the fast path takes these");
        assert_eq!(got, arrow(&schema, &values));
    }

    #[test]
    fn gives_back_what_it_is_not_sure_of() {
        let schema = schema();
        for value in [
            r#"{"s":"esc\"aped"}"#,
            r#"{"other":1}"#,
            r#"{"i64":1,"i64":2}"#,
            r#"{"s":{"nested":1}}"#,
            r#"{"i64":1.0}"#,
            r#"{"i64":1e3}"#,
            r#"{"i64":01}"#,
            r#"{"f64":1.}"#,
            r#"{"f64":.5}"#,
            r#"{"f64":"1.5"}"#,
            r#"{"i8":128}"#,
            r#"{"ts_ms":"2024-03-01T00:00:00Z"}"#,
            r#"{"ts_ms":"2024-03-01T00:00:00.0001"}"#,
            r#"{"ts_s":1709251200}"#,
            r#"{"d":"2024-02-30"}"#,
            r#"{"s":"a"} trailing"#,
            r#"{"s":"a",}"#,
            "[1]",
            "not json",
        ] {
            assert!(fast(&schema, &[value]).is_none(), "{value}");
        }
        // A NULL in a NOT NULL column is arrow-json's error to report.
        let strict = parse_schema("id BIGINT NOT NULL").unwrap();
        assert!(fast(&strict, &[r#"{}"#]).is_none());
        assert!(fast(&strict, &[r#"{"id":null}"#]).is_none());
        // Unsupported column types go to arrow-json.
        let decimal = parse_schema("x DECIMAL(10,2)").unwrap();
        assert!(fast(&decimal, &[r#"{"x":1.5}"#]).is_none());
    }

    #[test]
    fn the_public_decoder_is_right_either_way() {
        let schema = parse_schema("id BIGINT, name VARCHAR, amount DOUBLE, day DATE").unwrap();
        let values: Vec<&[u8]> = vec![
            br#"{"id":1,"name":"a\nb","amount":2.5,"day":"2024-01-02"}"#,
            br#"{"id":2,"name":"plain","amount":null}"#,
        ];
        let rows = super::super::json::decode(&schema, &values).unwrap();
        let id = rows
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let name = rows
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let amount = rows
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let day = rows
            .column(3)
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap();
        assert_eq!(id.values(), &[1, 2]);
        assert_eq!(name.value(0), "a\nb");
        assert!(amount.is_null(1));
        assert_eq!(day.value(0), 19_724);
        assert!(day.is_null(1));
    }
}
