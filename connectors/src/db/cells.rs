//! Building Arrow columns from database values, one value at a time, for the sources.
//!
//! Each system decodes its wire values into a [`Cell`]; a [`RowsBuilder`] appends cells to
//! builders of the table's Arrow types. A value that does not fit its column (text in an
//! SQLite INTEGER column, a date out of range) marks its row bad instead of failing the
//! poll: the row is still counted for the position, then set aside as a reject.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanArray, BooleanBuilder, Date32Builder,
    Decimal128Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::types::{MICROS_PER_DAY, parse_date, parse_decimal, parse_timestamp};
use crate::error::{Error, Result};

/// One database value, as the system's client decoded it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer.
    Int(i64),
    /// Any float.
    Float(f64),
    /// A decimal: unscaled value and scale.
    Decimal(i128, i8),
    /// Text (also decimals, dates and timestamps as text).
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
    /// Days from 1970-01-01.
    Date(i64),
    /// Microseconds from 1970-01-01 (UTC for zoned columns).
    Timestamp(i64),
}

enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
}

impl Builder {
    fn new(ty: &DataType, capacity: usize) -> Result<Builder> {
        Ok(match ty {
            DataType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            DataType::Int16 => Builder::I16(Int16Builder::with_capacity(capacity)),
            DataType::Int32 => Builder::I32(Int32Builder::with_capacity(capacity)),
            DataType::Int64 => Builder::I64(Int64Builder::with_capacity(capacity)),
            DataType::Float32 => Builder::F32(Float32Builder::with_capacity(capacity)),
            DataType::Float64 => Builder::F64(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => Builder::Dec(
                Decimal128Builder::with_capacity(capacity).with_precision_and_scale(*p, *s)?,
                *p,
                *s,
            ),
            DataType::Utf8 => Builder::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
            DataType::Binary => {
                Builder::Bytes(BinaryBuilder::with_capacity(capacity, capacity * 16))
            }
            DataType::Date32 => Builder::Date(Date32Builder::with_capacity(capacity)),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Builder::Ts(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone_opt(tz.clone()),
            ),
            other => return Err(Error::config(format!("no database column maps to {other}"))),
        })
    }

    /// Appends `cell`, or a null and the reason it does not fit.
    fn push(&mut self, cell: &Cell<'_>) -> Result<(), String> {
        let result = self.try_push(cell);
        if result.is_err() {
            self.push_null();
        }
        result
    }

    fn push_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Dec(b, ..) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Bytes(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b) => b.append_null(),
        }
    }

    fn try_push(&mut self, cell: &Cell<'_>) -> Result<(), String> {
        let type_name = self.type_name();
        let bad = || format!("cannot read {cell:?} as {type_name}");
        if matches!(cell, Cell::Null) {
            self.push_null();
            return Ok(());
        }
        let int = |cell: &Cell<'_>| match cell {
            Cell::Int(v) => Some(*v),
            Cell::Bool(b) => Some(i64::from(*b)),
            Cell::Text(t) => t.trim().parse().ok(),
            _ => None,
        };
        match self {
            Builder::Bool(b) => b.append_value(match cell {
                Cell::Bool(v) => *v,
                Cell::Int(v) => *v != 0,
                Cell::Text(t) => matches!(t.trim(), "1" | "t" | "true" | "TRUE"),
                _ => return Err(bad()),
            }),
            Builder::I16(b) => b.append_value(
                int(cell)
                    .and_then(|v| i16::try_from(v).ok())
                    .ok_or_else(bad)?,
            ),
            Builder::I32(b) => b.append_value(
                int(cell)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(bad)?,
            ),
            Builder::I64(b) => b.append_value(int(cell).ok_or_else(bad)?),
            Builder::F32(b) => b.append_value(match cell {
                Cell::Float(v) => *v as f32,
                Cell::Int(v) => *v as f32,
                Cell::Text(t) => t.trim().parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            }),
            Builder::F64(b) => b.append_value(match cell {
                Cell::Float(v) => *v,
                Cell::Int(v) => *v as f64,
                Cell::Text(t) => t.trim().parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            }),
            Builder::Dec(b, precision, scale) => {
                let (precision, scale) = (*precision, *scale);
                let value = match cell {
                    Cell::Decimal(v, s) => rescale(*v, *s, scale),
                    Cell::Int(v) => rescale(i128::from(*v), 0, scale),
                    Cell::Text(t) => parse_decimal(t, scale),
                    Cell::Bytes(t) => std::str::from_utf8(t)
                        .ok()
                        .and_then(|t| parse_decimal(t, scale)),
                    Cell::Float(f) => parse_decimal(&format!("{f}"), scale),
                    _ => None,
                };
                let value = value.ok_or_else(bad)?;
                // The builder checks precision only at finish: check here, per value.
                <arrow::datatypes::Decimal128Type as arrow::datatypes::DecimalType>::validate_decimal_precision(
                    value, precision, scale,
                )
                .map_err(|e| e.to_string())?;
                b.append_value(value);
            }
            Builder::Text(b) => match cell {
                Cell::Text(t) => b.append_value(t),
                Cell::Bytes(t) => b.append_value(std::str::from_utf8(t).map_err(|_| bad())?),
                Cell::Int(v) => b.append_value(v.to_string()),
                Cell::Float(v) => b.append_value(v.to_string()),
                _ => return Err(bad()),
            },
            Builder::Bytes(b) => match cell {
                Cell::Bytes(t) => b.append_value(t),
                Cell::Text(t) => b.append_value(t.as_bytes()),
                _ => return Err(bad()),
            },
            Builder::Date(b) => {
                let days = match cell {
                    Cell::Date(d) => Some(*d),
                    Cell::Timestamp(t) => Some(t.div_euclid(MICROS_PER_DAY)),
                    Cell::Text(t) => parse_date(t),
                    _ => None,
                };
                b.append_value(days.and_then(|d| i32::try_from(d).ok()).ok_or_else(bad)?);
            }
            Builder::Ts(b) => b.append_value(match cell {
                Cell::Timestamp(t) => *t,
                Cell::Date(d) => d * MICROS_PER_DAY,
                Cell::Text(t) => parse_timestamp(t).ok_or_else(bad)?,
                // SQLite's unixepoch(): seconds.
                Cell::Int(s) => s.checked_mul(1_000_000).ok_or_else(bad)?,
                _ => return Err(bad()),
            }),
        }
        Ok(())
    }

    fn type_name(&self) -> &'static str {
        match self {
            Builder::Bool(_) => "BOOLEAN",
            Builder::I16(_) => "SMALLINT",
            Builder::I32(_) => "INT",
            Builder::I64(_) => "BIGINT",
            Builder::F32(_) => "REAL",
            Builder::F64(_) => "DOUBLE",
            Builder::Dec(..) => "DECIMAL",
            Builder::Text(_) => "VARCHAR",
            Builder::Bytes(_) => "BYTEA",
            Builder::Date(_) => "DATE",
            Builder::Ts(_) => "TIMESTAMP",
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Dec(b, ..) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Bytes(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Bool(b) => b.len(),
            Builder::I16(b) => b.len(),
            Builder::I32(b) => b.len(),
            Builder::I64(b) => b.len(),
            Builder::F32(b) => b.len(),
            Builder::F64(b) => b.len(),
            Builder::Dec(b, ..) => b.len(),
            Builder::Text(b) => b.len(),
            Builder::Bytes(b) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Ts(b) => b.len(),
        }
    }
}

