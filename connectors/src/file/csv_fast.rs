//! A CSV decoder for chunks of whole records, giving exactly the rows arrow's CSV decoder
//! gives, in a fraction of its time.
//!
//! arrow's decoder runs every byte through `csv_core`'s state machine into a buffer of
//! string records, then parses each column from that buffer: a `Result<Option<_>>` per
//! value, a time-zone-aware `DateTime` per timestamp. This one splits the fields in place
//! (a quoted field is unescaped into a scratch buffer) and parses each field straight into
//! its column: integers, decimals of up to 15 digits, ISO dates and timestamps by hand,
//! and anything else through arrow's own parser for that type. Strings are checked to be
//! UTF-8 once per column rather than once per value.
//!
//! It is a fast path, not a second dialect. What it returns is what arrow's decoder
//! returns for the same chunk; where it is not sure it would agree it gives up (`None`)
//! and the caller hands the chunk to arrow's decoder, which also names a bad record. It
//! gives up on a lone `\r` (csv_core ends a record there), a quote left open, a record
//! with the wrong number of fields, bytes that are not UTF-8, a value no parser takes, a
//! NULL in a NOT NULL column, and any column type it does not build. The tests compare
//! both decoders on generated and mutated input.

use arrow::array::RecordBatch;
use arrow::compute::kernels::cast_utils::{Parser, parse_decimal, string_to_datetime};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, SchemaRef, TimeUnit,
};

use super::parse::CsvOptions;
use crate::columns::ColumnBuilder;

/// A decoder of CSV records into rows of one schema, if every column is of a type it
/// builds.
#[derive(Debug, Clone)]
pub(super) struct FastCsv {
    schema: SchemaRef,
    delimiter: u8,
    quote: u8,
}

impl FastCsv {
    /// A decoder for `schema`, or `None` if a column's type is one it does not build (or
    /// the dialect is one it does not read): those chunks stay with arrow's decoder.
    pub(super) fn new(schema: &SchemaRef, csv: CsvOptions) -> Option<FastCsv> {
        let special = [b'\n', b'\r'];
        if special.contains(&csv.delimiter) || special.contains(&csv.quote) {
            return None;
        }
        if csv.delimiter == csv.quote {
            return None;
        }
        let built = |ty: &DataType| match ty {
            DataType::Boolean
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::Date32
            | DataType::Decimal128(..) => true,
            // arrow reads a naive timestamp, and one in UTC, through `Utc`.
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                tz.as_ref().is_none_or(|tz| tz.as_ref() == "UTC")
            }
            _ => false,
        };
        if schema.fields().is_empty() || !schema.fields().iter().all(|f| built(f.data_type())) {
            return None;
        }
        Some(FastCsv {
            schema: schema.clone(),
            delimiter: csv.delimiter,
            quote: csv.quote,
        })
    }

    /// The rows of `chunk` (whole records, the last one possibly without its newline), or
    /// `None` where arrow's decoder is to decide. `rows` is an upper bound on the records,
    /// for the builders' capacity.
    pub(super) fn decode(&self, chunk: &[u8], rows: usize) -> Option<RecordBatch> {
        // A string column holds at most the chunk's bytes; a typical one far less.
        let bytes = (chunk.len() / 4).max(64);
        let mut columns = self
            .schema
            .fields()
            .iter()
            .map(|f| ColumnBuilder::new(f.data_type(), rows, bytes))
            .collect::<Option<Vec<_>>>()?;
        let last = columns.len().saturating_sub(1);
        let mut dates = vec![LastDate::default(); columns.len()];
        let mut scratch = Vec::new();
        let mut at = 0;
        let end = chunk.len();
        while at < end {
            // csv_core skips empty lines.
            match chunk[at] {
                b'\n' => {
                    at += 1;
                    continue;
                }
                b'\r' if chunk.get(at + 1) == Some(&b'\n') => {
                    at += 2;
                    continue;
                }
                _ => {}
            }
            for (i, (column, last_date)) in columns.iter_mut().zip(&mut dates).enumerate() {
                let (field, next, ended) = self.field(chunk, at, &mut scratch)?;
                let field = match field {
                    Field::InPlace(start, stop) => &chunk[start..stop],
                    Field::Unescaped => scratch.as_slice(),
                };
                push(column, last_date, field)?;
                at = next;
                // The record must end at its last field, and only there.
                if ended != (i == last) {
                    return None;
                }
            }
        }
        let arrays = columns
            .into_iter()
            .map(|c| c.finish().ok())
            .collect::<Option<Vec<_>>>()?;
        RecordBatch::try_new(self.schema.clone(), arrays).ok()
    }

    /// The field starting at `at`: where its bytes are, where the next field starts, and
    /// whether it ended its record.
    #[inline]
    fn field(
        &self,
        chunk: &[u8],
        at: usize,
        scratch: &mut Vec<u8>,
    ) -> Option<(Field, usize, bool)> {
        let quote = self.quote;
        if chunk.get(at) != Some(&quote) {
            let i = self.unquoted_end(chunk, at);
            let (next, ended) = self.after_field(chunk, i)?;
            return Some((Field::InPlace(at, i), next, ended));
        }
        // A quoted field: `""` inside is one quote; what follows the closing quote up to
        // the delimiter is part of the field too, as csv_core reads it.
        scratch.clear();
        let mut i = at + 1;
        loop {
            let close = i + memchr::memchr(quote, chunk.get(i..)?)?;
            scratch.extend_from_slice(&chunk[i..close]);
            if chunk.get(close + 1) == Some(&quote) {
                scratch.push(quote);
                i = close + 2;
            } else {
                i = close + 1;
                break;
            }
        }
        let start = i;
        let i = self.unquoted_end(chunk, start);
        scratch.extend_from_slice(&chunk[start..i]);
        let (next, ended) = self.after_field(chunk, i)?;
        Some((Field::Unescaped, next, ended))
    }

    /// Where unquoted field bytes starting at `at` end: at the delimiter, a line end, or
    /// the chunk's end.
    #[inline]
    fn unquoted_end(&self, chunk: &[u8], at: usize) -> usize {
        field_end(chunk, at, self.delimiter)
    }

    /// Past the byte that ended a field at `i` (a delimiter, a newline, `\r\n`, or the
    /// chunk's end); whether it ended the record. `None` for a lone `\r`.
    #[inline]
    fn after_field(&self, chunk: &[u8], i: usize) -> Option<(usize, bool)> {
        match chunk.get(i) {
            None => Some((i, true)),
            Some(b'\n') => Some((i + 1, true)),
            Some(b'\r') if chunk.get(i + 1) == Some(&b'\n') => Some((i + 2, true)),
            Some(b'\r') => None,
            Some(_) => Some((i + 1, false)),
        }
    }
}

