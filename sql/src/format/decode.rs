//! Records to Arrow: [`RowsBuilder`] decodes each record's value by the table's format into
//! the declared columns, fills the metadata columns, applies `on_error`, and hands out
//! `RecordBatch`es of the table's schema.
//!
//! Invariant: a record is added to all columns or to none (its cells are converted first,
//! then appended), so a skipped or failed record never leaves a column one row longer.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, ListArray, StringBuilder, StructArray,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use sluice_core::record::Record;

use super::cell::Cell;
use super::{csv, json};
use crate::catalog::table::header_fields;
use crate::catalog::{ColumnType, Format, KeyFormat, OnError, TableDef};
use crate::{Error, Result};

/// An Arrow builder for one declared column.
enum ColumnBuilder {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMillisecondBuilder),
}

impl ColumnBuilder {
    fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::Boolean => Self::Bool(BooleanBuilder::new()),
            ColumnType::TinyInt => Self::I8(Int8Builder::new()),
            ColumnType::SmallInt => Self::I16(Int16Builder::new()),
            ColumnType::Int => Self::I32(Int32Builder::new()),
            ColumnType::BigInt => Self::I64(Int64Builder::new()),
            ColumnType::Real => Self::F32(Float32Builder::new()),
            ColumnType::Double => Self::F64(Float64Builder::new()),
            ColumnType::Varchar => Self::Text(StringBuilder::new()),
            ColumnType::Bytea => Self::Bytes(BinaryBuilder::new()),
            ColumnType::Date => Self::Date(Date32Builder::new()),
            ColumnType::Timestamp => Self::Timestamp(TimestampMillisecondBuilder::new()),
        }
    }

    /// Appends a cell. Cells come from `Cell::from_*` for this column's type, so a cell of
    /// another type is a bug here; it is appended as NULL rather than panicking.
    fn append(&mut self, cell: Cell) {
        match (self, cell) {
            (Self::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Self::I8(b), Cell::I8(v)) => b.append_value(v),
            (Self::I16(b), Cell::I16(v)) => b.append_value(v),
            (Self::I32(b), Cell::I32(v)) => b.append_value(v),
            (Self::I64(b), Cell::I64(v)) => b.append_value(v),
            (Self::F32(b), Cell::F32(v)) => b.append_value(v),
            (Self::F64(b), Cell::F64(v)) => b.append_value(v),
            (Self::Text(b), Cell::Text(v)) => b.append_value(v),
            (Self::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (Self::Date(b), Cell::Date(v)) => b.append_value(v),
            (Self::Timestamp(b), Cell::TimestampMs(v)) => b.append_value(v),
            (builder, _) => builder.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::I8(b) => b.append_null(),
            Self::I16(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Bytes(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::I8(b) => Arc::new(b.finish()),
            Self::I16(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// The key column's builder, by `key_format`.
enum KeyBuilder {
    Text(StringBuilder),
    Bytes(BinaryBuilder),
}

/// Why a record's value did not give a row.
enum Mismatch {
    /// The value as a whole could not be parsed (every declared column is affected).
    Record(String),
    /// One column's field did not convert: (column index, reason).
    Field(usize, String),
}

/// Decodes records of one partition of one table into batches of its schema.
pub(crate) struct RowsBuilder {
    table: Arc<TableDef>,
    /// The parsed schema of an `avro` table.
    avro: Option<apache_avro::Schema>,
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    /// The current record's converted cells, reused between records.
    cells: Vec<Cell>,
    /// A `json` record's field per declared column, reused between records.
    json_fields: Vec<Option<serde_json::Value>>,
    key: KeyBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMillisecondBuilder,
    header_keys: StringBuilder,
    header_values: BinaryBuilder,
    header_counts: Vec<usize>,
    rows: usize,
}

impl RowsBuilder {
    /// A builder for `table`'s full schema.
    pub(crate) fn new(table: Arc<TableDef>) -> Result<Self> {
        let avro = match (&table.format, &table.schema) {
            (Format::Avro, Some(text)) => Some(super::avro::parse_schema(text).map_err(
                |reason| Error::InvalidTable {
                    table: table.name.clone(),
                    reason,
                },
            )?),
            _ => None,
        };
        let key = match table.key_format {
            KeyFormat::String => KeyBuilder::Text(StringBuilder::new()),
            KeyFormat::Bytes => KeyBuilder::Bytes(BinaryBuilder::new()),
        };
        Ok(Self {
            avro,
            schema: table.schema(),
            columns: table
                .columns
                .iter()
                .map(|c| ColumnBuilder::new(c.ty))
                .collect(),
            cells: Vec::with_capacity(table.columns.len()),
            json_fields: Vec::new(),
            table,
            key,
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMillisecondBuilder::new(),
            header_keys: StringBuilder::new(),
            header_values: BinaryBuilder::new(),
            header_counts: Vec::new(),
            rows: 0,
        })
    }

    /// Rows added since the last [`finish`](Self::finish).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Adds one record as a row, or skips it, or fails, as the table's `on_error` says.
    /// Returns whether a row was added.
    pub(crate) fn push(&mut self, partition: i32, record: &Record) -> Result<bool> {
        self.cells.clear();
        let on_error = self.table.on_error;
        match self.convert(record.value.as_deref()) {
            Ok(()) => {}
            Err(mismatch) => match on_error {
                OnError::Skip => return Ok(false),
                OnError::Fail => {
                    let reason = match mismatch {
                        Mismatch::Record(reason) => reason,
                        Mismatch::Field(i, reason) => {
                            let name = self.table.columns.get(i).map_or("?", |c| c.name.as_str());
                            format!("column {name}: {reason}")
                        }
                    };
                    return Err(Error::BadRecord {
                        table: self.table.name.clone(),
                        topic: self.table.topic.clone(),
                        partition,
                        offset: record.offset,
                        reason,
                    });
                }
                OnError::Null => match mismatch {
                    Mismatch::Record(_) => {
                        self.cells.clear();
                        self.cells.resize(self.table.columns.len(), Cell::Null);
                    }
                    // `convert` keeps going past bad fields in null mode: they are NULL.
                    Mismatch::Field(..) => {}
                },
            },
        }
        for (builder, cell) in self.columns.iter_mut().zip(self.cells.drain(..)) {
            builder.append(cell);
        }
        self.push_metadata(partition, record);
        self.rows += 1;
        Ok(true)
    }

    /// Converts the value into `self.cells` (one per declared column). In `null` mode a
    /// field that does not convert becomes NULL and the first such mismatch is returned
    /// after every cell is filled; otherwise the first mismatch returns at once.
    fn convert(&mut self, value: Option<&[u8]>) -> Result<(), Mismatch> {
        let table = Arc::clone(&self.table);
        let keep_going = table.on_error == OnError::Null;
        let Some(value) = value else {
            // A tombstone: no value, so every declared column is NULL.
            self.cells.resize(table.columns.len(), Cell::Null);
            return self.check_not_null();
        };
        let mut first: Option<Mismatch> = None;
        let mut put =
            |cells: &mut Vec<Cell>, i: usize, converted: Result<Cell, String>| match converted {
                Ok(cell) => {
                    cells.push(cell);
                    true
                }
                Err(reason) => {
                    cells.push(Cell::Null);
                    first.get_or_insert(Mismatch::Field(i, reason));
                    keep_going
                }
            };
        match table.format {
            Format::Json => {
                let mut fields = std::mem::take(&mut self.json_fields);
                let read = json::read_object(value, &table.columns, &mut fields);
                let read = read.map_err(|e| match e {
                    json::NotAnObject::NotJson(e) => {
                        Mismatch::Record(format!("value is not JSON: {e}"))
                    }
                    json::NotAnObject::NotObject => {
                        Mismatch::Record("value is not a JSON object".into())
                    }
                });
                if let Err(e) = read {
                    self.json_fields = fields;
                    return Err(e);
                }
                for (i, (column, field)) in table.columns.iter().zip(&fields).enumerate() {
                    let converted = match field {
                        None => Ok(Cell::Null),
                        Some(field) => Cell::from_json(column.ty, field),
                    };
                    if !put(&mut self.cells, i, converted) {
                        break;
                    }
                }
                self.json_fields = fields;
            }
            Format::Csv => {
                let text = std::str::from_utf8(value)
                    .map_err(|_| Mismatch::Record("value is not UTF-8 text".into()))?;
                let fields = csv::parse_line(text)
                    .map_err(|e| Mismatch::Record(format!("value is not a CSV line: {e}")))?;
                if fields.len() != table.columns.len() {
                    return Err(Mismatch::Record(format!(
                        "expected {} CSV fields, found {}",
                        table.columns.len(),
                        fields.len()
                    )));
                }
                for (i, (column, field)) in table.columns.iter().zip(&fields).enumerate() {
                    let converted = if field.text.is_empty() && !field.quoted {
                        Ok(Cell::Null)
                    } else {
                        Cell::from_text(column.ty, &field.text)
                    };
                    if !put(&mut self.cells, i, converted) {
                        break;
                    }
                }
            }
            Format::Avro => {
                let schema = self
                    .avro
                    .as_ref()
                    .ok_or_else(|| Mismatch::Record("the table has no Avro schema".into()))?;
                let fields = super::avro::decode(schema, value).map_err(Mismatch::Record)?;
                for (i, column) in table.columns.iter().enumerate() {
                    let converted = match fields.iter().find(|(name, _)| *name == column.name) {
                        None => Ok(Cell::Null),
                        Some((_, field)) => super::avro::cell(column.ty, field),
                    };
                    if !put(&mut self.cells, i, converted) {
                        break;
                    }
                }
            }
            Format::Raw => {
                let converted = match table.columns.first().map(|c| c.ty) {
                    Some(ColumnType::Bytea) => Ok(Cell::Bytes(value.to_vec())),
                    _ => std::str::from_utf8(value)
                        .map(|s| Cell::Text(s.to_string()))
                        .map_err(|_| "expected VARCHAR, found bytes that are not UTF-8".into()),
                };
                put(&mut self.cells, 0, converted);
            }
        }
        match first {
            Some(mismatch) => Err(mismatch),
            None => self.check_not_null(),
        }
    }

    fn check_not_null(&self) -> Result<(), Mismatch> {
        for (i, (column, cell)) in self.table.columns.iter().zip(&self.cells).enumerate() {
            if !column.nullable && *cell == Cell::Null {
                return Err(Mismatch::Field(i, "NULL in a NOT NULL column".into()));
            }
        }
        Ok(())
    }

    fn push_metadata(&mut self, partition: i32, record: &Record) {
        match (&mut self.key, &record.key) {
            (KeyBuilder::Text(b), Some(k)) => b.append_value(String::from_utf8_lossy(k)),
            (KeyBuilder::Text(b), None) => b.append_null(),
            (KeyBuilder::Bytes(b), Some(k)) => b.append_value(k),
            (KeyBuilder::Bytes(b), None) => b.append_null(),
        }
        self.partition.append_value(partition);
        self.offset.append_value(record.offset);
        self.timestamp.append_value(record.timestamp);
        for header in &record.headers {
            self.header_keys.append_value(&header.key);
            self.header_values.append_option(header.value.as_deref());
        }
        self.header_counts.push(record.headers.len());
    }

    /// The rows added so far as a batch of the table's schema; the builder starts over.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let mut arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish()).collect();
        arrays.push(match &mut self.key {
            KeyBuilder::Text(b) => Arc::new(b.finish()),
            KeyBuilder::Bytes(b) => Arc::new(b.finish()),
        });
        arrays.push(Arc::new(self.partition.finish()));
        arrays.push(Arc::new(self.offset.finish()));
        arrays.push(Arc::new(self.timestamp.finish()));
        let headers = StructArray::try_new(
            header_fields(),
            vec![
                Arc::new(self.header_keys.finish()),
                Arc::new(self.header_values.finish()),
            ],
            None,
        )
        .map_err(datafusion::error::DataFusionError::from)?;
        let offsets = OffsetBuffer::from_lengths(self.header_counts.drain(..));
        let item = Arc::new(Field::new("item", headers.data_type().clone(), true));
        let list = ListArray::try_new(item, offsets, Arc::new(headers), None)
            .map_err(datafusion::error::DataFusionError::from)?;
        arrays.push(Arc::new(list));
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| datafusion::error::DataFusionError::from(e).into())
    }
}
