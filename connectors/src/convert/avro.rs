//! `avro`: one Avro binary datum per row (no container, no registry framing), the Avro
//! schema derived from the columns: a record `row` whose fields are the columns, nullable
//! ones as `["null", type]` unions. DATE is `int`/date, TIMESTAMP `long`/timestamp-micros,
//! DECIMAL(p,s) `bytes`/decimal.
//!
//! The codec writes and reads the binary encoding of the Avro specification itself, column
//! by column straight between Arrow arrays and one buffer, without building a `Value` per
//! field: this is the format for pipelines that move many rows. The tests check it both
//! ways against the `apache-avro` crate's reader and writer.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use sluice_core::record::{put_varlong_at, varlong_len};

use super::Encoded;
use crate::columns::{ColumnBuilder, Unfinished};
use crate::error::{Error, Result};

/// What a column is in Avro.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Boolean,
    /// SMALLINT: an Avro `int` that must fit 16 bits when read.
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Utf8,
    Binary,
    Date32,
    TimestampMicros,
    /// DECIMAL(p,s): `bytes`, the unscaled value in big-endian two's complement.
    Decimal(u8, i8),
}

impl Kind {
    fn of(field: &arrow::datatypes::Field) -> Result<Kind> {
        Ok(match field.data_type() {
            DataType::Boolean => Kind::Boolean,
            DataType::Int16 => Kind::Int16,
            DataType::Int32 => Kind::Int32,
            DataType::Int64 => Kind::Int64,
            DataType::Float32 => Kind::Float32,
            DataType::Float64 => Kind::Float64,
            DataType::Utf8 => Kind::Utf8,
            DataType::Binary => Kind::Binary,
            DataType::Date32 => Kind::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, _) => Kind::TimestampMicros,
            DataType::Decimal128(p, s) => Kind::Decimal(*p, *s),
            other => {
                return Err(Error::config(format!(
                    "value_format avro cannot carry column `{}` of type {other}",
                    field.name()
                )));
            }
        })
    }
}

/// The Avro form of rows of one schema: each column's kind and whether it is a
/// `["null", type]` union.
#[derive(Debug, Clone)]
pub(super) struct Codec {
    schema: SchemaRef,
    fields: Vec<(Kind, bool)>,
}

impl Codec {
    /// The codec of rows of `schema`; an error names a column Avro cannot carry.
    pub(super) fn new(schema: &SchemaRef) -> Result<Codec> {
        let fields = schema
            .fields()
            .iter()
            .map(|f| Ok((Kind::of(f)?, f.is_nullable())))
            .collect::<Result<_>>()?;
        Ok(Codec {
            schema: schema.clone(),
            fields,
        })
    }

    /// One datum per row, all in one buffer.
    pub(super) fn encode(&self, rows: &RecordBatch) -> Result<Encoded> {
        if rows.num_columns() != self.fields.len() {
            return Err(Error::Data {
                position: "avro encoder".into(),
                reason: format!(
                    "rows have {} columns, the schema {}",
                    rows.num_columns(),
                    self.fields.len()
                ),
            });
        }
        let columns = self
            .schema
            .fields()
            .iter()
            .zip(rows.columns())
            .zip(&self.fields)
            .map(|((field, array), &(kind, nullable))| {
                let array = if array.data_type() == field.data_type() {
                    array.clone()
                } else {
                    cast(array, field.data_type())?
                };
                if !nullable && array.null_count() > 0 {
                    return Err(Error::Data {
                        position: "avro encoder".into(),
                        reason: format!("column `{}` is NOT NULL but holds a null", field.name()),
                    });
                }
                Ok(Column::new(kind, nullable, &array))
            })
            .collect::<Result<Vec<_>>>()?;
        // Column by column, each in a loop of its own type: first every row's size, then
        // each column's fields into their rows' places. (Row by row, each field chose its
        // type again and grew the buffer: about the same instructions, but branches the
        // processor mispredicted; the whole job's CPU fell 5% with this.)
        let mut ends = vec![0; rows.num_rows()];
        for column in &columns {
            column.add_sizes(&mut ends);
        }
        let mut total = 0;
        for end in &mut ends {
            total += *end;
            *end = total;
        }
        let mut bytes = vec![0; total];
        let mut at: Vec<usize> = std::iter::once(0)
            .chain(ends.iter().copied())
            .take(ends.len())
            .collect();
        for column in &columns {
            column.write(&mut bytes, &mut at);
        }
        debug_assert_eq!(at, ends, "sized and written apart");
        Ok(Encoded::from_ends(bytes, &ends))
    }