/// Where unquoted field bytes starting at `at` end: the first `delimiter`, `\n` or `\r`
/// at or after `at`, else `chunk.len()`.
///
/// Eight bytes are tested at a time (fields are mostly shorter than that, and a byte at a
/// time with three comparisons each was a third of the fast path's time): XOR with a
/// byte sets the bytes equal to it to zero, and `zero_bytes` marks zero bytes.
#[inline]
fn field_end(chunk: &[u8], at: usize, delimiter: u8) -> usize {
    let rest = chunk.get(at..).unwrap_or_default();
    let (words, tail) = rest.as_chunks::<8>();
    let (delimiters, newlines, returns) = (splat(delimiter), splat(b'\n'), splat(b'\r'));
    for (n, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        let found = zero_bytes(word ^ delimiters)
            | zero_bytes(word ^ newlines)
            | zero_bytes(word ^ returns);
        if found != 0 {
            // Little-endian: the lowest marked byte is the first in the chunk.
            return at + n * 8 + (found.trailing_zeros() / 8) as usize;
        }
    }
    let before_tail = at + words.len() * 8;
    tail.iter()
        .position(|&b| b == delimiter || b == b'\n' || b == b'\r')
        .map_or(chunk.len(), |n| before_tail + n)
}

/// A word of eight `byte`s.
#[inline(always)]
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The top bit of each zero byte of `word` set, and no other bit below the lowest zero
/// byte (the subtraction's borrow can mark a byte above a zero byte, never one below).
#[inline(always)]
const fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(splat(0x01)) & !word & splat(0x80)
}

/// Where a field's bytes are.
enum Field {
    /// `chunk[start..stop]`.
    InPlace(usize, usize),
    /// In the scratch buffer (a quoted field, unescaped).
    Unescaped,
}

