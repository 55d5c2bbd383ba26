//! `avro`: one Avro binary datum per row (no container, no registry framing), the Avro
//! schema derived from the columns: a record `row` whose fields are the columns, nullable
//! ones as `["null", type]` unions. DATE is `int`/date, TIMESTAMP `long`/timestamp-micros,
//! DECIMAL(p,s) `bytes`/decimal.

use std::sync::Arc;

use apache_avro::types::Value;
use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, Date32Array,
    Date32Builder, Decimal128Array, Decimal128Builder, Float32Array, Float32Builder, Float64Array,
    Float64Builder, Int16Array, Int16Builder, Int32Array, Int32Builder, Int64Array, Int64Builder,
    RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use serde_json::json;

use crate::error::{Error, Result};

/// The Avro schema of rows of `schema`.
pub(super) fn avro_schema(schema: &SchemaRef) -> Result<apache_avro::Schema> {
    let mut fields = Vec::new();
    for field in schema.fields() {
        let ty = match field.data_type() {
            DataType::Boolean => json!("boolean"),
            DataType::Int16 | DataType::Int32 => json!("int"),
            DataType::Int64 => json!("long"),
            DataType::Float32 => json!("float"),
            DataType::Float64 => json!("double"),
            DataType::Utf8 => json!("string"),
            DataType::Binary => json!("bytes"),
            DataType::Date32 => json!({"type": "int", "logicalType": "date"}),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                json!({"type": "long", "logicalType": "timestamp-micros"})
            }
            DataType::Decimal128(p, s) => {
                json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s})
            }
            other => {
                return Err(Error::config(format!(
                    "value_format avro cannot carry column `{}` of type {other}",
                    field.name()
                )));
            }
        };
        let ty = if field.is_nullable() {
            json!(["null", ty])
        } else {
            ty
        };
        fields.push(json!({"name": field.name(), "type": ty}));
    }
    let text = json!({"type": "record", "name": "row", "fields": fields}).to_string();
    apache_avro::Schema::parse_str(&text)
        .map_err(|e| Error::config(format!("the columns make no Avro schema: {e}")))
}

fn cell(column: &ArrayRef, row: usize) -> Result<Value> {
    let any = column.as_any();
    macro_rules! get {
        ($ty:ty) => {
            any.downcast_ref::<$ty>().map(|a| a.value(row))
        };
    }
    let value = match column.data_type() {
        DataType::Boolean => get!(BooleanArray).map(Value::Boolean),
        DataType::Int16 => get!(Int16Array).map(|v| Value::Int(i32::from(v))),
        DataType::Int32 => get!(Int32Array).map(Value::Int),
        DataType::Int64 => get!(Int64Array).map(Value::Long),
        DataType::Float32 => get!(Float32Array).map(Value::Float),
        DataType::Float64 => get!(Float64Array).map(Value::Double),
        DataType::Utf8 => get!(StringArray).map(|v| Value::String(v.to_string())),
        DataType::Binary => get!(BinaryArray).map(|v| Value::Bytes(v.to_vec())),
        DataType::Date32 => get!(Date32Array).map(Value::Date),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            get!(TimestampMicrosecondArray).map(Value::TimestampMicros)
        }
        DataType::Decimal128(..) => {
            get!(Decimal128Array).map(|v| Value::Decimal(v.to_be_bytes().into()))
        }
        _ => None,
    };
    value.ok_or_else(|| {
        Error::config(format!(
            "avro: unsupported column type {}",
            column.data_type()
        ))
    })
}

pub(super) fn encode(schema: &apache_avro::Schema, rows: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let names: Vec<String> = rows
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut values = Vec::with_capacity(rows.num_rows());
    for row in 0..rows.num_rows() {
        let mut record = Vec::with_capacity(names.len());
        for (i, column) in rows.columns().iter().enumerate() {
            let nullable = rows.schema().field(i).is_nullable();
            let value = match (column.is_null(row), nullable) {
                (true, _) => Value::Union(0, Box::new(Value::Null)),
                (false, true) => Value::Union(1, Box::new(cell(column, row)?)),
                (false, false) => cell(column, row)?,
            };
            record.push((names[i].clone(), value));
        }
        let datum = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
            .build()
            .and_then(|w| w.write_value_to_vec(Value::Record(record)))
            .map_err(|e| Error::Data {
                position: format!("row {row}"),
                reason: format!("avro: {e}"),
            })?;
        values.push(datum);
    }
    Ok(values)
}

/// A column being filled from Avro values.
enum Builder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Decimal(Decimal128Builder, u8, i8),
}