/// A decimal at `from` scale brought to `to` scale (rounding half away from zero).
pub fn rescale(value: i128, from: i8, to: i8) -> Option<i128> {
    let diff = i32::from(to) - i32::from(from);
    if diff >= 0 {
        value.checked_mul(10i128.checked_pow(diff.unsigned_abs())?)
    } else {
        let div = 10i128.checked_pow(diff.unsigned_abs())?;
        let (q, r) = (value / div, value % div);
        Some(if r.abs() * 2 >= div {
            q + value.signum()
        } else {
            q
        })
    }
}

/// Values that did not fit their column: (row, column, reason).
pub type BadValues = Vec<(usize, String, String)>;

/// Rows being read, column by column, with the rows that did not fit.
pub struct RowsBuilder {
    schema: SchemaRef,
    builders: Vec<Builder>,
    /// (row index, column, reason) of values that did not fit.
    bad: Vec<(usize, String, String)>,
    row: usize,
}

impl RowsBuilder {
    /// A builder for rows of `schema` (canonical types).
    pub fn new(schema: SchemaRef, capacity: usize) -> Result<RowsBuilder> {
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::new(f.data_type(), capacity))
            .collect::<Result<Vec<_>>>()?;
        Ok(RowsBuilder {
            schema,
            builders,
            bad: Vec::new(),
            row: 0,
        })
    }

    /// Appends the value of column `index` of the current row.
    pub fn push(&mut self, index: usize, cell: &Cell<'_>) {
        if let Some(builder) = self.builders.get_mut(index)
            && let Err(reason) = builder.push(cell)
        {
            let column = self
                .schema
                .fields()
                .get(index)
                .map(|f| f.name().clone())
                .unwrap_or_default();
            self.bad.push((self.row, column, reason));
        }
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.row += 1;
        debug_assert!(self.builders.iter().all(|b| b.len() == self.row));
    }

    /// Rows read so far.
    pub fn len(&self) -> usize {
        self.row
    }

    /// Whether no row was read.
    pub fn is_empty(&self) -> bool {
        self.row == 0
    }

    /// All rows read (bad ones included, their bad values null, under an all-nullable
    /// schema), and the bad ones: (row, column, reason).
    pub fn finish(mut self) -> Result<(RecordBatch, BadValues)> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let loose = Arc::new(Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let rows = RecordBatch::try_new_with_options(
            loose,
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(self.row)),
        )?;
        Ok((rows, self.bad))
    }

    /// The rows without the bad ones, under the table's schema (NOT NULL kept).
    pub fn good_rows(
        schema: &SchemaRef,
        all: &RecordBatch,
        bad: &[(usize, String, String)],
    ) -> Result<RecordBatch> {
        let rows = if bad.is_empty() {
            all.clone()
        } else {
            let keep: BooleanArray = (0..all.num_rows())
                .map(|i| Some(!bad.iter().any(|(row, _, _)| *row == i)))
                .collect();
            filter_record_batch(all, &keep)?
        };
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            rows.columns().to_vec(),
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows())),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_schema;

    #[test]
    fn bad_values_mark_their_row_and_good_rows_keep_the_schema() {
        // Proves a value that does not fit is reported with its row and column, and the
        // remaining rows come back under the NOT NULL schema.
        let schema = parse_schema("id BIGINT NOT NULL, amount DECIMAL(5,2), day DATE").unwrap();
        let mut rows = RowsBuilder::new(schema.clone(), 2).unwrap();
        for (id, amount, day) in [
            (Cell::Int(1), Cell::Text("1.5"), Cell::Text("2024-02-29")),
            (Cell::Text("x"), Cell::Decimal(12345678, 0), Cell::Null),
        ] {
            rows.push(0, &id);
            rows.push(1, &amount);
            rows.push(2, &day);
            rows.end_row();
        }
        let (all, bad) = rows.finish().unwrap();
        assert_eq!(all.num_rows(), 2);
        assert_eq!(
            bad.iter().map(|b| (b.0, b.1.as_str())).collect::<Vec<_>>(),
            vec![(1, "id"), (1, "amount")]
        );
        let good = RowsBuilder::good_rows(&schema, &all, &bad).unwrap();
        assert_eq!(good.num_rows(), 1);
        assert_eq!(good.schema(), schema);
        assert_eq!(rescale(12345, 2, 1), Some(1235));
    }
}
