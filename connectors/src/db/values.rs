//! Reading one value of a prepared (canonical-type) Arrow column as plain Rust values, for
//! the sinks that bind parameters row by row (MySQL, SQLite).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType,
};

/// A value to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    /// NULL.
    Null,
    /// An integer (booleans as 0 and 1).
    Int(i64),
    /// A 4-byte float.
    Float(f32),
    /// An 8-byte float.
    Double(f64),
    /// A decimal: unscaled value and scale.
    Decimal(i128, i8),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
    /// Days from 1970-01-01.
    Date(i64),
    /// Microseconds from 1970-01-01 (UTC).
    Timestamp(i64),
}

/// The value at `row` of `column` (canonical types; anything else reads as NULL, which
/// cannot happen after the sink's cast).
pub fn param(column: &dyn Array, row: usize) -> Param<'_> {
    if column.is_null(row) {
        return Param::Null;
    }
    match column.data_type() {
        DataType::Boolean => Param::Int(i64::from(column.as_boolean().value(row))),
        DataType::Int16 => Param::Int(i64::from(column.as_primitive::<Int16Type>().value(row))),
        DataType::Int32 => Param::Int(i64::from(column.as_primitive::<Int32Type>().value(row))),
        DataType::Int64 => Param::Int(column.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => Param::Float(column.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => Param::Double(column.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, s) => {
            Param::Decimal(column.as_primitive::<Decimal128Type>().value(row), *s)
        }
        DataType::Utf8 => Param::Text(column.as_string::<i32>().value(row)),
        DataType::Binary => Param::Bytes(column.as_binary::<i32>().value(row)),
        DataType::Date32 => Param::Date(i64::from(column.as_primitive::<Date32Type>().value(row))),
        DataType::Timestamp(..) => {
            Param::Timestamp(column.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        _ => Param::Null,
    }
}
