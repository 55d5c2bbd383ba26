//! `raw`: a record value is the bytes of the row's single column, named anything, of type
//! VARCHAR (UTF-8 checked on the way in) or BYTEA.

use std::sync::Arc;

use arrow::array::{Array, BinaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef};

use super::Encoded;
use crate::error::{Error, Result};

pub(super) fn check(schema: &SchemaRef) -> Result<()> {
    match schema.fields().as_ref() {
        [field] if matches!(field.data_type(), DataType::Utf8 | DataType::Binary) => Ok(()),
        _ => Err(Error::config(format!(
            "value_format raw carries one VARCHAR or BYTEA column, not ({}): declare \
             schema = \"value VARCHAR\" or use json",
            crate::schema::format_schema(schema)
        ))),
    }
}

pub(super) fn encode(rows: &RecordBatch) -> Result<Encoded> {
    check(&rows.schema())?;
    let column = rows.column(0);
    let mut values = Encoded::with_capacity(rows.num_rows(), column.get_buffer_memory_size());
    if let Some(strings) = column.as_any().downcast_ref::<StringArray>() {
        for v in strings {
            values.push(v.unwrap_or_default().as_bytes());
        }
        return Ok(values);
    }
    if let Some(bytes) = column.as_any().downcast_ref::<BinaryArray>() {
        for v in bytes {
            values.push(v.unwrap_or_default());
        }
        return Ok(values);
    }
    Err(Error::config(
        "value_format raw: the column is neither VARCHAR nor BYTEA",
    ))
}

pub(super) fn decode(schema: &SchemaRef, values: &[&[u8]]) -> Result<RecordBatch> {
    check(schema)?;
    let column: Arc<dyn Array> = match schema.field(0).data_type() {
        DataType::Utf8 => {
            let strings = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    std::str::from_utf8(v).map_err(|e| Error::Data {
                        position: format!("value {i}"),
                        reason: format!("not UTF-8 ({e}); declare the column BYTEA"),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Arc::new(StringArray::from(strings))
        }
        _ => Arc::new(BinaryArray::from(values.to_vec())),
    };
    Ok(RecordBatch::try_new(schema.clone(), vec![column])?)
}
