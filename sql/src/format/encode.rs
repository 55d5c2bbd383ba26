//! Arrow rows to records, for INSERT: the declared columns become the value in the table's
//! format; `_key`, `_partition`, `_timestamp` and `_headers`, when not NULL, become the
//! record's key, partition, timestamp and headers (`_offset` is ignored: the log assigns
//! offsets). Without `_timestamp` the event-time column (`timestamp` option) is used, and
//! without that the producer stamps the current time.

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use sluice_core::ProducerRecord;

use super::cell::Cell;
use super::csv;
use crate::catalog::{Format, TableDef};
use crate::{Error, Result};

/// Encodes every row of `batch` (which has the table's full schema) as a record.
pub(crate) fn encode_rows(table: &TableDef, batch: &RecordBatch) -> Result<Vec<ProducerRecord>> {
    let n = table.columns.len();
    if batch.num_columns() != n + crate::catalog::table::METADATA_COLUMNS.len() {
        return Err(bad_row(
            table,
            format!(
                "expected {} columns, got {}",
                n + crate::catalog::table::METADATA_COLUMNS.len(),
                batch.num_columns()
            ),
        ));
    }
    let event_time = table.timestamp_index();
    let avro = match (&table.format, &table.schema) {
        (Format::Avro, Some(text)) => {
            Some(super::avro::parse_schema(text).map_err(|e| bad_row(table, e))?)
        }
        _ => None,
    };
    let mut records = Vec::with_capacity(batch.num_rows());
    let mut cells = Vec::with_capacity(n);
    for row in 0..batch.num_rows() {
        cells.clear();
        for column in batch.columns().iter().take(n) {
            let scalar = ScalarValue::try_from_array(column, row)
                .map_err(|e| bad_row(table, e.to_string()))?;
            cells.push(Cell::from_scalar(&scalar).map_err(|e| bad_row(table, e))?);
        }
        for (column, cell) in table.columns.iter().zip(&cells) {
            if !column.nullable && *cell == Cell::Null {
                return Err(bad_row(
                    table,
                    format!("NULL in NOT NULL column {}", column.name),
                ));
            }
        }
        let value: Option<Bytes> = match table.format {
            Format::Json => {
                let object: serde_json::Map<String, serde_json::Value> = table
                    .columns
                    .iter()
                    .zip(&cells)
                    .filter(|(_, cell)| **cell != Cell::Null)
                    .map(|(c, cell)| (c.name.clone(), cell.to_json()))
                    .collect();
                Some(Bytes::from(serde_json::Value::Object(object).to_string()))
            }
            Format::Csv => {
                let fields: Vec<Option<String>> = cells.iter().map(Cell::to_text).collect();
                Some(Bytes::from(csv::write_line(&fields)))
            }
            Format::Avro => {
                let schema = avro
                    .as_ref()
                    .ok_or_else(|| bad_row(table, "the table has no Avro schema".into()))?;
                let datum = super::avro::encode(schema, &table.columns, &cells)
                    .map_err(|e| bad_row(table, e))?;
                Some(Bytes::from(datum))
            }
            Format::Raw => match cells.first() {
                Some(Cell::Text(s)) => Some(Bytes::from(s.clone())),
                Some(Cell::Bytes(b)) => Some(Bytes::from(b.clone())),
                _ => None,
            },
        };
        let mut record = ProducerRecord::to(table.topic.clone());
        record.value = value;
        let meta = |i: usize| batch.column(n + i);
        let key =
            ScalarValue::try_from_array(meta(0), row).map_err(|e| bad_row(table, e.to_string()))?;
        record.key = match Cell::from_scalar(&key).map_err(|e| bad_row(table, e))? {
            Cell::Text(s) => Some(Bytes::from(s)),
            Cell::Bytes(b) => Some(Bytes::from(b)),
            _ => None,
        };
        let partition = meta(1).as_primitive_opt::<datafusion::arrow::datatypes::Int32Type>();
        if let Some(p) = partition.filter(|p| p.is_valid(row)) {
            record.partition = Some(p.value(row));
        }
        let ts = meta(3)
            .as_primitive_opt::<datafusion::arrow::datatypes::TimestampMillisecondType>()
            .filter(|t| t.is_valid(row))
            .map(|t| t.value(row));
        record.timestamp = ts.or_else(|| match event_time.and_then(|i| cells.get(i)) {
            Some(Cell::TimestampMs(ms)) => Some(*ms),
            _ => None,
        });
        if let Some(list) = meta(4).as_list_opt::<i32>().filter(|l| l.is_valid(row)) {
            let headers = list.value(row);
            let headers = headers
                .as_struct_opt()
                .ok_or_else(|| bad_row(table, "_headers must be a list of {key, value}".into()))?;
            let keys = headers.column(0).as_string_opt::<i32>();
            let values = headers.column(1).as_binary_opt::<i32>();
            let (Some(keys), Some(values)) = (keys, values) else {
                return Err(bad_row(
                    table,
                    "_headers must be a list of {key VARCHAR, value BYTEA}".into(),
                ));
            };
            for h in 0..headers.len() {
                if keys.is_null(h) {
                    return Err(bad_row(table, "a header key is NULL".into()));
                }
                let value = values
                    .is_valid(h)
                    .then(|| Bytes::copy_from_slice(values.value(h)));
                record.headers.push(sluice_core::record::Header {
                    key: keys.value(h).to_string(),
                    value,
                });
            }
        }
        records.push(record);
    }
    Ok(records)
}

fn bad_row(table: &TableDef, reason: String) -> Error {
    Error::BadRow {
        table: table.name.clone(),
        reason,
    }
}
