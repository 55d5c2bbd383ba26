//! `json`: a JSON object per row, through arrow-json (nulls left out).

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::{LineDelimitedWriter, ReaderBuilder};

use crate::error::{Error, Result};

pub(super) fn encode(rows: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(rows.num_rows() * 64);
    {
        let mut writer = LineDelimitedWriter::new(&mut out);
        writer.write(rows)?;
        writer.finish()?;
    }
    // JSON escapes newlines inside strings, so every '\n' ends a row.
    let mut values = Vec::with_capacity(rows.num_rows());
    for line in out.split(|&b| b == b'\n') {
        if !line.is_empty() {
            values.push(line.to_vec());
        }
    }
    if values.len() != rows.num_rows() {
        return Err(Error::Data {
            position: "json encoder".into(),
            reason: format!("{} rows became {} values", rows.num_rows(), values.len()),
        });
    }
    Ok(values)
}

pub(super) fn decode(schema: &SchemaRef, values: &[&[u8]]) -> Result<RecordBatch> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(values.len().max(1))
        .build_decoder()?;
    super::feed_lines(values, |bytes| decoder.decode(bytes))?;
    super::one_row_each(schema, decoder.flush()?, values.len(), "json", "JSON objects")
}
