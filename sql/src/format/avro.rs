//! The `avro` format: each record value is one Avro binary datum (no container file, no
//! schema-registry header) of the record schema given inline in `WITH (schema = '...')`.
//! Columns take the fields of the same name; a table may leave its columns out and get
//! them from the schema ([`columns_from_schema`]).

use apache_avro::Schema;
use apache_avro::types::Value;

use super::cell::Cell;
use crate::catalog::{ColumnDef, ColumnType};

/// Parses an inline schema; it must be a record.
pub(crate) fn parse_schema(text: &str) -> Result<Schema, String> {
    let schema = Schema::parse_str(text).map_err(|e| format!("schema is not valid Avro: {e}"))?;
    match schema {
        Schema::Record(_) => Ok(schema),
        _ => Err("the Avro schema must be a record".into()),
    }
}

/// The column type an Avro field type maps to, and whether it may be null; `None` for
/// types topic tables do not hold yet (arrays, maps, nested records, decimals).
fn column_type(schema: &Schema) -> Option<(ColumnType, bool)> {
    let ty = match schema {
        Schema::Union(union) => {
            let variants = union.variants();
            let non_null: Vec<&Schema> = variants
                .iter()
                .filter(|s| !matches!(s, Schema::Null))
                .collect();
            return match non_null.as_slice() {
                [one] if variants.len() == 2 => column_type(one).map(|(ty, _)| (ty, true)),
                _ => None,
            };
        }
        Schema::Boolean => ColumnType::Boolean,
        Schema::Int => ColumnType::Int,
        Schema::Long => ColumnType::BigInt,
        Schema::Float => ColumnType::Real,
        Schema::Double => ColumnType::Double,
        Schema::String | Schema::Enum(_) | Schema::Uuid(_) => ColumnType::Varchar,
        Schema::Bytes | Schema::Fixed(_) => ColumnType::Bytea,
        Schema::Date => ColumnType::Date,
        Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => ColumnType::Timestamp,
        _ => return None,
    };
    Some((ty, false))
}

/// The columns a record schema gives a table that declares none.
pub(crate) fn columns_from_schema(schema: &Schema) -> Result<Vec<ColumnDef>, String> {
    let Schema::Record(record) = schema else {
        return Err("the Avro schema must be a record".into());
    };
    record
        .fields
        .iter()
        .map(|field| {
            let (ty, nullable) = column_type(&field.schema).ok_or_else(|| {
                format!(
                    "field {} has an Avro type topic tables do not hold yet; declare the \
                     columns you need instead",
                    field.name
                )
            })?;
            Ok(ColumnDef {
                name: field.name.clone(),
                ty,
                nullable,
            })
        })
        .collect()
}

/// Whether the record schema has a field of this name.
pub(crate) fn has_field(schema: &Schema, name: &str) -> bool {
    matches!(schema, Schema::Record(r) if r.lookup.contains_key(name))
}

/// Decodes one value into its record's fields; `Err` when it is not a datum of `schema`.
pub(crate) fn decode(schema: &Schema, bytes: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let mut reader = bytes;
    let value = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .and_then(|r| r.read_value(&mut reader))
        .map_err(|e| format!("value is not an Avro datum of the table's schema: {e}"))?;
    if !reader.is_empty() {
        return Err(format!(
            "value has {} bytes after the Avro datum (is it framed, or written with another schema?)",
            reader.len()
        ));
    }
    match value {
        Value::Record(fields) => Ok(fields),
        _ => Err("value is not an Avro record".into()),
    }
}

/// One Avro field value as a value of `ty`.
pub(crate) fn cell(ty: ColumnType, value: &Value) -> Result<Cell, String> {
    let mismatch = || format!("expected {}, found Avro {value:?}", ty.sql_name());
    let int = |v: i64| match ty {
        ColumnType::TinyInt => i8::try_from(v).ok().map(Cell::I8),
        ColumnType::SmallInt => i16::try_from(v).ok().map(Cell::I16),
        ColumnType::Int => i32::try_from(v).ok().map(Cell::I32),
        ColumnType::BigInt => Some(Cell::I64(v)),
        ColumnType::Real => Some(Cell::F32(v as f32)),
        ColumnType::Double => Some(Cell::F64(v as f64)),
        ColumnType::Timestamp => Some(Cell::TimestampMs(v)),
        _ => None,
    };
    let converted = match value {
        Value::Null => Some(Cell::Null),
        Value::Union(_, inner) => return cell(ty, inner),
        Value::Boolean(b) if ty == ColumnType::Boolean => Some(Cell::Bool(*b)),
        Value::Int(v) => int(i64::from(*v)),
        Value::Long(v) => int(*v),
        Value::Float(v) if ty == ColumnType::Real => Some(Cell::F32(*v)),
        Value::Float(v) if ty == ColumnType::Double => Some(Cell::F64(f64::from(*v))),
        Value::Double(v) if ty == ColumnType::Double => Some(Cell::F64(*v)),
        Value::Double(v) if ty == ColumnType::Real => Some(Cell::F32(*v as f32)),
        Value::String(s) | Value::Enum(_, s) if ty == ColumnType::Varchar => {
            Some(Cell::Text(s.clone()))
        }
        Value::Uuid(u) if ty == ColumnType::Varchar => Some(Cell::Text(u.to_string())),
        Value::Bytes(b) | Value::Fixed(_, b) if ty == ColumnType::Bytea => {
            Some(Cell::Bytes(b.clone()))
        }
        Value::Date(d) if ty == ColumnType::Date => Some(Cell::Date(*d)),
        Value::TimestampMillis(v) | Value::LocalTimestampMillis(v)
            if ty == ColumnType::Timestamp =>
        {
            Some(Cell::TimestampMs(*v))
        }
        Value::TimestampMicros(v) | Value::LocalTimestampMicros(v)
            if ty == ColumnType::Timestamp =>
        {
            Some(Cell::TimestampMs(v.div_euclid(1_000)))
        }
        Value::TimestampNanos(v) | Value::LocalTimestampNanos(v) if ty == ColumnType::Timestamp => {
            Some(Cell::TimestampMs(v.div_euclid(1_000_000)))
        }
        _ => None,
    };
    converted.ok_or_else(mismatch)
}