/// Appends one field's value (an empty field is NULL, as arrow's decoder reads it);
/// `None` if arrow's parser for the type would not take it either.
#[inline]
fn push(column: &mut ColumnBuilder, last_date: &mut LastDate, field: &[u8]) -> Option<()> {
    if field.is_empty() {
        column.append_null();
        return Some(());
    }
    match column {
        ColumnBuilder::Boolean(b) => {
            if field.eq_ignore_ascii_case(b"true") {
                b.append_value(true);
            } else if field.eq_ignore_ascii_case(b"false") {
                b.append_value(false);
            } else {
                return None;
            }
        }
        ColumnBuilder::Int16(b) => b.append_value(match int(field) {
            Some(v) => i16::try_from(v).ok()?,
            None => Int16Type::parse(text(field)?)?,
        }),
        ColumnBuilder::Int32(b) => b.append_value(match int(field) {
            Some(v) => i32::try_from(v).ok()?,
            None => Int32Type::parse(text(field)?)?,
        }),
        ColumnBuilder::Int64(b) => b.append_value(match int(field) {
            Some(v) => v,
            None => Int64Type::parse(text(field)?)?,
        }),
        ColumnBuilder::Float32(b) => b.append_value(Float32Type::parse(text(field)?)?),
        ColumnBuilder::Float64(b) => b.append_value(match decimal(field) {
            Some(v) => v,
            None => Float64Type::parse(text(field)?)?,
        }),
        ColumnBuilder::Utf8(b) => b.append_value(field),
        // Not a type the fast path is made for (`FastCsv::new`).
        ColumnBuilder::Binary(_) => return None,
        ColumnBuilder::Date32(b) => b.append_value(match last_date.days(field) {
            Some(days) => days,
            None => Date32Type::parse(text(field)?)?,
        }),
        ColumnBuilder::TimestampMicros(b, _) => {
            b.append_value(match timestamp_micros(field, last_date) {
                Some(micros) => micros,
                None => string_to_datetime(&chrono::Utc, text(field)?)
                    .ok()?
                    .timestamp_micros(),
            })
        }
        ColumnBuilder::Decimal128(b, p, s) => {
            b.append_value(parse_decimal::<Decimal128Type>(text(field)?, *p, *s).ok()?)
        }
    }
    Some(())
}

/// A field as text, for arrow's parsers.
fn text(field: &[u8]) -> Option<&str> {
    std::str::from_utf8(field).ok()
}

/// `-?[0-9]{1,18}`: an integer that cannot overflow `i64`. Anything else (a sign `+`,
/// spaces, more digits) is left to arrow's parser.
#[inline]
fn int(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + i64::from(d);
    }
    Some(if negative { -value } else { value })
}

/// Powers of ten that are exact in an `f64`.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `-?[0-9]+(\.[0-9]+)?` with at most 15 digits in all: the digits as an integer are exact
/// in an `f64`, and so is the power of ten, so one division gives the correctly rounded
/// value, the same one any correct parser (arrow's lexical-core) gives. Anything else is
/// left to arrow's parser.
#[inline]
fn decimal(field: &[u8]) -> Option<f64> {
    let (negative, body) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    if body.is_empty() || body.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0;
    let mut point = None;
    for (i, &b) in body.iter().enumerate() {
        if b == b'.' {
            if point.is_some() || i == 0 || i + 1 == body.len() {
                return None;
            }
            point = Some(i);
            continue;
        }
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        mantissa = mantissa * 10 + u64::from(d);
        digits += 1;
    }
    if digits > 15 {
        return None;
    }
    let scale = point.map_or(0, |p| body.len() - p - 1);
    let value = mantissa as f64 / POWERS_OF_TEN[scale];
    Some(if negative { -value } else { value })
}

/// Two ASCII digits at `bytes[at..at + 2]`.
#[inline]
fn two_digits(bytes: &[u8], at: usize) -> Option<u32> {
    let (a, b) = (
        bytes[at].wrapping_sub(b'0'),
        bytes[at + 1].wrapping_sub(b'0'),
    );
    (a <= 9 && b <= 9).then(|| u32::from(a) * 10 + u32::from(b))
}

/// The last date a column read, as text and as days: rows in time order share their date,
/// which is then compared rather than converted again.
#[derive(Debug, Clone, Copy, Default)]
struct LastDate {
    text: [u8; 10],
    days: Option<i32>,
}

impl LastDate {
    /// [`date`] of `field`, from the last one if it is the same text.
    #[inline]
    fn days(&mut self, field: &[u8]) -> Option<i32> {
        if self.days.is_some() && field == self.text {
            return self.days;
        }
        let days = date(field)?;
        if let Ok(text) = field.try_into() {
            // Always: `date` takes only 10 bytes.
            self.text = text;
            self.days = Some(days);
        }
        Some(days)
    }
}