impl Builder {
    fn new(ty: &DataType) -> Result<Builder> {
        Ok(match ty {
            DataType::Boolean => Builder::Boolean(BooleanBuilder::new()),
            DataType::Int16 => Builder::Int16(Int16Builder::new()),
            DataType::Int32 => Builder::Int32(Int32Builder::new()),
            DataType::Int64 => Builder::Int64(Int64Builder::new()),
            DataType::Float32 => Builder::Float32(Float32Builder::new()),
            DataType::Float64 => Builder::Float64(Float64Builder::new()),
            DataType::Utf8 => Builder::Utf8(StringBuilder::new()),
            DataType::Binary => Builder::Binary(BinaryBuilder::new()),
            DataType::Date32 => Builder::Date32(Date32Builder::new()),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                Builder::Timestamp(TimestampMicrosecondBuilder::new(), tz.clone())
            }
            DataType::Decimal128(p, s) => Builder::Decimal(Decimal128Builder::new(), *p, *s),
            other => {
                return Err(Error::config(format!(
                    "avro: unsupported column type {other}"
                )));
            }
        })
    }

    /// Appends a value; `false` if its type does not fit the column.
    fn push(&mut self, value: &Value) -> bool {
        let value = match value {
            Value::Union(_, inner) => inner.as_ref(),
            v => v,
        };
        match (self, value) {
            (Builder::Boolean(b), Value::Null) => b.append_null(),
            (Builder::Int16(b), Value::Null) => b.append_null(),
            (Builder::Int32(b), Value::Null) => b.append_null(),
            (Builder::Int64(b), Value::Null) => b.append_null(),
            (Builder::Float32(b), Value::Null) => b.append_null(),
            (Builder::Float64(b), Value::Null) => b.append_null(),
            (Builder::Utf8(b), Value::Null) => b.append_null(),
            (Builder::Binary(b), Value::Null) => b.append_null(),
            (Builder::Date32(b), Value::Null) => b.append_null(),
            (Builder::Timestamp(b, _), Value::Null) => b.append_null(),
            (Builder::Decimal(b, ..), Value::Null) => b.append_null(),
            (Builder::Boolean(b), Value::Boolean(v)) => b.append_value(*v),
            (Builder::Int16(b), Value::Int(v)) => match i16::try_from(*v) {
                Ok(v) => b.append_value(v),
                Err(_) => return false,
            },
            (Builder::Int32(b), Value::Int(v)) => b.append_value(*v),
            (Builder::Int64(b), Value::Long(v)) => b.append_value(*v),
            (Builder::Int64(b), Value::Int(v)) => b.append_value(i64::from(*v)),
            (Builder::Float32(b), Value::Float(v)) => b.append_value(*v),
            (Builder::Float64(b), Value::Double(v)) => b.append_value(*v),
            (Builder::Utf8(b), Value::String(v)) => b.append_value(v),
            (Builder::Binary(b), Value::Bytes(v)) => b.append_value(v),
            (Builder::Date32(b), Value::Date(v)) => b.append_value(*v),
            (Builder::Timestamp(b, _), Value::TimestampMicros(v)) => b.append_value(*v),
            (Builder::Decimal(b, ..), Value::Decimal(d)) => {
                let Ok(bytes) = <Vec<u8>>::try_from(d) else {
                    return false;
                };
                if bytes.len() > 16 {
                    return false;
                }
                // Sign-extend the big-endian two's complement bytes to 16.
                let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    0xFF
                } else {
                    0
                };
                let mut wide = [fill; 16];
                wide[16 - bytes.len()..].copy_from_slice(&bytes);
                b.append_value(i128::from_be_bytes(wide));
            }
            _ => return false,
        }
        true
    }

    fn finish(self) -> Result<ArrayRef> {
        Ok(match self {
            Builder::Boolean(mut b) => Arc::new(b.finish()),
            Builder::Int16(mut b) => Arc::new(b.finish()),
            Builder::Int32(mut b) => Arc::new(b.finish()),
            Builder::Int64(mut b) => Arc::new(b.finish()),
            Builder::Float32(mut b) => Arc::new(b.finish()),
            Builder::Float64(mut b) => Arc::new(b.finish()),
            Builder::Utf8(mut b) => Arc::new(b.finish()),
            Builder::Binary(mut b) => Arc::new(b.finish()),
            Builder::Date32(mut b) => Arc::new(b.finish()),
            Builder::Timestamp(mut b, tz) => Arc::new(b.finish().with_timezone_opt(tz)),
            Builder::Decimal(mut b, p, s) => Arc::new(b.finish().with_precision_and_scale(p, s)?),
        })
    }
}

pub(super) fn decode(
    avro: &apache_avro::Schema,
    schema: &SchemaRef,
    values: &[&[u8]],
) -> Result<RecordBatch> {
    let mut builders = schema
        .fields()
        .iter()
        .map(|f| Builder::new(f.data_type()))
        .collect::<Result<Vec<_>>>()?;
    for (i, value) in values.iter().enumerate() {
        let bad = |reason: String| Error::Data {
            position: format!("value {i}"),
            reason,
        };
        let mut reader: &[u8] = value;
        let datum = apache_avro::reader::datum::GenericDatumReader::builder(avro)
            .build()
            .and_then(|r| r.read_value(&mut reader))
            .map_err(|e| bad(format!("not an Avro datum of the topic's schema: {e}")))?;
        if !reader.is_empty() {
            return Err(bad(format!("{} bytes left after the datum", reader.len())));
        }
        let Value::Record(fields) = datum else {
            return Err(bad("not an Avro record".into()));
        };
        if fields.len() != builders.len() {
            return Err(bad(format!(
                "{} fields, the schema has {}",
                fields.len(),
                builders.len()
            )));
        }
        for ((name, field), builder) in fields.iter().zip(builders.iter_mut()) {
            if !builder.push(field) {
                return Err(bad(format!("field `{name}` does not fit its column")));
            }
        }
    }
    let columns = builders
        .into_iter()
        .map(Builder::finish)
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