    /// The rows of `values`, all of them or an error naming the first bad one.
    pub(super) fn decode(&self, values: &[&[u8]]) -> Result<RecordBatch> {
        let mut builders =
            self.schema
                .fields()
                .iter()
                .map(|field| {
                    ColumnBuilder::new(field.data_type(), values.len(), values.len() * 16)
                        .ok_or_else(|| {
                            Error::config(format!(
                                "value_format avro cannot carry column `{}` of type {}",
                                field.name(),
                                field.data_type()
                            ))
                        })
                })
                .collect::<Result<Vec<_>>>()?;
        for (i, value) in values.iter().enumerate() {
            let mut reader = Reader { rest: value };
            for (((kind, nullable), builder), field) in self
                .fields
                .iter()
                .zip(&mut builders)
                .zip(self.schema.fields())
            {
                let bad = |reason: String| Error::Data {
                    position: format!("value {i}"),
                    reason: format!(
                        "not an Avro datum of the topic's schema: field `{}`: {reason}",
                        field.name()
                    ),
                };
                if *nullable {
                    match reader.long().map_err(bad)? {
                        0 => {
                            builder.append_null();
                            continue;
                        }
                        1 => {}
                        other => {
                            return Err(bad(format!(
                                "union branch {other}, but the field is [\"null\", {}]",
                                avro_type(*kind)
                            )));
                        }
                    }
                }
                read(builder, &mut reader).map_err(bad)?;
            }
            if !reader.rest.is_empty() {
                return Err(Error::Data {
                    position: format!("value {i}"),
                    reason: format!(
                        "{} bytes left after the Avro datum: the value was written with \
                         another schema",
                        reader.rest.len()
                    ),
                });
            }
        }
        let columns = builders
            .into_iter()
            .zip(self.schema.fields())
            .map(|(builder, field)| {
                builder.finish().map_err(|unfinished| match unfinished {
                    Unfinished::NotUtf8 { row, error } => Error::Data {
                        position: format!("value {row}"),
                        reason: format!(
                            "not an Avro datum of the topic's schema: field `{}`: a string \
                             that is not UTF-8: {error}",
                            field.name()
                        ),
                    },
                    Unfinished::Arrow(e) => e.into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The Avro type name of a kind, for error messages.
fn avro_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Boolean => "boolean",
        Kind::Int16 | Kind::Int32 | Kind::Date32 => "int",
        Kind::Int64 | Kind::TimestampMicros => "long",
        Kind::Float32 => "float",
        Kind::Float64 => "double",
        Kind::Utf8 => "string",
        Kind::Binary | Kind::Decimal(..) => "bytes",
    }
}

/// One column of rows being encoded: its values, and whether it is a `["null", T]` union
/// (with the nulls it holds).
struct Column {
    nullable: bool,
    nulls: Option<NullBuffer>,
    values: Values,
}

/// A column's values, typed.
enum Values {
    Boolean(BooleanArray),
    Int16(Int16Array),
    Int32(Int32Array),
    Int64(Int64Array),
    Float32(Float32Array),
    Float64(Float64Array),
    Utf8(StringArray),
    Binary(BinaryArray),
    Date32(Date32Array),
    TimestampMicros(TimestampMicrosecondArray),
    Decimal(Decimal128Array),
}

impl Column {
    /// `array` is of the kind's Arrow type (the caller cast it).
    fn new(kind: Kind, nullable: bool, array: &ArrayRef) -> Column {
        let values = match kind {
            Kind::Boolean => Values::Boolean(array.as_boolean().clone()),
            Kind::Int16 => Values::Int16(array.as_primitive().clone()),
            Kind::Int32 => Values::Int32(array.as_primitive().clone()),
            Kind::Int64 => Values::Int64(array.as_primitive().clone()),
            Kind::Float32 => Values::Float32(array.as_primitive().clone()),
            Kind::Float64 => Values::Float64(array.as_primitive().clone()),
            Kind::Utf8 => Values::Utf8(array.as_string().clone()),
            Kind::Binary => Values::Binary(array.as_binary().clone()),
            Kind::Date32 => Values::Date32(array.as_primitive().clone()),
            Kind::TimestampMicros => Values::TimestampMicros(array.as_primitive().clone()),
            Kind::Decimal(..) => Values::Decimal(array.as_primitive().clone()),
        };
        Column {
            nullable,
            nulls: array.nulls().cloned(),
            values,
        }
    }

    /// Adds each row's field size (the union branch included) to `sizes`.
    fn add_sizes(&self, sizes: &mut [usize]) {
        match &self.values {
            Values::Boolean(_) => self.each_size(sizes, |_| 1),
            Values::Int16(a) => self.each_size(sizes, |i| varlong_len(i64::from(a.value(i)))),
            Values::Int32(a) => self.each_size(sizes, |i| varlong_len(i64::from(a.value(i)))),
            Values::Int64(a) => self.each_size(sizes, |i| varlong_len(a.value(i))),
            Values::Float32(_) => self.each_size(sizes, |_| 4),
            Values::Float64(_) => self.each_size(sizes, |_| 8),
            Values::Utf8(a) => self.each_size(sizes, |i| bytes_len(a.value(i).len())),
            Values::Binary(a) => self.each_size(sizes, |i| bytes_len(a.value(i).len())),
            Values::Date32(a) => self.each_size(sizes, |i| varlong_len(i64::from(a.value(i)))),
            Values::TimestampMicros(a) => self.each_size(sizes, |i| varlong_len(a.value(i))),
            Values::Decimal(a) => {
                self.each_size(sizes, |i| bytes_len(16 - redundant_sign_bytes(a.value(i))))
            }
        }
    }

    /// Adds `size(row)` for each non-null row, and the union branch's byte for every row
    /// if the column is nullable.
    #[inline]
    fn each_size(&self, sizes: &mut [usize], size: impl Fn(usize) -> usize) {
        let branch = usize::from(self.nullable);
        match self.nulls.as_ref().filter(|n| n.null_count() > 0) {
            None => {
                for (row, total) in sizes.iter_mut().enumerate() {
                    *total += branch + size(row);
                }
            }
            Some(nulls) => {
                for (row, total) in sizes.iter_mut().enumerate() {
                    *total += branch + if nulls.is_valid(row) { size(row) } else { 0 };
                }
            }
        }
    }

    /// Writes each row's field into `out` at `at[row]`, moving `at[row]` past it.
    fn write(&self, out: &mut [u8], at: &mut [usize]) {
        match &self.values {
            Values::Boolean(a) => self.each_write(out, at, |out, to, i| {
                out[to] = u8::from(a.value(i));
                to + 1
            }),
            Values::Int16(a) => self.each_write(out, at, |out, to, i| {
                put_varlong_at(out, to, a.value(i).into())
            }),
            Values::Int32(a) => self.each_write(out, at, |out, to, i| {
                put_varlong_at(out, to, a.value(i).into())
            }),
            Values::Int64(a) => {
                self.each_write(out, at, |out, to, i| put_varlong_at(out, to, a.value(i)))
            }
            Values::Float32(a) => self.each_write(out, at, |out, to, i| {
                put_at(out, to, &a.value(i).to_le_bytes())
            }),
            Values::Float64(a) => self.each_write(out, at, |out, to, i| {
                put_at(out, to, &a.value(i).to_le_bytes())
            }),
            Values::Utf8(a) => self.each_write(out, at, |out, to, i| {
                put_bytes_at(out, to, a.value(i).as_bytes())
            }),
            Values::Binary(a) => {
                self.each_write(out, at, |out, to, i| put_bytes_at(out, to, a.value(i)))
            }
            Values::Date32(a) => self.each_write(out, at, |out, to, i| {
                put_varlong_at(out, to, a.value(i).into())
            }),
            Values::TimestampMicros(a) => {
                self.each_write(out, at, |out, to, i| put_varlong_at(out, to, a.value(i)))
            }
            Values::Decimal(a) => self.each_write(out, at, |out, to, i| {
                let v = a.value(i);
                put_bytes_at(out, to, &v.to_be_bytes()[redundant_sign_bytes(v)..])
            }),
        }
    }

    /// Writes each row's field with `put(out, at, row)` (which returns where it ended),
    /// after the union branch if the column is nullable: 0 for a null (and nothing more),
    /// else 2 (branch 1 of `["null", T]`, zigzag-encoded).
    #[inline]
    fn each_write(
        &self,
        out: &mut [u8],
        at: &mut [usize],
        put: impl Fn(&mut [u8], usize, usize) -> usize,
    ) {
        let nulls = self.nulls.as_ref().filter(|n| n.null_count() > 0);
        for (row, to) in at.iter_mut().enumerate() {
            if self.nullable {
                if nulls.is_some_and(|n| n.is_null(row)) {
                    out[*to] = 0;
                    *to += 1;
                    continue;
                }
                out[*to] = 2;
                *to += 1;
            }
            *to = put(out, *to, row);
        }
    }
}

/// The size of Avro `bytes` or `string` of `len` bytes: the length as a long, then them.
#[inline]
fn bytes_len(len: usize) -> usize {
    varlong_len(len as i64) + len
}

/// Copies `v` into `out` at `at`; returns where it ends.
#[inline]
fn put_at(out: &mut [u8], at: usize, v: &[u8]) -> usize {
    let end = at + v.len();
    out[at..end].copy_from_slice(v);
    end
}

/// Avro `bytes` or `string` into `out` at `at`: the length as a long, then the bytes.
#[inline]
fn put_bytes_at(out: &mut [u8], at: usize, v: &[u8]) -> usize {
    let at = put_varlong_at(out, at, v.len() as i64);
    put_at(out, at, v)
}

/// How many leading bytes of `v`'s 16 big-endian bytes only repeat the sign: the shortest
/// two's complement keeps one byte at least, whose top bit is the sign.
fn redundant_sign_bytes(v: i128) -> usize {
    let significant = if v < 0 {
        128 - v.leading_ones() as usize
    } else {
        128 - v.leading_zeros() as usize
    };
    // One more bit for the sign, rounded up to bytes.
    16 - (significant + 1).div_ceil(8)
}

/// The unread rest of one datum.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn long(&mut self) -> std::result::Result<i64, String> {
        // Most numbers here are union branches, lengths and small values: one byte.
        if let Some((&byte, rest)) = self.rest.split_first()
            && byte < 0x80
        {
            self.rest = rest;
            return Ok(i64::from(byte >> 1) ^ -i64::from(byte & 1));
        }
        self.long_slow()
    }

    /// A number of more than one byte (or a bad one).
    fn long_slow(&mut self) -> std::result::Result<i64, String> {
        // With eight bytes at hand, a number of up to eight is read in one go: the
        // continuation bits give its length, three shifts gather its 7-bit groups.
        if let Some(word) = self.rest.first_chunk::<8>() {
            let word = u64::from_le_bytes(*word);
            let ends = !word & 0x8080_8080_8080_8080;
            if ends != 0 {
                let len = (ends.trailing_zeros() / 8 + 1) as usize;
                let kept = u64::MAX >> (64 - 8 * len);
                let mut n = word & kept & 0x7f7f_7f7f_7f7f_7f7f;
                n = (n & 0x007f_007f_007f_007f) | ((n & 0x7f00_7f00_7f00_7f00) >> 1);
                n = (n & 0x0000_3fff_0000_3fff) | ((n & 0x3fff_0000_3fff_0000) >> 2);
                n = (n & 0x0000_0000_0fff_ffff) | ((n & 0x0fff_ffff_0000_0000) >> 4);
                self.rest = self.rest.get(len..).unwrap_or_default();
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        let mut n: u64 = 0;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            n |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                if i == 9 && byte > 1 {
                    break;
                }
                self.rest = &self.rest[i + 1..];
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        if self.rest.len() < 10 && self.rest.iter().all(|b| b & 0x80 != 0) {
            Err("the datum ends inside a number".into())
        } else {
            Err("a number longer than 64 bits".into())
        }
    }

    #[inline]
    fn int(&mut self) -> std::result::Result<i32, String> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| format!("{v} does not fit an Avro int"))
    }

    #[inline]
    fn take(&mut self, len: usize) -> std::result::Result<&'a [u8], String> {
        if self.rest.len() < len {
            return Err(format!(
                "the datum ends {} bytes short of a {len}-byte field",
                len - self.rest.len()
            ));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    #[inline(always)]
    fn bytes(&mut self) -> std::result::Result<&'a [u8], String> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| format!("a negative length {len}"))?;
        self.take(len)
    }

    #[inline]
    fn fixed<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Reads one non-null field and appends it.
#[inline]
fn read(builder: &mut ColumnBuilder, reader: &mut Reader) -> std::result::Result<(), String> {
    match builder {
        ColumnBuilder::Boolean(b) => match reader.take(1)? {
            [0] => b.append_value(false),
            [1] => b.append_value(true),
            other => return Err(format!("boolean byte {other:?}, not 0 or 1")),
        },
        ColumnBuilder::Int16(b) => {
            let v = reader.int()?;
            let v = i16::try_from(v).map_err(|_| format!("{v} does not fit SMALLINT"))?;
            b.append_value(v);
        }
        ColumnBuilder::Int32(b) => b.append_value(reader.int()?),
        ColumnBuilder::Int64(b) => b.append_value(reader.long()?),
        ColumnBuilder::Float32(b) => b.append_value(f32::from_le_bytes(reader.fixed()?)),
        ColumnBuilder::Float64(b) => b.append_value(f64::from_le_bytes(reader.fixed()?)),
        ColumnBuilder::Utf8(b) => b.append_value(reader.bytes()?),
        ColumnBuilder::Binary(b) => b.append_value(reader.bytes()?),
        ColumnBuilder::Date32(b) => b.append_value(reader.int()?),
        ColumnBuilder::TimestampMicros(b, _) => b.append_value(reader.long()?),
        ColumnBuilder::Decimal128(b, p, s) => {
            let bytes = reader.bytes()?;
            if bytes.len() > 16 {
                return Err(format!(
                    "a {}-byte decimal; DECIMAL({p},{s}) holds 16 at most",
                    bytes.len()
                ));
            }
            // Sign-extend the big-endian two's complement bytes to 16.
            let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                0xFF
            } else {
                0
            };
            let mut wide = [fill; 16];
            wide[16 - bytes.len()..].copy_from_slice(bytes);
            b.append_value(i128::from_be_bytes(wide));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use apache_avro::types::Value;
    use serde_json::json;

    use super::*;
    use crate::schema::parse_schema;

    #[test]
    fn numbers_read_back_at_every_length_and_position() {
        // Guards the eight-bytes-at-once path of `long_slow` against the byte loop: every
        // length of 1 to 10 bytes, both signs, with 0 to 9 bytes after the number (so
        // both paths run), and cut-off numbers refused.
        let mut values = vec![0i64, 1, -1, i64::MAX, i64::MIN];
        for shift in 0..63 {
            for v in [1i64 << shift, (1i64 << shift) - 1, (1i64 << shift) + 1] {
                values.extend([v, -v]);
            }
        }
        for v in values {
            let mut encoded = Vec::new();
            sluice_core::record::put_varlong(&mut encoded, v);
            for tail in 0..10 {
                let mut bytes = encoded.clone();
                bytes.extend(std::iter::repeat_n(0x81u8, tail));
                let mut reader = Reader { rest: &bytes };
                assert_eq!(reader.long(), Ok(v), "{v} with {tail} bytes after");
                assert_eq!(reader.rest.len(), tail, "{v} with {tail} bytes after");
            }
            if encoded.len() > 1 {
                let cut = &encoded[..encoded.len() - 1];
                assert!(Reader { rest: cut }.long().is_err(), "{v} cut short");
            }
        }
    }

    /// The Avro schema the codec's bytes follow, as the module documentation gives it.
    fn avro_schema(schema: &SchemaRef) -> apache_avro::Schema {
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .map(|field| {
                let ty = match field.data_type() {
                    DataType::Boolean => json!("boolean"),
                    DataType::Int16 | DataType::Int32 => json!("int"),
                    DataType::Int64 => json!("long"),
                    DataType::Float32 => json!("float"),
                    DataType::Float64 => json!("double"),
                    DataType::Utf8 => json!("string"),
                    DataType::Binary => json!("bytes"),
                    DataType::Date32 => json!({"type": "int", "logicalType": "date"}),
                    DataType::Timestamp(..) => {
                        json!({"type": "long", "logicalType": "timestamp-micros"})
                    }
                    DataType::Decimal128(p, s) => json!({"type": "bytes",
                        "logicalType": "decimal", "precision": p, "scale": s}),
                    other => panic!("{other}"),
                };
                let ty = if field.is_nullable() {
                    json!(["null", ty])
                } else {
                    ty
                };
                json!({"name": field.name(), "type": ty})
            })
            .collect();
        let text = json!({"type": "record", "name": "row", "fields": fields}).to_string();
        apache_avro::Schema::parse_str(&text).unwrap()
    }

    fn schema() -> SchemaRef {
        parse_schema(
            "id BIGINT NOT NULL, small SMALLINT, qty INT, name VARCHAR, price DOUBLE, \
             ratio REAL, paid BOOLEAN, amount DECIMAL(38,2), day DATE, ts TIMESTAMP, \
             blob BYTEA, flag BOOLEAN NOT NULL",
        )
        .unwrap()
    }

    /// Rows with every type, nulls, extremes and multi-byte text.
    fn rows() -> RecordBatch {
        let schema = schema();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![0, i64::MIN, i64::MAX, -1, 63, 64])),
                Arc::new(Int16Array::from(vec![
                    Some(i16::MIN),
                    None,
                    Some(i16::MAX),
                    Some(0),
                    Some(-64),
                    Some(1),
                ])),
                Arc::new(Int32Array::from(vec![
                    Some(i32::MIN),
                    Some(i32::MAX),
                    None,
                    Some(-65),
                    Some(8191),
                    Some(8192),
                ])),
                Arc::new(StringArray::from(vec![
                    Some(""),
                    Some("ü, \"quoted\"\n"),
                    None,
                    Some("日本"),
                    Some("x"),
                    Some(&*"long ".repeat(40)),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    Some(f64::MIN_POSITIVE),
                    Some(-0.0),
                    None,
                    Some(f64::INFINITY),
                    Some(1e300),
                ])),
                Arc::new(Float32Array::from(vec![
                    Some(0.25),
                    None,
                    Some(f32::MAX),
                    Some(-3.5),
                    Some(0.0),
                    Some(1e-30),
                ])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    None,
                    Some(false),
                ])),
                Arc::new(
                    Decimal128Array::from(vec![
                        Some(0),
                        Some(-1),
                        Some(127),
                        Some(128),
                        Some(-129),
                        Some(i128::MIN),
                    ])
                    .with_precision_and_scale(38, 2)
                    .unwrap(),
                ),
                Arc::new(Date32Array::from(vec![
                    Some(20_000),
                    None,
                    Some(-719_528),
                    Some(0),
                    Some(2_932_896),
                    Some(1),
                ])),
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(1_764_000_000_123_456),
                    Some(-1),
                    None,
                    Some(0),
                    Some(i64::MAX),
                    Some(i64::MIN),
                ])),
                Arc::new(BinaryArray::from(vec![
                    Some(&b"\x00\xff"[..]),
                    None,
                    Some(b""),
                    Some(b"abc"),
                    Some(&[0x80; 200][..]),
                    None,
                ])),
                Arc::new(BooleanArray::from(vec![
                    true, false, true, true, false, false,
                ])),
            ],
        )
        .unwrap()
    }

    /// The cells of rows as `apache-avro` values, for comparison.
    fn expected_value(rows: &RecordBatch, row: usize) -> Value {
        let fields = rows
            .schema()
            .fields()
            .iter()
            .zip(rows.columns())
            .map(|(field, column)| {
                let value = if column.is_null(row) {
                    Value::Null
                } else {
                    match column.data_type() {
                        DataType::Boolean => Value::Boolean(column.as_boolean().value(row)),
                        DataType::Int16 => Value::Int(
                            column
                                .as_primitive::<arrow::datatypes::Int16Type>()
                                .value(row)
                                .into(),
                        ),
                        DataType::Int32 => Value::Int(
                            column
                                .as_primitive::<arrow::datatypes::Int32Type>()
                                .value(row),
                        ),
                        DataType::Int64 => Value::Long(
                            column
                                .as_primitive::<arrow::datatypes::Int64Type>()
                                .value(row),
                        ),
                        DataType::Float32 => Value::Float(
                            column
                                .as_primitive::<arrow::datatypes::Float32Type>()
                                .value(row),
                        ),
                        DataType::Float64 => Value::Double(
                            column
                                .as_primitive::<arrow::datatypes::Float64Type>()
                                .value(row),
                        ),
                        DataType::Utf8 => {
                            Value::String(column.as_string::<i32>().value(row).into())
                        }
                        DataType::Binary => {
                            Value::Bytes(column.as_binary::<i32>().value(row).into())
                        }
                        DataType::Date32 => Value::Date(
                            column
                                .as_primitive::<arrow::datatypes::Date32Type>()
                                .value(row),
                        ),
                        DataType::Timestamp(..) => Value::TimestampMicros(
                            column
                                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                                .value(row),
                        ),
                        DataType::Decimal128(..) => {
                            let v = column
                                .as_primitive::<arrow::datatypes::Decimal128Type>()
                                .value(row);
                            Value::Decimal(v.to_be_bytes().to_vec().into())
                        }
                        other => panic!("{other}"),
                    }
                };
                let value = match (field.is_nullable(), value) {
                    (true, Value::Null) => Value::Union(0, Box::new(Value::Null)),
                    (true, v) => Value::Union(1, Box::new(v)),
                    (false, v) => v,
                };
                (field.name().clone(), value)
            })
            .collect();
        Value::Record(fields)
    }

    /// Compares decimals by value: `apache-avro` keeps the bytes as written.
    fn normalized(value: Value) -> Value {
        match value {
            Value::Record(fields) => Value::Record(
                fields
                    .into_iter()
                    .map(|(name, v)| (name, normalized(v)))
                    .collect(),
            ),
            Value::Union(i, inner) => Value::Union(i, Box::new(normalized(*inner))),
            Value::Decimal(d) => {
                let bytes = <Vec<u8>>::try_from(&d).unwrap();
                let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    0xFF
                } else {
                    0
                };
                let mut wide = [fill; 16];
                wide[16 - bytes.len()..].copy_from_slice(&bytes);
                Value::Decimal(wide.to_vec().into())
            }
            other => other,
        }
    }

    #[test]
    fn apache_avro_reads_what_the_codec_writes() {
        let rows = rows();
        let avro = avro_schema(&rows.schema());
        let values = Codec::new(&rows.schema()).unwrap().encode(&rows).unwrap();
        assert_eq!(values.len(), rows.num_rows());
        for (row, value) in values.iter().enumerate() {
            let mut reader: &[u8] = value;
            let read = apache_avro::reader::datum::GenericDatumReader::builder(&avro)
                .build()
                .unwrap()
                .read_value(&mut reader)
                .unwrap();
            assert!(reader.is_empty(), "row {row}: bytes left");
            assert_eq!(
                normalized(read),
                normalized(expected_value(&rows, row)),
                "row {row}"
            );
        }
    }

    #[test]
    fn the_codec_reads_what_apache_avro_writes() {
        let rows = rows();
        let avro = avro_schema(&rows.schema());
        let written: Vec<Vec<u8>> = (0..rows.num_rows())
            .map(|row| {
                apache_avro::writer::datum::GenericDatumWriter::builder(&avro)
                    .build()
                    .unwrap()
                    .write_value_to_vec(expected_value(&rows, row))
                    .unwrap()
            })
            .collect();
        let refs: Vec<&[u8]> = written.iter().map(Vec::as_slice).collect();
        let back = Codec::new(&rows.schema()).unwrap().decode(&refs).unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn decimals_are_written_in_their_shortest_form() {
        for (v, len) in [
            (0i128, 1),
            (-1, 1),
            (127, 1),
            (128, 2),
            (-128, 1),
            (-129, 2),
            (i128::MAX, 16),
            (i128::MIN, 16),
        ] {
            assert_eq!(16 - redundant_sign_bytes(v), len, "{v}");
        }
    }

    #[test]
    fn bad_data_is_named_with_its_field_and_reason() {
        let schema = parse_schema("id BIGINT NOT NULL, name VARCHAR, small SMALLINT").unwrap();
        let codec = Codec::new(&schema).unwrap();
        let cases: &[(&[u8], &str)] = &[
            (b"", "field `id`: the datum ends inside a number"),
            (b"\x02", "field `name`: the datum ends inside a number"),
            (b"\x02\x04", "field `name`: union branch 2"),
            (
                b"\x02\x02\x06ab",
                "field `name`: the datum ends 1 bytes short",
            ),
            (
                b"\x02\x02\x02\xff\x00",
                "field `name`: a string that is not UTF-8",
            ),
            (b"\x02\x02\x01", "field `name`: a negative length -1"),
            (
                b"\x02\x00\x02\x80\x80\x04",
                "field `small`: 32768 does not fit SMALLINT",
            ),
            (
                b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
                "field `id`: a number longer than 64 bits",
            ),
            (b"\x02\x00\x00\x00", "1 bytes left after the Avro datum"),
        ];
        for (bytes, expected) in cases {
            let error = codec.decode(&[bytes]).unwrap_err().to_string();
            assert!(error.contains(expected), "{bytes:?}: {error}");
            assert!(error.contains("value 0"), "{error}");
        }
        // The good value before a bad one does not hide it.
        let error = codec.decode(&[b"\x02\x00\x00", b"\x02"]).unwrap_err();
        assert!(error.to_string().contains("value 1"), "{error}");
    }

    /// Bytes from a xorshift generator: random values, and valid ones with a byte changed,
    /// cut or added. None may panic; any that decodes must encode to a value that decodes
    /// to the same row (what `fuzz/fuzz_targets/avro.rs` checks without end).
    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly() {
        let rows = rows();
        let codec = Codec::new(&rows.schema()).unwrap();
        let valid = codec.encode(&rows).unwrap();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for round in 0..20_000 {
            let mut bytes = valid.get(round % valid.len()).unwrap().to_vec();
            match next() % 4 {
                0 => bytes = (0..next() % 48).map(|_| next() as u8).collect(),
                1 if !bytes.is_empty() => {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                2 => bytes.truncate((next() as usize) % (bytes.len() + 1)),
                _ => bytes.push(next() as u8),
            }
            let Ok(back) = codec.decode(&[&bytes]) else {
                continue;
            };
            decoded += 1;
            let again = codec.encode(&back).unwrap();
            assert_eq!(
                codec.decode(&[again.get(0).unwrap()]).unwrap(),
                back,
                "{bytes:?}"
            );
        }
        assert!(decoded > 1000, "only {decoded} inputs decoded");
    }

    #[test]
    fn a_null_in_a_not_null_column_is_refused_when_encoding() {
        let declared = parse_schema("id BIGINT NOT NULL").unwrap();
        let loose = parse_schema("id BIGINT").unwrap();
        let rows =
            RecordBatch::try_new(loose, vec![Arc::new(Int64Array::from(vec![Some(1), None]))])
                .unwrap();
        let error = Codec::new(&declared).unwrap().encode(&rows).unwrap_err();
        assert!(error.to_string().contains("`id` is NOT NULL"), "{error}");
    }

    #[test]
    fn columns_of_a_narrower_type_are_cast_to_the_schema() {
        let schema = parse_schema("id BIGINT NOT NULL").unwrap();
        let narrow = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", DataType::Int32, false),
        ]));
        let rows =
            RecordBatch::try_new(narrow, vec![Arc::new(Int32Array::from(vec![7, -7]))]).unwrap();
        let codec = Codec::new(&schema).unwrap();
        let values = codec.encode(&rows).unwrap();
        let refs: Vec<&[u8]> = values.iter().collect();
        let back = codec.decode(&refs).unwrap();
        assert_eq!(
            back.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values(),
            &[7, -7]
        );
    }
}