/// `YYYY-MM-DD` (exactly) as days since 1970-01-01, for a real date; anything else is left
/// to arrow's parser.
#[inline]
fn date(field: &[u8]) -> Option<i32> {
    if field.len() != 10 || field[4] != b'-' || field[7] != b'-' {
        return None;
    }
    let year = two_digits(field, 0)? * 100 + two_digits(field, 2)?;
    let (month, day) = (two_digits(field, 5)?, two_digits(field, 8)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year as i32, month, day))
}

/// `YYYY-MM-DD[ T]HH:MM:SS` with an optional fraction of 1 to 9 digits, read as UTC, in
/// microseconds since the epoch (the fraction truncated, as arrow does); anything else
/// (an offset, a `Z`, a single-digit field) is left to arrow's parser.
#[inline]
fn timestamp_micros(field: &[u8], last_date: &mut LastDate) -> Option<i64> {
    if field.len() < 19 || !matches!(field[10], b' ' | b'T') {
        return None;
    }
    let days = last_date.days(&field[..10])?;
    if field[13] != b':' || field[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        two_digits(field, 11)?,
        two_digits(field, 14)?,
        two_digits(field, 17)?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut nanos: i64 = 0;
    if field.len() > 19 {
        let fraction = &field[20..];
        if field[19] != b'.' || fraction.is_empty() || fraction.len() > 9 {
            return None;
        }
        for &b in fraction {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            nanos = nanos * 10 + i64::from(d);
        }
        nanos *= 10i64.pow(9 - fraction.len() as u32);
    }
    let seconds = i64::from(days) * 86_400
        + i64::from(hour) * 3_600
        + i64::from(minute) * 60
        + i64::from(second);
    Some(seconds * 1_000_000 + nanos / 1_000)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i32;
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i32 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_schema;

    /// Every column type the fast path builds.
    const COLUMNS: &str = "b BOOLEAN, s SMALLINT, i INT, l BIGINT, r REAL, d DOUBLE, t VARCHAR, \
                           day DATE, ts TIMESTAMP, tz TIMESTAMPTZ, n DECIMAL(12,3)";

    /// arrow's decoder on `chunk`, as `RecordParser` runs it without the fast path (the
    /// sources end a last record that has no newline with one).
    fn arrow_decode(schema: &SchemaRef, csv: CsvOptions, chunk: &[u8]) -> Option<RecordBatch> {
        let mut chunk = chunk.to_vec();
        if chunk.last().is_some_and(|&b| b != b'\n') {
            chunk.push(b'\n');
        }
        let chunk = chunk.as_slice();
        let mut decoder = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(false)
            .with_delimiter(csv.delimiter)
            .with_quote(csv.quote)
            .with_batch_size(chunk.len() + 1)
            .build_decoder();
        let mut rest = chunk;
        while !rest.is_empty() {
            let read = decoder.decode(rest).ok()?;
            if read == 0 {
                return None;
            }
            rest = &rest[read..];
        }
        decoder.flush().ok()?
    }

    struct Xorshift(u64);

    impl Xorshift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
            of[self.next() as usize % of.len()]
        }
    }

    /// A field of the column `c` of `COLUMNS`: mostly values the fast path reads itself,
    /// some that only arrow's parsers read, and empty (NULL) ones.
    fn field(rng: &mut Xorshift, c: usize) -> String {
        if rng.next().is_multiple_of(13) {
            return String::new();
        }
        let n = rng.next();
        let small = (n % 100_000) as i64 - 50_000;
        match c {
            0 => rng.pick(&["true", "false", "TRUE", "False"]).into(),
            1 => match n % 4 {
                0 => "+12".into(),
                1 => format!("{}", small % 30_000),
                _ => format!("{}", n % 300),
            },
            2 => match n % 5 {
                0 => format!(" {small} "),
                1 => "-2147483648".into(),
                _ => format!("{}", small * 40_000),
            },
            3 => match n % 6 {
                0 => "9223372036854775807".into(),
                1 => "-9223372036854775808".into(),
                2 => "007".into(),
                _ => format!("{}", (n >> 3) as i64),
            },
            4 => format!("{}.{}", small, n % 1000),
            5 => match n % 9 {
                0 => "1e300".into(),
                1 => "-0".into(),
                2 => "00.5".into(),
                3 => "0.1234567890123456789".into(),
                4 => "123456789012345.6".into(),
                5 => ".5".into(),
                6 => "NaN".into(),
                _ => format!("{}.{:03}", small, n % 1000),
            },
            6 => match n % 6 {
                0 => "\"quoted, with \"\"quotes\"\"\"".into(),
                1 => "\"two\nlines\"".into(),
                2 => "\"q\"tail".into(),
                3 => "naïve ünïcödé".into(),
                4 => "mid\"quote".into(),
                _ => format!("user-{}", n % 1000),
            },
            7 => match n % 5 {
                0 => "2024-2-9".into(),
                1 => "1969-12-31".into(),
                2 => "2000-02-29".into(),
                _ => format!("{:04}-{:02}-{:02}", 1900 + n % 200, 1 + n % 12, 1 + n % 28),
            },
            8 | 9 => match n % 8 {
                0 => "2024-03-01T12:00:00Z".into(),
                1 => "2024-03-01 12:00:00+02:00".into(),
                2 => "1960-01-01 00:00:00.5".into(),
                3 => "2024-03-01 23:59:59.123456789".into(),
                4 => "2024-03-01".into(),
                _ => format!(
                    "2024-03-{:02} {:02}:{:02}:{:02}.{:03}",
                    1 + n % 28,
                    n % 24,
                    n % 60,
                    (n >> 8) % 60,
                    n % 1000
                ),
            },
            _ => format!("{}.{:03}", small, n % 1000),
        }
    }

    /// A chunk of `rows` records; line ends `\n`, sometimes `\r\n`, with blank lines.
    fn chunk(rng: &mut Xorshift, rows: usize, columns: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rows {
            let fields: Vec<String> = (0..columns).map(|c| field(rng, c)).collect();
            out.extend_from_slice(fields.join(",").as_bytes());
            match rng.next() % 20 {
                0 => out.extend_from_slice(b"\r\n"),
                1 => out.extend_from_slice(b"\n\n"),
                _ => out.push(b'\n'),
            }
        }
        out
    }

    #[test]
    fn reads_what_arrow_reads_and_gives_up_on_the_rest() {
        let schema = parse_schema(COLUMNS).unwrap();
        let csv = CsvOptions::default();
        let fast = FastCsv::new(&schema, csv).unwrap();
        let mut rng = Xorshift(0x2545_F491_4F6C_DD1D);
        let (mut same, mut gave_up) = (0, 0);
        for round in 0..3_000 {
            let mut bytes = chunk(&mut rng, 1 + round % 7, 11);
            // Most chunks as generated; the rest with a byte changed, cut or added.
            match rng.next() % 8 {
                0 if !bytes.is_empty() => {
                    let at = rng.next() as usize % bytes.len();
                    let pool = b",\"\r\n-.:0a\xff";
                    bytes[at] = pool[rng.next() as usize % pool.len()];
                }
                1 => bytes.truncate(rng.next() as usize % (bytes.len() + 1)),
                2 => bytes.insert(rng.next() as usize % (bytes.len() + 1), b','),
                _ => {}
            }
            let want = arrow_decode(&schema, csv, &bytes);
            match fast.decode(&bytes, bytes.len() + 1) {
                Some(got) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let want = want.unwrap_or_else(|| panic!("arrow refused {text:?}"));
                    for (c, field) in schema.fields().iter().enumerate() {
                        assert_eq!(
                            got.column(c),
                            want.column(c),
                            "{} of {text:?}",
                            field.name()
                        );
                    }
                    assert_eq!(got, want);
                    same += 1;
                }
                None => gave_up += 1,
            }
        }
        assert!(
            same > 2_000,
            "the fast path read {same} chunks, gave up on {gave_up}"
        );
    }

    #[test]
    fn clean_input_is_read_without_giving_up() {
        // Guards against a fast path that silently hands everything to arrow.
        let schema =
            parse_schema("id BIGINT, user VARCHAR, amount DOUBLE, ts TIMESTAMP, day DATE").unwrap();
        let fast = FastCsv::new(&schema, CsvOptions::default()).unwrap();
        let text = "1,user-1,10.25,2024-03-01 00:00:00.001,2024-03-01\n\
                    -2,\"a, b\",-0.5,2024-02-29T23:59:59,1970-01-01\n\
                    3,,,,\n";
        let rows = fast.decode(text.as_bytes(), 4).unwrap();
        assert_eq!(rows.num_rows(), 3);
        assert_eq!(
            Some(rows),
            arrow_decode(&schema, CsvOptions::default(), text.as_bytes())
        );
    }

    #[test]
    fn other_dialects_and_types_are_read_or_left_to_arrow() {
        let schema = parse_schema("a VARCHAR, b BIGINT").unwrap();
        let semicolon = CsvOptions {
            header: false,
            delimiter: b';',
            quote: b'\'',
        };
        let fast = FastCsv::new(&schema, semicolon).unwrap();
        let text = b"'x;y''z';5\nplain;6\n";
        let rows = fast.decode(text, 3).unwrap();
        assert_eq!(Some(rows), arrow_decode(&schema, semicolon, text));
        // A type the fast path does not build: the whole chunk is arrow's.
        let binary = parse_schema("a BYTEA").unwrap();
        assert!(FastCsv::new(&binary, CsvOptions::default()).is_none());
        // A lone carriage return ends a record for csv_core: left to arrow.
        assert!(fast.decode(b"a;1\rb;2\n", 3).is_none());
        // NULL in a NOT NULL column: left to arrow, which names it.
        let strict = parse_schema("a VARCHAR NOT NULL, b BIGINT").unwrap();
        let fast = FastCsv::new(&strict, CsvOptions::default()).unwrap();
        assert!(fast.decode(b",1\n", 2).is_none());
    }

    #[test]
    fn a_field_ends_where_the_byte_loop_says() {
        // Every start in chunks of 0..40 bytes with an end byte (each delimiter tried, `\n`,
        // `\r`) at each position or none, over bytes next to the ones looked for (the
        // subtraction's borrow) and high bytes.
        let byte_loop = |chunk: &[u8], at: usize, delimiter: u8| {
            chunk[at..]
                .iter()
                .position(|&b| b == delimiter || b == b'\n' || b == b'\r')
                .map_or(chunk.len(), |n| at + n)
        };
        for delimiter in [b',', b';', b'\t', b'|', 0x01, 0xff] {
            for len in 0..40 {
                for fill in [
                    b'a',
                    0x00,
                    0x01,
                    0x0b,
                    0x0c,
                    0x0e,
                    0x80,
                    0xfe,
                    delimiter ^ 1,
                ] {
                    for end in 0..=len {
                        for end_byte in [delimiter, b'\n', b'\r'] {
                            let mut chunk = vec![fill; len];
                            if end < len {
                                chunk[end] = end_byte;
                            }
                            // A second end byte further on must not be the one found.
                            if end + 3 < len {
                                chunk[end + 3] = b'\n';
                            }
                            for at in 0..=len {
                                assert_eq!(
                                    field_end(&chunk, at, delimiter),
                                    byte_loop(&chunk, at, delimiter),
                                    "{chunk:?} from {at}, delimiter {delimiter}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_repeated_date_is_read_the_same_as_a_new_one() {
        // Guards the per-column last-date cache: runs of one date, a change back to an
        // earlier date, the date column and the timestamp column sharing text but not a
        // cache, a bad date after a good one, and a NULL between two equal dates.
        let schema = parse_schema("day DATE, ts TIMESTAMP").unwrap();
        let fast = FastCsv::new(&schema, CsvOptions::default()).unwrap();
        let text = "2024-03-01,2024-03-01 00:00:00.5\n\
                    2024-03-01,2024-03-01 23:59:59\n\
                    2024-03-02,2024-03-01 12:00:00\n\
                    2024-03-01,2024-03-02T00:00:01\n\
                    ,2024-03-02 00:00:02\n\
                    2024-03-01,2024-03-02 00:00:03\n";
        let rows = fast.decode(text.as_bytes(), 6).unwrap();
        assert_eq!(
            Some(rows),
            arrow_decode(&schema, CsvOptions::default(), text.as_bytes())
        );
        // A bad date right after the same good text still fails (arrow names it).
        assert!(fast.decode(b"2024-03-01,\n2024-02-30,\n", 2).is_none());
    }

    #[test]
    fn dates_match_chrono_across_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let day = chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + days).unwrap();
            let text = day.format("%Y-%m-%d").to_string();
            if text.len() == 10 {
                assert_eq!(date(text.as_bytes()), Some(days), "{text}");
            }
        }
    }
}
