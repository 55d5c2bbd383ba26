//! Arrow results as PostgreSQL rows: each Arrow type's PostgreSQL type (what
//! RowDescription announces), and each value in the format the client asked for — text as
//! PostgreSQL prints it (`t`/`f`, `\x` hex for bytea, `2024-05-01 10:00:00` for
//! timestamps), or PostgreSQL's binary form (big-endian numbers; dates and timestamps
//! counted from 2000-01-01), so drivers that parse results by type read them correctly.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::datatypes::{
    Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    UInt8Type, UInt16Type, UInt32Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

/// The PostgreSQL type a column of `data_type` is sent as (anything without a close match
/// is sent as text).
pub(crate) fn pg_type(data_type: &DataType) -> Type {
    match data_type {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::VARCHAR,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        _ => Type::TEXT,
    }
}

/// Days from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from the Unix epoch to PostgreSQL's.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The RowDescription fields of a result, each in the format the client asked for
/// (`None`: text). A column whose type has no binary encoder here is announced as text,
/// whose binary form is its UTF-8 bytes.
pub(crate) fn fields(schema: &Schema, formats: Option<&Format>) -> Arc<Vec<FieldInfo>> {
    Arc::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let format = formats.map_or(FieldFormat::Text, |f| f.format_for(i));
                let mut ty = pg_type(f.data_type());
                if format == FieldFormat::Binary && ty == Type::NUMERIC {
                    ty = Type::TEXT;
                }
                FieldInfo::new(f.name().clone(), None, None, ty, format)
            })
            .collect(),
    )
}

/// Every row of `batch` as a DataRow in text format.
pub(crate) fn rows(
    fields: &Arc<Vec<FieldInfo>>,
    batch: &RecordBatch,
) -> PgWireResult<Vec<DataRow>> {
    let options = FormatOptions::default()
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"));
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pgwire::error::PgWireError::ApiError(Box::new(e)))?;
    // Logical nulls: a column of type Null (`SELECT NULL`) has no validity buffer, yet
    // every value is NULL.
    let nulls: Vec<Option<NullBuffer>> =
        batch.columns().iter().map(|c| c.logical_nulls()).collect();
    let mut encoder = DataRowEncoder::new(Arc::clone(fields));
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (((column, formatter), field), nulls) in batch
            .columns()
            .iter()
            .zip(&formatters)
            .zip(fields.iter())
            .zip(&nulls)
        {
            let is_null = nulls.as_ref().is_some_and(|n| n.is_null(row));
            if field.format() == FieldFormat::Binary {
                if is_null {
                    encoder.encode_field(&None::<i64>)?;
                } else {
                    encode_binary(&mut encoder, column.as_ref(), row, formatter)?;
                }
                continue;
            }
            let text = if is_null {
                None
            } else {
                Some(match column.data_type() {
                    DataType::Boolean => {
                        let v = column.as_boolean().value(row);
                        if v { "t" } else { "f" }.to_string()
                    }
                    DataType::Binary => hex(column.as_binary::<i32>().value(row)),
                    DataType::LargeBinary => hex(column.as_binary::<i64>().value(row)),
                    _ => formatter.value(row).to_string(),
                })
            };
            encoder.encode_field(&text)?;
        }
        out.push(encoder.take_row());
    }
    Ok(out)
}

/// One value, not NULL, in PostgreSQL's binary form for the type [`pg_type`] announced.
fn encode_binary(
    encoder: &mut DataRowEncoder,
    column: &dyn Array,
    row: usize,
    formatter: &ArrayFormatter<'_>,
) -> PgWireResult<()> {
    match column.data_type() {
        DataType::Boolean => encoder.encode_field(&column.as_boolean().value(row)),
        DataType::Int8 => {
            encoder.encode_field(&i16::from(column.as_primitive::<Int8Type>().value(row)))
        }
        DataType::UInt8 => {
            encoder.encode_field(&i16::from(column.as_primitive::<UInt8Type>().value(row)))
        }
        DataType::Int16 => encoder.encode_field(&column.as_primitive::<Int16Type>().value(row)),
        DataType::UInt16 => {
            encoder.encode_field(&i32::from(column.as_primitive::<UInt16Type>().value(row)))
        }
        DataType::Int32 => encoder.encode_field(&column.as_primitive::<Int32Type>().value(row)),
        DataType::UInt32 => {
            encoder.encode_field(&i64::from(column.as_primitive::<UInt32Type>().value(row)))
        }
        DataType::Int64 => encoder.encode_field(&column.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => encoder.encode_field(&column.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => encoder.encode_field(&column.as_primitive::<Float64Type>().value(row)),
        DataType::Binary => encoder.encode_field(&column.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => {
            encoder.encode_field(&column.as_binary::<i64>().value(row).to_vec())
        }
        DataType::Date32 => {
            encoder.encode_field(&(column.as_primitive::<Date32Type>().value(row) - PG_EPOCH_DAYS))
        }
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                TimeUnit::Second => column
                    .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => column
                    .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Microsecond => column
                    .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => column
                    .as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>()
                    .value(row)
                    .div_euclid(1_000),
            };
            encoder.encode_field(&(micros - PG_EPOCH_MICROS))
        }
        // Text types, and everything announced as text: the UTF-8 bytes of the text.
        _ => encoder.encode_field(&formatter.value(row).to_string()),
    }
}

/// PostgreSQL's bytea text form: `\x` and two hex digits per byte.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
