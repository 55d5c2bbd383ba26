//! Arrow columns built one value at a time, for the decoders that parse values themselves
//! (the `avro` converter, the CSV fast path of the file sources): a typed builder per
//! column type they read, its NULLs, and its finishing (the time zone, the precision and
//! scale, and one UTF-8 check of a whole string column rather than one per value).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringArray,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::error::ArrowError;

/// A column being built, by type.
pub(crate) enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    /// A string column's bytes, checked to be UTF-8 once, when it is finished.
    Utf8(BinaryBuilder),
    Binary(BinaryBuilder),
    Date32(Date32Builder),
    /// With the column's time zone, if any.
    TimestampMicros(TimestampMicrosecondBuilder, Option<Arc<str>>),
    /// With the column's precision and scale.
    Decimal128(Decimal128Builder, u8, i8),
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
            DataType::Int16 => ColumnBuilder::Int16(Int16Builder::with_capacity(rows)),
            DataType::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            DataType::Utf8 => ColumnBuilder::Utf8(BinaryBuilder::with_capacity(rows, bytes)),
            DataType::Binary => ColumnBuilder::Binary(BinaryBuilder::with_capacity(rows, bytes)),
            DataType::Date32 => ColumnBuilder::Date32(Date32Builder::with_capacity(rows)),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => ColumnBuilder::TimestampMicros(
                TimestampMicrosecondBuilder::with_capacity(rows),
                tz.clone(),
            ),
            DataType::Decimal128(p, s) => {
                ColumnBuilder::Decimal128(Decimal128Builder::with_capacity(rows), *p, *s)
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
            ColumnBuilder::Int16(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Utf8(mut b) => Arc::new(utf8(b.finish())?),
            ColumnBuilder::Binary(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Date32(mut b) => Arc::new(b.finish()),
            ColumnBuilder::TimestampMicros(mut b, tz) => Arc::new(b.finish().with_timezone_opt(tz)),
            ColumnBuilder::Decimal128(mut b, p, s) => Arc::new(
                b.finish()
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
