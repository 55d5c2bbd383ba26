//! Arrow columns built one value at a time, for the decoders that parse values themselves
//! (the `avro` converter, the CSV fast path of the file sources): a typed builder per
//! column type they read, its NULLs, and its finishing (the time zone, the precision and
//! scale, and one UTF-8 check of a whole string column rather than one per value).
//!
//! Numbers, dates, timestamps and byte strings are pushed onto plain `Vec`s ([`Values`],
//! [`ByteValues`]), which inline into the decoders' loops; arrow's builders cost a call
//! per value. Validity is kept only once a column's first NULL arrives.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, ArrowPrimitiveType, BinaryArray, BooleanBufferBuilder, BooleanBuilder,
    PrimitiveArray, StringArray,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType,
};
use arrow::error::ArrowError;

/// A column being built, by type.
pub(crate) enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int16(Values<Int16Type>),
    Int32(Values<Int32Type>),
    Int64(Values<Int64Type>),
    Float32(Values<Float32Type>),
    Float64(Values<Float64Type>),
    /// A string column's bytes, checked to be UTF-8 once, when it is finished.
    Utf8(ByteValues),
    Binary(ByteValues),
    Date32(Values<Date32Type>),
    /// With the column's time zone, if any.
    TimestampMicros(Values<TimestampMicrosecondType>, Option<Arc<str>>),
    /// With the column's precision and scale.
    Decimal128(Values<Decimal128Type>, u8, i8),
}

/// Fixed-width values of one Arrow type, and which are NULL once one is.
pub(crate) struct Values<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: Option<BooleanBufferBuilder>,
}

impl<T: ArrowPrimitiveType> Values<T> {
    fn with_capacity(rows: usize) -> Values<T> {
        Values {
            values: Vec::with_capacity(rows),
            nulls: None,
        }
    }

    /// Appends a value.
    #[inline]
    pub(crate) fn append_value(&mut self, value: T::Native) {
        self.values.push(value);
        if let Some(nulls) = &mut self.nulls {
            nulls.append(true);
        }
    }

    /// Appends a NULL (a zero in the values, as arrow's builders write).
    pub(crate) fn append_null(&mut self) {
        let nulls = self
            .nulls
            .get_or_insert_with(|| all_valid(self.values.len(), self.values.capacity()));
        nulls.append(false);
        self.values.push(T::Native::default());
    }

    fn finish(self) -> Result<PrimitiveArray<T>, Unfinished> {
        PrimitiveArray::try_new(ScalarBuffer::from(self.values), finish_nulls(self.nulls))
            .map_err(Unfinished::Arrow)
    }
}

/// Byte strings (32-bit offsets), and which are NULL once one is.
pub(crate) struct ByteValues {
    /// `offsets[i]..offsets[i + 1]` of `bytes` is value `i`; starts with 0.
    offsets: Vec<i32>,
    bytes: Vec<u8>,
    nulls: Option<BooleanBufferBuilder>,
}

impl ByteValues {
    fn with_capacity(rows: usize, bytes: usize) -> ByteValues {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        ByteValues {
            offsets,
            bytes: Vec::with_capacity(bytes),
            nulls: None,
        }
    }

    /// Appends a value. Past 2 GiB of bytes the offsets wrap, and `finish` refuses the
    /// column.
    #[inline]
    pub(crate) fn append_value(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
        self.offsets.push(self.bytes.len() as i32);
        if let Some(nulls) = &mut self.nulls {
            nulls.append(true);
        }
    }

    /// Appends a NULL (an empty value).
    pub(crate) fn append_null(&mut self) {
        let rows = self.offsets.len() - 1;
        let nulls = self
            .nulls
            .get_or_insert_with(|| all_valid(rows, self.offsets.capacity()));
        nulls.append(false);
        self.offsets.push(self.bytes.len() as i32);
    }

