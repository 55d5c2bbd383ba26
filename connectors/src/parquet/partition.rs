//! Which directory each row goes to: `partition_by` fields as `field=value/` (Hive style,
//! values escaped for paths, nulls as `__HIVE_DEFAULT_PARTITION__`), then the event time
//! formatted by `time_partition` (`dt=%Y-%m-%d/hour=%H`, UTC).
//!
//! Rows are grouped by directory with one `take` per directory, keeping their order.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMicrosecondType};
use chrono::format::{Item, StrftimeItems};

use crate::error::{Error, Result};
use crate::file::roll::escape;

/// Hive's name for a null partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// How rows are split into directories.
#[derive(Debug, Clone)]
pub struct Partitioner {
    /// Fields whose values name directories, in order.
    fields: Vec<String>,
    /// The event-time field and its strftime format.
    time: Option<(String, String)>,
}

impl Partitioner {
    /// Checks the fields against `schema`; `time_field` `None` takes the first timestamp
    /// (or date) column.
    pub fn new(
        fields: Vec<String>,
        time: Option<(Option<String>, String)>,
        schema: &Schema,
    ) -> Result<Partitioner> {
        for field in &fields {
            if schema.field_with_name(field).is_err() {
                return Err(Error::config(format!(
                    "partition_by names `{field}`, which the rows do not have (they have {})",
                    names(schema)
                )));
            }
        }
        let time = match time {
            None => None,
            Some((field, format)) => {
                check_format(&format)?;
                let field = match field {
                    Some(f) => {
                        let ty = schema.field_with_name(&f).map(|f| f.data_type().clone()).map_err(|_| {
                            Error::config(format!(
                                "time_partition field `{f}` is not among the rows' columns ({})",
                                names(schema)
                            ))
                        })?;
                        if !is_time(&ty) {
                            return Err(Error::config(format!(
                                "time_partition field `{f}` is {ty}: use a TIMESTAMP, DATE or BIGINT (epoch milliseconds) column"
                            )));
                        }
                        f
                    }
                    None => schema
                        .fields()
                        .iter()
                        .find(|f| matches!(f.data_type(), DataType::Timestamp(..) | DataType::Date32 | DataType::Date64))
                        .map(|f| f.name().clone())
                        .ok_or_else(|| {
                            Error::config("time_partition has no field and the rows have no TIMESTAMP or DATE column: name one with field = \"ts\"")
                        })?,
                };
                Some((field, format))
            }
        };
        Ok(Partitioner { fields, time })
    }

    /// Whether rows are split at all.
    pub fn is_active(&self) -> bool {
        !self.fields.is_empty() || self.time.is_some()
    }

    /// The `partition_by` fields (left out of the data files: their values are in paths).
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Splits `rows` by directory, in order of first appearance.
    pub fn split(&self, rows: &RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
        if !self.is_active() {
            return Ok(vec![(String::new(), rows.clone())]);
        }
        let mut columns = Vec::new();
        for field in &self.fields {
            let column = rows
                .column_by_name(field)
                .ok_or_else(|| Error::config(format!("rows lack partition field `{field}`")))?;
            columns.push(cast(column, &DataType::Utf8)?);
        }
        let times = match &self.time {
            Some((field, _)) => {
                let column = rows
                    .column_by_name(field)
                    .ok_or_else(|| Error::config(format!("rows lack time field `{field}`")))?;
                let column = match column.data_type() {
                    DataType::Int64 => {
                        cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?
                    }
                    _ => column.clone(),
                };
                Some(cast(
                    &column,
                    &DataType::Timestamp(TimeUnit::Microsecond, None),
                )?)
            }
            None => None,
        };
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<u32>> = HashMap::new();
        let mut dir = String::new();
        for row in 0..rows.num_rows() {
            dir.clear();
            for (field, column) in self.fields.iter().zip(&columns) {
                let values = column.as_string::<i32>();
                let value = if values.is_null(row) || values.value(row).is_empty() {
                    NULL_PARTITION.to_string()
                } else {
                    escape(values.value(row))
                };
                dir.push_str(&format!("{}={value}/", escape(field)));
            }
            if let (Some(times), Some((_, format))) = (&times, &self.time) {
                let times = times.as_primitive::<TimestampMicrosecondType>();
                let formatted = if times.is_null(row) {
                    None
                } else {
                    chrono::DateTime::from_timestamp_micros(times.value(row))
                        .map(|t| t.format(format).to_string())
                };
                dir.push_str(formatted.as_deref().unwrap_or(NULL_PARTITION));
                dir.push('/');
            }
            let key = dir.trim_end_matches('/');
            match groups.get_mut(key) {
                Some(indices) => indices.push(row as u32),
                None => {
                    order.push(key.to_string());
                    groups.insert(key.to_string(), vec![row as u32]);
                }
            }
        }
        let mut out = Vec::with_capacity(order.len());
        for key in order {
            let indices = UInt32Array::from(groups.remove(&key).unwrap_or_default());
            out.push((key, take_record_batch(rows, &indices)?));
        }
        Ok(out)
    }
}

fn is_time(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Int64
    )
}

fn names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A strftime format chrono can apply, that makes relative path components.
fn check_format(format: &str) -> Result<()> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err(Error::config(format!(
            "time_partition format `{format}` is not a valid strftime format: e.g. \"dt=%Y-%m-%d/hour=%H\""
        )));
    }
    if format.starts_with('/') || format.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(Error::config(format!(
            "time_partition format `{format}` must make relative directories like \"dt=%Y-%m-%d/hour=%H\""
        )));
    }
    Ok(())
}
