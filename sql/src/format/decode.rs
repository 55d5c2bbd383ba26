//! Records to Arrow: [`RowsBuilder`] decodes each record's value by the table's format into
//! the declared columns, fills the metadata columns, applies `on_error`, and hands out
//! `RecordBatch`es of the scan's projection of the table's schema.
//!
//! Only the projected columns are built. A declared column the query does not read is
//! still converted (without keeping its text) when `on_error` is `fail` or `skip`, so
//! whether a record fails or is skipped never depends on the columns a query selects
//! (`count(*)` counts the same rows as `SELECT *`); with `null`, where every record gives a
//! row, it is skipped unparsed.
//!
//! Invariant: a record is added to all columns or to none (its fields are converted first,
//! then appended), so a skipped or failed record never leaves a column one row longer.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, ListArray, StringBuilder, StructArray,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{Field as ArrowField, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sluice_core::record::RecordRef;

use super::cell::{Cell, Field};
use super::csv;
use super::json::{self, Want};
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

    /// Appends a field; `text` is the buffer its [`Field::Text`] range points into.
    /// Fields come from conversions for this column's type, so one of another type is a
    /// bug here; it is appended as NULL rather than panicking.
    fn append(&mut self, field: &Field, text: &str) {
        let cell = match field {
            Field::Cell(cell) => cell,
            Field::Text(range) => {
                let text = text.get(range.clone());
                match (self, text) {
                    (Self::Text(b), Some(v)) => b.append_value(v),
                    (Self::Bytes(b), Some(v)) => b.append_value(v),
                    (builder, _) => builder.append_null(),
                }
                return;
            }
            Field::Checked | Field::Bad(_) => return self.append_null(),
        };
        match (self, cell) {
            (Self::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Self::I8(b), Cell::I8(v)) => b.append_value(*v),
            (Self::I16(b), Cell::I16(v)) => b.append_value(*v),
            (Self::I32(b), Cell::I32(v)) => b.append_value(*v),
            (Self::I64(b), Cell::I64(v)) => b.append_value(*v),
            (Self::F32(b), Cell::F32(v)) => b.append_value(*v),
            (Self::F64(b), Cell::F64(v)) => b.append_value(*v),
            (Self::Text(b), Cell::Text(v)) => b.append_value(v),
            (Self::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (Self::Date(b), Cell::Date(v)) => b.append_value(*v),
            (Self::Timestamp(b), Cell::TimestampMs(v)) => b.append_value(*v),
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

/// The `_headers` column's builders: a list of `{key, value}` structs per row.
struct HeadersBuilder {
    keys: StringBuilder,
    values: BinaryBuilder,
    /// Headers of each row since the last finish.
    counts: Vec<usize>,
}

/// Builders of the metadata columns the query reads (`None`: not read).
#[derive(Default)]
struct MetadataBuilders {
    key: Option<KeyBuilder>,
    partition: Option<Int32Builder>,
    offset: Option<Int64Builder>,
    timestamp: Option<TimestampMillisecondBuilder>,
    headers: Option<HeadersBuilder>,
}

/// Why a record's value did not give a row.
enum Mismatch {
    /// The value as a whole could not be parsed (every declared column is affected).
    Record(String),
    /// One column's field did not convert: (column index, reason).
    Field(usize, String),
}

/// Decodes records of one partition of one table into batches of a projection of its
/// schema.
pub(crate) struct RowsBuilder {
    table: Arc<TableDef>,
    /// The parsed schema of an `avro` table.
    avro: Option<apache_avro::Schema>,
    /// The projected schema of the batches handed out.
    schema: SchemaRef,
    /// Indices into the table's full schema (declared columns, then metadata), in the
    /// order of `schema`.
    projection: Vec<usize>,
    /// What the scan needs of each declared column.
    wants: Vec<Want>,
    /// How each declared column's name shows as a JSON key (`json` tables).
    keys: Vec<Option<json::KeyPattern>>,
    /// A builder per declared column the query reads (`None`: not read).
    columns: Vec<Option<ColumnBuilder>>,
    metadata: MetadataBuilders,
    /// Nothing to decode: no declared column is read and `on_error = 'null'` keeps every
    /// record, so a record's value cannot change the answer.
    values_unused: bool,
    /// Whether a declared column is NOT NULL (else `judge` has no NULLs to look for).
    checks_not_null: bool,
    /// The current record's field per declared column, reused between records.
    fields: Vec<Field>,
    /// Text of the current record's [`Field::Text`]s, reused between records.
    text: String,
    rows: usize,
}

impl RowsBuilder {
    /// A builder of `projection` (indices into the table's full schema; `None`: all of it).
    pub(crate) fn new(table: Arc<TableDef>, projection: Option<&[usize]>) -> Result<Self> {
        let avro = match (&table.format, &table.schema) {
            (Format::Avro, Some(text)) => Some(super::avro::parse_schema(text).map_err(
                |reason| Error::InvalidTable {
                    table: table.name.clone(),
                    reason,
                },
            )?),
            _ => None,
        };
        let full = table.schema();
        let projection: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..full.fields().len()).collect(),
        };
        let schema = Arc::new(
            full.project(&projection)
                .map_err(|e| Error::from(datafusion::error::DataFusionError::from(e)))?,
        );
        let declared = table.columns.len();
        let read = |i: usize| projection.contains(&i);
        let wants = (0..declared)
            .map(|i| match (read(i), table.on_error) {
                (true, _) => Want::Value,
                (false, OnError::Null) => Want::Skip,
                (false, OnError::Fail | OnError::Skip) => Want::Check,
            })
            .collect::<Vec<_>>();
        let columns = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| read(i).then(|| ColumnBuilder::new(c.ty)))
            .collect();
        let metadata = MetadataBuilders {
            key: read(declared).then(|| match table.key_format {
                KeyFormat::String => KeyBuilder::Text(StringBuilder::new()),
                KeyFormat::Bytes => KeyBuilder::Bytes(BinaryBuilder::new()),
            }),
            partition: read(declared + 1).then(Int32Builder::new),
            offset: read(declared + 2).then(Int64Builder::new),
            timestamp: read(declared + 3).then(TimestampMillisecondBuilder::new),
            headers: read(declared + 4).then(|| HeadersBuilder {
                keys: StringBuilder::new(),
                values: BinaryBuilder::new(),
                counts: Vec::new(),
            }),
        };
        Ok(Self {
            avro,
            schema,
            projection,
            values_unused: wants.iter().all(|w| *w == Want::Skip),
            checks_not_null: table.columns.iter().any(|c| !c.nullable),
            keys: json::key_patterns(&table.columns),
            wants,
            columns,
            metadata,
            fields: Vec::with_capacity(declared),
            text: String::new(),
            table,
            rows: 0,
        })
    }

    /// Rows added since the last [`finish`](Self::finish).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Adds one record as a row, or skips it, or fails, as the table's `on_error` says.
    /// Returns whether a row was added.
    pub(crate) fn push(&mut self, partition: i32, record: &RecordRef<'_>) -> Result<bool> {
        let on_error = self.table.on_error;
        match self.convert(record.value) {
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
                        self.fields.clear();
                        self.fields.resize(self.table.columns.len(), Field::NULL);
                    }
                    // `judge` turned the bad fields into NULLs in null mode.
                    Mismatch::Field(..) => {}
                },
            },
        }
        for (builder, field) in self.columns.iter_mut().zip(&self.fields) {
            if let Some(builder) = builder {
                builder.append(field, &self.text);
            }
        }
        self.push_metadata(partition, record);
        self.rows += 1;
        Ok(true)
    }

    /// Converts the value into `self.fields` (one per declared column), then judges them.
    fn convert(&mut self, value: Option<&[u8]>) -> Result<(), Mismatch> {
        // Borrowed, not an `Arc` clone: every scan thread shares this `Arc`, and an atomic
        // count on one cache line per record cost more than decoding a field.
        let table = &*self.table;
        let Some(value) = value.filter(|_| !self.values_unused) else {
            // A tombstone (no value: every declared column is NULL), or a value nothing
            // needs.
            self.fields.clear();
            self.fields.resize(table.columns.len(), Field::NULL);
            return self.judge();
        };
        if table.format != Format::Json {
            // The JSON reader resets the fields itself; the others push one per column.
            self.fields.clear();
        }
        let wanted = |i: usize| self.wants.get(i).is_some_and(|w| *w != Want::Skip);
        match table.format {
            Format::Json => {
                json::read_object(
                    value,
                    &table.columns,
                    &self.keys,
                    &self.wants,
                    &mut self.fields,
                    &mut self.text,
                )
                .map_err(|e| match e {
                    json::NotAnObject::NotJson(e) => {
                        Mismatch::Record(format!("value is not JSON: {e}"))
                    }
                    json::NotAnObject::NotObject => {
                        Mismatch::Record("value is not a JSON object".into())
                    }
                })?;
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
                    self.fields
                        .push(if !wanted(i) || (field.text.is_empty() && !field.quoted) {
                            Field::NULL
                        } else {
                            Cell::from_text(column.ty, &field.text).into()
                        });
                }
            }
            Format::Avro => {
                let schema = self
                    .avro
                    .as_ref()
                    .ok_or_else(|| Mismatch::Record("the table has no Avro schema".into()))?;
                let fields = super::avro::decode(schema, value).map_err(Mismatch::Record)?;
                for (i, column) in table.columns.iter().enumerate() {
                    let field = fields.iter().find(|(name, _)| *name == column.name);
                    self.fields.push(match field {
                        Some((_, field)) if wanted(i) => super::avro::cell(column.ty, field).into(),
                        _ => Field::NULL,
                    });
                }
            }
            Format::Raw => {
                let converted = match table.columns.first().map(|c| c.ty) {
                    Some(ColumnType::Bytea) => Ok(Cell::Bytes(value.to_vec())),
                    _ => std::str::from_utf8(value)
                        .map(|s| Cell::Text(s.to_string()))
                        .map_err(|_| "expected VARCHAR, found bytes that are not UTF-8".into()),
                };
                self.fields.push(converted.into());
            }
        }
        self.judge()
    }

    /// The record's verdict from its fields: the first field (in column order) that did
    /// not convert, else the first NULL in a NOT NULL column. In `null` mode every bad
    /// field is made NULL first (the record is kept whatever the verdict).
    fn judge(&mut self) -> Result<(), Mismatch> {
        let keep_going = self.table.on_error == OnError::Null;
        let mut first = None;
        for (i, field) in self.fields.iter_mut().enumerate() {
            if let Field::Bad(_) = field {
                let Field::Bad(reason) = std::mem::replace(field, Field::NULL) else {
                    continue;
                };
                first.get_or_insert(Mismatch::Field(i, reason));
                if !keep_going {
                    break;
                }
            }
        }
        if let Some(mismatch) = first {
            return Err(mismatch);
        }
        if !self.checks_not_null {
            return Ok(());
        }
        for (i, (column, field)) in self.table.columns.iter().zip(&self.fields).enumerate() {
            // A skipped column reads as NULL without having been looked at.
            let skipped = self.wants.get(i) == Some(&Want::Skip);
            if !column.nullable && !skipped && field.is_null() {
                return Err(Mismatch::Field(i, "NULL in a NOT NULL column".into()));
            }
        }
        Ok(())
    }

    fn push_metadata(&mut self, partition: i32, record: &RecordRef<'_>) {
        let m = &mut self.metadata;
        match (&mut m.key, record.key) {
            (None, _) => {}
            (Some(KeyBuilder::Text(b)), Some(k)) => b.append_value(String::from_utf8_lossy(k)),
            (Some(KeyBuilder::Text(b)), None) => b.append_null(),
            (Some(KeyBuilder::Bytes(b)), Some(k)) => b.append_value(k),
            (Some(KeyBuilder::Bytes(b)), None) => b.append_null(),
        }
        if let Some(b) = &mut m.partition {
            b.append_value(partition);
        }
        if let Some(b) = &mut m.offset {
            b.append_value(record.offset);
        }
        if let Some(b) = &mut m.timestamp {
            b.append_value(record.timestamp);
        }
        if let Some(h) = &mut m.headers {
            for header in &record.headers {
                h.keys.append_value(&header.key);
                h.values.append_option(header.value.as_deref());
            }
            h.counts.push(record.headers.len());
        }
    }

    /// The rows added so far as a batch of the projected schema; the builder starts over.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let df = datafusion::error::DataFusionError::from;
        // Every column of the full schema, `None` where the query does not read it.
        let mut full: Vec<Option<ArrayRef>> = self
            .columns
            .iter_mut()
            .map(|c| c.as_mut().map(ColumnBuilder::finish))
            .collect();
        let m = &mut self.metadata;
        full.push(m.key.as_mut().map(|key| -> ArrayRef {
            match key {
                KeyBuilder::Text(b) => Arc::new(b.finish()),
                KeyBuilder::Bytes(b) => Arc::new(b.finish()),
            }
        }));
        full.push(
            m.partition
                .as_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        full.push(m.offset.as_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        full.push(
            m.timestamp
                .as_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        full.push(match &mut m.headers {
            None => None,
            Some(h) => {
                let headers = StructArray::try_new(
                    header_fields(),
                    vec![Arc::new(h.keys.finish()), Arc::new(h.values.finish())],
                    None,
                )
                .map_err(df)?;
                let offsets = OffsetBuffer::from_lengths(h.counts.drain(..));
                let item = Arc::new(ArrowField::new("item", headers.data_type().clone(), true));
                let list =
                    ListArray::try_new(item, offsets, Arc::new(headers), None).map_err(df)?;
                Some(Arc::new(list) as ArrayRef)
            }
        });
        let arrays = self
            .projection
            .iter()
            .map(|&i| {
                full.get(i).cloned().flatten().ok_or_else(|| {
                    Error::from(datafusion::error::DataFusionError::Internal(format!(
                        "column {i} of table {} was projected but not built",
                        self.table.name
                    )))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The row count says how many rows a batch of no columns (`count(*)`) has.
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), arrays, &options)
            .map_err(|e| df(e).into())
    }
}
