//! `csv`: one CSV line per row (RFC 4180 quoting, no header, columns in schema order),
//! read back through arrow-csv.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::Encoded;
use crate::error::{Error, Result};

/// CSV cannot carry bytes: arrow-csv reads no BYTEA column.
pub(super) fn check(schema: &SchemaRef) -> Result<()> {
    match schema
        .fields()
        .iter()
        .find(|f| matches!(f.data_type(), DataType::Binary | DataType::LargeBinary))
    {
        Some(f) => Err(Error::config(format!(
            "value_format csv cannot carry the BYTEA column `{}`: use json or avro, or cast it to VARCHAR",
            f.name()
        ))),
        None => Ok(()),
    }
}

pub(super) fn encode(rows: &RecordBatch) -> Result<Encoded> {
    check(&rows.schema())?;
    let options = FormatOptions::default().with_null("");
    let formatters = rows
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut values = Encoded::with_capacity(rows.num_rows(), rows.num_rows() * 64);
    let mut cell = String::new();
    for row in 0..rows.num_rows() {
        let line = values.buffer();
        for (i, formatter) in formatters.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            cell.clear();
            use std::fmt::Write;
            write!(cell, "{}", formatter.value(row)).map_err(|e| Error::Data {
                position: format!("row {row}"),
                reason: e.to_string(),
            })?;
            // A non-null empty string is written "" so it is not read back as null.
            let empty_string = cell.is_empty() && rows.column(i).is_valid(row);
            if empty_string || cell.contains([',', '"', '\n', '\r']) {
                line.push(b'"');
                line.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
                line.push(b'"');
            } else {
                line.extend_from_slice(cell.as_bytes());
            }
        }
        values.end_value();
    }
    Ok(values)
}

pub(super) fn decode(schema: &SchemaRef, values: &[&[u8]]) -> Result<RecordBatch> {
    check(schema)?;
    let mut decoder = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_batch_size(values.len().max(1))
        .build_decoder();
    super::feed_lines(values, |bytes| decoder.decode(bytes))?;
    super::one_row_each(schema, decoder.flush()?, values.len(), "csv", "CSV lines")
}
