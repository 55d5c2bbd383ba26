//! `raw`: a record value is the bytes of the row's single column, named anything, of type
//! VARCHAR (UTF-8 checked on the way in) or BYTEA.

use std::sync::Arc;

use arrow::array::{Array, BinaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef};

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

pub(super) fn encode(rows: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    check(&rows.schema())?;
    let column = rows.column(0);
    if let Some(strings) = column.as_any().downcast_ref::<StringArray>() {
        return Ok(strings
            .iter()
            .map(|v| v.unwrap_or_default().as_bytes().to_vec())
            .collect());
    }
    if let Some(bytes) = column.as_any().downcast_ref::<BinaryArray>() {
        return Ok(bytes
            .iter()
            .map(|v| v.unwrap_or_default().to_vec())
            .collect());
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
