//! PostgreSQL's binary `COPY` format, written straight from Arrow arrays.
//!
//! ```text
//! header:  "PGCOPY\n\xff\r\n\0"  i32 flags = 0  i32 extension length = 0
//! tuple:   i16 field count, then per field: i32 length (-1: NULL), that many bytes
//! trailer: i16 -1
//! ```
//!
//! All integers are big-endian. Values use each type's binary send format: dates are days
//! and timestamps microseconds since 2000-01-01, numerics are base-10000 digit groups.
//! Arrays are cast to the table's column types before encoding (the server checks each
//! value's length against its column type), so one match per column and batch picks the
//! encoder and the row loop only copies bytes.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType,
};
use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The header of a binary COPY stream.
pub fn put_header(buf: &mut BytesMut) {
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
}

/// The trailer of a binary COPY stream.
pub fn put_trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

enum Col<'a> {
    Bool(&'a arrow::array::BooleanArray),
    I16(&'a arrow::array::PrimitiveArray<Int16Type>),
    I32(&'a arrow::array::PrimitiveArray<Int32Type>),
    I64(&'a arrow::array::PrimitiveArray<Int64Type>),
    F32(&'a arrow::array::PrimitiveArray<Float32Type>),
    F64(&'a arrow::array::PrimitiveArray<Float64Type>),
    Numeric(&'a arrow::array::PrimitiveArray<Decimal128Type>, i8),
    Text(&'a arrow::array::StringArray),
    Bytes(&'a arrow::array::BinaryArray),
    Date(&'a arrow::array::PrimitiveArray<Date32Type>),
    Ts(&'a arrow::array::PrimitiveArray<TimestampMicrosecondType>),
}

impl<'a> Col<'a> {
    fn new(array: &'a dyn Array) -> Result<Col<'a>> {
        Ok(match array.data_type() {
            DataType::Boolean => Col::Bool(array.as_boolean()),
            DataType::Int16 => Col::I16(array.as_primitive()),
            DataType::Int32 => Col::I32(array.as_primitive()),
            DataType::Int64 => Col::I64(array.as_primitive()),
            DataType::Float32 => Col::F32(array.as_primitive()),
            DataType::Float64 => Col::F64(array.as_primitive()),
            DataType::Decimal128(_, s) => Col::Numeric(array.as_primitive(), *s),
            DataType::Utf8 => Col::Text(array.as_string()),
            DataType::Binary => Col::Bytes(array.as_binary()),
            DataType::Date32 => Col::Date(array.as_primitive()),
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => {
                Col::Ts(array.as_primitive())
            }
            other => {
                return Err(Error::connector(
                    "postgres",
                    format!("no COPY encoding for {other} (a bug: columns are cast first)"),
                ));
            }
        })
    }

    #[inline]
    fn put(&self, row: usize, buf: &mut BytesMut) {
        macro_rules! fixed {
            ($array:expr, $len:expr, $put:ident, $value:expr) => {{
                if $array.is_null(row) {
                    buf.put_i32(-1);
                } else {
                    buf.put_i32($len);
                    buf.$put($value);
                }
            }};
        }
        match self {
            Col::Bool(a) => fixed!(a, 1, put_u8, u8::from(a.value(row))),
            Col::I16(a) => fixed!(a, 2, put_i16, a.value(row)),
            Col::I32(a) => fixed!(a, 4, put_i32, a.value(row)),
            Col::I64(a) => fixed!(a, 8, put_i64, a.value(row)),
            Col::F32(a) => fixed!(a, 4, put_f32, a.value(row)),
            Col::F64(a) => fixed!(a, 8, put_f64, a.value(row)),
            Col::Date(a) => fixed!(a, 4, put_i32, a.value(row).saturating_sub(PG_EPOCH_DAYS)),
            Col::Ts(a) => fixed!(a, 8, put_i64, a.value(row).saturating_sub(PG_EPOCH_MICROS)),
            Col::Numeric(a, scale) => {
                if a.is_null(row) {
                    buf.put_i32(-1);
                } else {
                    put_numeric(buf, a.value(row), *scale);
                }
            }
            Col::Text(a) => {
                if a.is_null(row) {
                    buf.put_i32(-1);
                } else {
                    let v = a.value(row).as_bytes();
                    buf.put_i32(v.len() as i32);
                    buf.put_slice(v);
                }
            }
            Col::Bytes(a) => {
                if a.is_null(row) {
                    buf.put_i32(-1);
                } else {
                    let v = a.value(row);
                    buf.put_i32(v.len() as i32);
                    buf.put_slice(v);
                }
            }
        }
    }
}

/// Encodes rows `range` of `rows` as COPY tuples (with `seq_start + i` as an extra last
/// BIGINT field when `seq_start` is given, for staging tables that keep arrival order).
pub struct TupleWriter<'a> {
    columns: Vec<Col<'a>>,
    field_count: i16,
    seq_start: Option<i64>,
}

impl<'a> TupleWriter<'a> {
    /// A writer over the columns of `rows` (canonical types).
    pub fn new(rows: &'a RecordBatch, seq_start: Option<i64>) -> Result<TupleWriter<'a>> {
        let columns = rows
            .columns()
            .iter()
            .map(|c| Col::new(c.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let field_count = i16::try_from(columns.len() + usize::from(seq_start.is_some()))
            .map_err(|_| Error::connector("postgres", "more than 32767 columns"))?;
        Ok(TupleWriter {
            columns,
            field_count,
            seq_start,
        })
    }

    /// Appends row `row`.
    #[inline]
    pub fn put_row(&self, row: usize, buf: &mut BytesMut) {
        buf.put_i16(self.field_count);
        for column in &self.columns {
            column.put(row, buf);
        }
        if let Some(start) = self.seq_start {
            buf.put_i32(8);
            buf.put_i64(start + row as i64);
        }
    }
}

/// A numeric in PostgreSQL's binary form: i16 digit count, i16 weight (of the first
/// base-10000 group), u16 sign, i16 display scale, then the groups.
pub fn put_numeric(buf: &mut BytesMut, value: i128, scale: i8) {
    let scale = u32::try_from(scale).unwrap_or(0).min(38);
    let negative = value < 0;
    let magnitude = value.unsigned_abs();
    let pow = 10u128.pow(scale);
    let (mut int, mut frac) = (magnitude / pow, magnitude % pow);
    // 38 digits make at most 10 integer and 10 fractional groups.
    let mut groups = [0u16; 24];
    let frac_groups = scale.div_ceil(4) as usize;
    let mut int_groups = [0u16; 12];
    let mut n_int = 0;
    while int > 0 && n_int < int_groups.len() {
        int_groups[n_int] = (int % 10_000) as u16;
        int /= 10_000;
        n_int += 1;
    }
    let mut n = 0;
    for g in int_groups.iter().take(n_int).rev() {
        groups[n] = *g;
        n += 1;
    }
    if frac_groups > 0 {
        // The last group holds the scale's leftover digits, padded with zeros on the right.
        let pad = frac_groups as u32 * 4 - scale;
        let last_digits = 10u128.pow(4 - pad);
        groups[n + frac_groups - 1] = ((frac % last_digits) * 10u128.pow(pad)) as u16;
        frac /= last_digits;
        for i in (0..frac_groups - 1).rev() {
            groups[n + i] = (frac % 10_000) as u16;
            frac /= 10_000;
        }
        n += frac_groups;
    }
    let mut weight = n_int as i16 - 1;
    let mut start = 0;
    while start < n && groups[start] == 0 {
        start += 1;
        weight -= 1;
    }
    let mut end = n;
    while end > start && groups[end - 1] == 0 {
        end -= 1;
    }
    if start == end {
        weight = 0;
    }
    let digits = &groups[start..end];
    buf.put_i32(8 + 2 * digits.len() as i32);
    buf.put_i16(digits.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if negative && !digits.is_empty() {
        0x4000
    } else {
        0
    });
    buf.put_i16(scale as i16);
    for d in digits {
        buf.put_u16(*d);
    }
}

/// The value of a binary numeric at its display scale, and that scale; `None` for NaN,
/// infinities or values past 38 digits.
pub fn read_numeric(raw: &[u8]) -> Option<(i128, i8)> {
    let word = |i: usize| {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    let dscale = word(3)? as i16 as i32;
    if sign != 0 && sign != 0x4000 {
        return None;
    }
    let mut value: i128 = 0;
    for i in 0..ndigits {
        let d = i128::from(word(4 + i)?);
        let exp = 4 * (weight - i as i32) + dscale;
        if exp >= 0 {
            value = value.checked_add(d.checked_mul(10i128.checked_pow(exp as u32)?)?)?;
        } else {
            value += d / 10i128.checked_pow((-exp) as u32)?;
        }
    }
    Some((
        if sign == 0x4000 { -value } else { value },
        i8::try_from(dscale).ok()?,
    ))
}

/// Days since 1970-01-01 of a binary date.
pub fn read_date(raw: &[u8]) -> Option<i64> {
    Some(i64::from(i32::from_be_bytes(raw.try_into().ok()?)) + i64::from(PG_EPOCH_DAYS))
}

/// Microseconds since 1970-01-01 of a binary timestamp.
pub fn read_timestamp(raw: &[u8]) -> Option<i64> {
    i64::from_be_bytes(raw.try_into().ok()?).checked_add(PG_EPOCH_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_round_trip_through_the_binary_form() {
        // Proves the base-10000 encoding keeps value and scale, signs and zero included.
        for (value, scale) in [
            (0i128, 2i8),
            (12345, 2),
            (-12345, 2),
            (1, 5),
            (-100_000_000, 0),
            (99_999_999_999_999_999_999_999_999_999_999_999_999, 38),
            (99_999_999_999_999_999_999_999_999_999_999_999_999, 0),
            (123_456_789, 3),
        ] {
            let mut buf = BytesMut::new();
            put_numeric(&mut buf, value, scale);
            let len = i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            assert_eq!(len + 4, buf.len());
            assert_eq!(
                read_numeric(&buf[4..]),
                Some((value, scale)),
                "{value} scale {scale}"
            );
        }
    }
}