/// Encodes one row (the cells of `columns`) as a datum of `schema`. Fields without a
/// column are NULL, which the schema must allow.
pub(crate) fn encode(
    schema: &Schema,
    columns: &[ColumnDef],
    cells: &[Cell],
) -> Result<Vec<u8>, String> {
    let Schema::Record(record) = schema else {
        return Err("the Avro schema must be a record".into());
    };
    let mut fields = Vec::with_capacity(record.fields.len());
    for field in &record.fields {
        let cell = columns
            .iter()
            .position(|c| c.name == field.name)
            .and_then(|i| cells.get(i))
            .unwrap_or(&Cell::Null);
        fields.push((field.name.clone(), value_for(&field.schema, cell)));
    }
    // `resolve` picks union branches and checks every field against the schema.
    let value = Value::Record(fields)
        .resolve(schema)
        .map_err(|e| format!("row does not fit the Avro schema: {e}"))?;
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| format!("Avro encoding failed: {e}"))
}

/// A cell as the Avro value `schema` (a field's type) expects, before resolution.
fn value_for(schema: &Schema, cell: &Cell) -> Value {
    let target = match schema {
        Schema::Union(union) => union
            .variants()
            .iter()
            .find(|s| !matches!(s, Schema::Null))
            .unwrap_or(schema),
        other => other,
    };
    match (cell, target) {
        (Cell::Null, _) => Value::Null,
        (Cell::Bool(v), _) => Value::Boolean(*v),
        (Cell::I8(v), Schema::Int) => Value::Int(i32::from(*v)),
        (Cell::I16(v), Schema::Int) => Value::Int(i32::from(*v)),
        (Cell::I32(v), Schema::Int) => Value::Int(*v),
        (Cell::I8(v), _) => Value::Long(i64::from(*v)),
        (Cell::I16(v), _) => Value::Long(i64::from(*v)),
        (Cell::I32(v), _) => Value::Long(i64::from(*v)),
        (Cell::I64(v), Schema::Int) => i32::try_from(*v).map_or(Value::Long(*v), Value::Int),
        (Cell::I64(v), _) => Value::Long(*v),
        (Cell::F32(v), Schema::Double) => Value::Double(f64::from(*v)),
        (Cell::F32(v), _) => Value::Float(*v),
        (Cell::F64(v), Schema::Float) => Value::Float(*v as f32),
        (Cell::F64(v), _) => Value::Double(*v),
        (Cell::Text(s), Schema::Enum(e)) => match e.symbols.iter().position(|x| x == s) {
            Some(i) => Value::Enum(i as u32, s.clone()),
            None => Value::String(s.clone()),
        },
        (Cell::Text(s), _) => Value::String(s.clone()),
        (Cell::Bytes(b), _) => Value::Bytes(b.clone()),
        (Cell::Date(d), _) => Value::Date(*d),
        (Cell::TimestampMs(ms), Schema::TimestampMicros | Schema::LocalTimestampMicros) => {
            Value::TimestampMicros(ms.saturating_mul(1_000))
        }
        (Cell::TimestampMs(ms), Schema::TimestampNanos | Schema::LocalTimestampNanos) => {
            Value::TimestampNanos(ms.saturating_mul(1_000_000))
        }
        (Cell::TimestampMs(ms), _) => Value::TimestampMillis(*ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": ["null", "string"]},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}}
    ]}"#;

    // A row written by `encode` reads back cell for cell, through the union and the
    // timestamp's unit change.
    #[test]
    fn encode_then_decode_round_trips() {
        let schema = parse_schema(SCHEMA).unwrap();
        let columns = columns_from_schema(&schema).unwrap();
        assert_eq!(
            columns
                .iter()
                .map(|c| (c.ty, c.nullable))
                .collect::<Vec<_>>(),
            [
                (ColumnType::BigInt, false),
                (ColumnType::Varchar, true),
                (ColumnType::Timestamp, false)
            ]
        );
        let cells = [
            Cell::I64(7),
            Cell::Null,
            Cell::TimestampMs(1_700_000_000_123),
        ];
        let bytes = encode(&schema, &columns, &cells).unwrap();
        let fields = decode(&schema, &bytes).unwrap();
        let back: Vec<Cell> = columns
            .iter()
            .zip(&fields)
            .map(|(c, (_, v))| cell(c.ty, v).unwrap())
            .collect();
        assert_eq!(back, cells);
        assert!(decode(&schema, b"\x01").is_err());
    }
}