    fn finish(self) -> Result<BinaryArray, Unfinished> {
        if i32::try_from(self.bytes.len()).is_err() {
            return Err(Unfinished::Arrow(ArrowError::OffsetOverflowError(
                self.bytes.len(),
            )));
        }
        BinaryArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.offsets)),
            Buffer::from_vec(self.bytes),
            finish_nulls(self.nulls),
        )
        .map_err(Unfinished::Arrow)
    }
}

/// Validity for `rows` values, all valid, with room for `capacity`.
fn all_valid(rows: usize, capacity: usize) -> BooleanBufferBuilder {
    let mut nulls = BooleanBufferBuilder::new(capacity.max(rows + 1));
    nulls.append_n(rows, true);
    nulls
}

fn finish_nulls(nulls: Option<BooleanBufferBuilder>) -> Option<NullBuffer> {
    nulls.map(|mut nulls| NullBuffer::new(nulls.finish()))
}

/// Why a column could not be finished.
#[derive(Debug)]
pub(crate) enum Unfinished {
    /// A string column's value `row` is not UTF-8.
    NotUtf8 { row: usize, error: String },
    /// Arrow refused the column (a decimal beyond its precision).
    Arrow(ArrowError),
}

impl ColumnBuilder {
    /// A builder for `rows` values of Arrow type `ty` (string and binary columns start with
    /// room for `bytes`), or `None` for a type not built this way.
    pub(crate) fn new(ty: &DataType, rows: usize, bytes: usize) -> Option<ColumnBuilder> {
        Some(match ty {
            DataType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Int16 => ColumnBuilder::Int16(Values::with_capacity(rows)),
            DataType::Int32 => ColumnBuilder::Int32(Values::with_capacity(rows)),
            DataType::Int64 => ColumnBuilder::Int64(Values::with_capacity(rows)),
            DataType::Float32 => ColumnBuilder::Float32(Values::with_capacity(rows)),
            DataType::Float64 => ColumnBuilder::Float64(Values::with_capacity(rows)),
            DataType::Utf8 => ColumnBuilder::Utf8(ByteValues::with_capacity(rows, bytes)),
            DataType::Binary => ColumnBuilder::Binary(ByteValues::with_capacity(rows, bytes)),
            DataType::Date32 => ColumnBuilder::Date32(Values::with_capacity(rows)),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                ColumnBuilder::TimestampMicros(Values::with_capacity(rows), tz.clone())
            }
            DataType::Decimal128(p, s) => {
                ColumnBuilder::Decimal128(Values::with_capacity(rows), *p, *s)
            }
            _ => return None,
        })
    }

    /// Appends a NULL.
    pub(crate) fn append_null(&mut self) {
        match self {
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Utf8(b) | ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Date32(b) => b.append_null(),
            ColumnBuilder::TimestampMicros(b, _) => b.append_null(),
            ColumnBuilder::Decimal128(b, ..) => b.append_null(),
        }
    }

    /// The column.
    pub(crate) fn finish(self) -> Result<ArrayRef, Unfinished> {
        Ok(match self {
            ColumnBuilder::Boolean(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()?),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()?),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()?),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()?),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()?),
            ColumnBuilder::Utf8(b) => Arc::new(utf8(b.finish()?)?),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()?),
            ColumnBuilder::Date32(b) => Arc::new(b.finish()?),
            ColumnBuilder::TimestampMicros(b, tz) => Arc::new(b.finish()?.with_timezone_opt(tz)),
            ColumnBuilder::Decimal128(b, p, s) => Arc::new(
                b.finish()?
                    .with_precision_and_scale(p, s)
                    .map_err(Unfinished::Arrow)?,
            ),
        })
    }
}

/// A string column's bytes as text: one check of the whole buffer and its offsets, and
/// only if that fails a look for the first value that is not UTF-8.
fn utf8(bytes: BinaryArray) -> Result<StringArray, Unfinished> {
    StringArray::try_from_binary(bytes.clone()).map_err(|_| {
        let (row, error) = bytes
            .iter()
            .enumerate()
            .find_map(|(i, v)| std::str::from_utf8(v?).err().map(|e| (i, e.to_string())))
            .unwrap_or((0, "not UTF-8".into()));
        Unfinished::NotUtf8 { row, error }
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, BinaryBuilder, Decimal128Builder, Int64Builder, StringBuilder};

    use super::*;

    /// NULLs first, in the middle, last, and none at all.
    const PATTERNS: [&[Option<i64>]; 5] = [
        &[],
        &[Some(1), Some(-2), Some(3)],
        &[None, Some(5), None, None, Some(6)],
        &[Some(7), None, Some(8)],
        &[None],
    ];

    #[test]
    fn numbers_and_nulls_finish_as_arrow_builds_them() {
        for pattern in PATTERNS {
            let mut ours = ColumnBuilder::new(&DataType::Int64, 2, 0).unwrap();
            let mut arrows = Int64Builder::new();
            for value in pattern {
                match (value, &mut ours) {
                    (Some(v), ColumnBuilder::Int64(b)) => b.append_value(*v),
                    (None, ours) => ours.append_null(),
                    _ => unreachable!(),
                }
                arrows.append_option(*value);
            }
            let ours = ours.finish().unwrap();
            let arrows: ArrayRef = Arc::new(arrows.finish());
            assert_eq!(&ours, &arrows, "{pattern:?}");
            assert_eq!(ours.null_count(), arrows.null_count());
        }
    }

    #[test]
    fn strings_bytes_and_decimals_finish_as_arrow_builds_them() {
        let text = |v: &Option<i64>| v.map(|v| "x".repeat(v.unsigned_abs() as usize));
        for pattern in PATTERNS {
            let mut strings = ColumnBuilder::new(&DataType::Utf8, 0, 0).unwrap();
            let mut binary = ColumnBuilder::new(&DataType::Binary, 1, 1).unwrap();
            let mut decimals = ColumnBuilder::new(&DataType::Decimal128(10, 2), 1, 0).unwrap();
            let (mut s, mut b) = (StringBuilder::new(), BinaryBuilder::new());
            let mut d = Decimal128Builder::new();
            for value in pattern {
                match (text(value), &mut strings, &mut binary, &mut decimals) {
                    (
                        Some(t),
                        ColumnBuilder::Utf8(our_s),
                        ColumnBuilder::Binary(our_b),
                        ColumnBuilder::Decimal128(our_d, ..),
                    ) => {
                        our_s.append_value(t.as_bytes());
                        our_b.append_value(t.as_bytes());
                        our_d.append_value(i128::from(value.unwrap()));
                    }
                    (None, our_s, our_b, our_d) => {
                        our_s.append_null();
                        our_b.append_null();
                        our_d.append_null();
                    }
                    _ => unreachable!(),
                }
                s.append_option(text(value));
                b.append_option(text(value));
                d.append_option(value.map(i128::from));
            }
            let d = d.finish().with_precision_and_scale(10, 2).unwrap();
            for (ours, arrows) in [
                (strings, Arc::new(s.finish()) as ArrayRef),
                (binary, Arc::new(b.finish())),
                (decimals, Arc::new(d)),
            ] {
                assert_eq!(&ours.finish().unwrap(), &arrows, "{pattern:?}");
            }
        }
    }

    #[test]
    fn a_string_column_that_is_not_utf8_names_its_row() {
        let mut strings = ColumnBuilder::new(&DataType::Utf8, 3, 8).unwrap();
        let ColumnBuilder::Utf8(b) = &mut strings else {
            unreachable!()
        };
        b.append_value(b"fine");
        b.append_null();
        b.append_value(&[0xff, 0xfe]);
        match strings.finish() {
            Err(Unfinished::NotUtf8 { row, .. }) => assert_eq!(row, 2),
            other => panic!("{other:?}"),
        }
    }
}
