//! The database sink, once for all three systems: configuration, table checks and
//! creation, the buffer, and the commit protocol; a [`Backend`] does the system's own
//! writing.
//!
//! Commit protocol: `BEGIN`; the buffered operations in order (upsert runs, delete runs);
//! the offsets into `sluice_connect_offsets` (exactly-once); `COMMIT`. Any failure rolls
//! back, so the table never holds rows whose offsets are not stored with them. If the
//! buffer had been written ahead (it passed `buffer_rows_max`) and the commit fails, those
//! rows are gone with the transaction: the sink is *poisoned* and refuses to commit until
//! it is opened again, when the runtime resumes from the stored offsets.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;

use super::buffer::OpBuffer;
use super::config::{DbSinkConfig, SinkMode};
use super::dialect::Dialect;
use super::table::TableInfo;
use super::types::{canonical_or_error, cast_strict};
use crate::batch::{Offsets, SinkBatch, SinkOp};
use crate::error::{Error, Result};
use crate::sink::{Sink, SinkContext};

/// What a sink writes and how: resolved at open from the rows' schema and the table.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// The table as configured.
    pub table: String,
    /// The table, quoted.
    pub quoted: String,
    /// The columns written, in the rows' order.
    pub columns: Vec<String>,
    /// The Arrow type each column is written as (the table column's type).
    pub types: Vec<DataType>,
    /// The key columns (upserts match on them; delete rows hold them).
    pub key: Vec<String>,
    /// insert or upsert.
    pub mode: SinkMode,
    /// Whether deletes are applied.
    pub deletes: bool,
    /// The schema of prepared rows (`columns` with `types`, all nullable).
    pub schema: SchemaRef,
    /// The schema of prepared delete keys.
    pub key_schema: SchemaRef,
}

/// A database system's side of the sink.
#[async_trait]
pub trait Backend: Send {
    /// The system's dialect.
    fn dialect(&self) -> Dialect;
    /// The system and its address, for messages (`postgres 127.0.0.1:5432`).
    fn address(&self) -> String;
    /// Connects if not connected (`Error::Unavailable` if the database does not answer).
    async fn connect(&mut self) -> Result<()>;
    /// Whether the connection is usable.
    fn connected(&self) -> bool;
    /// Runs statements without results.
    async fn execute(&mut self, sql: &str) -> Result<()>;
    /// Describes `table` (no columns: it does not exist).
    async fn table_info(&mut self, table: &str) -> Result<TableInfo>;
    /// Reads the offsets stored for (pipeline, sink) by `select` (see
    /// [`Dialect::select_offsets`]).
    async fn read_offsets(&mut self, select: &str, pipeline: &str, sink: &str) -> Result<Offsets>;
    /// Called once the plan is known (create staging tables, prepare statements).
    async fn prepare(&mut self, plan: &WritePlan) -> Result<()>;
    /// Writes rows (prepared to `plan.schema`) inside the open transaction: plain inserts
    /// or upserts per `plan.mode`, the last row winning among equal keys.
    async fn write_rows(&mut self, plan: &WritePlan, rows: &RecordBatch) -> Result<()>;
    /// Deletes the rows with these keys (prepared to `plan.key_schema`).
    async fn delete_rows(&mut self, plan: &WritePlan, keys: &RecordBatch) -> Result<()>;
    /// Rolls the open transaction back, dropping whatever was written in it.
    async fn rollback(&mut self) -> Result<()> {
        self.execute("ROLLBACK").await
    }
}

/// A database sink over a [`Backend`].
pub struct DbSink<B: Backend> {
    name: String,
    config: DbSinkConfig,
    backend: B,
    context: Option<SinkContext>,
    plan: Option<WritePlan>,
    buffer: OpBuffer,
    /// A transaction is open (operations were written ahead).
    in_transaction: bool,
    /// A commit failed after writing ahead: refuse to commit until reopened.
    poisoned: bool,
}

impl<B: Backend> DbSink<B> {
    /// A sink named `name` writing through `backend`.
    pub fn new(name: &str, config: DbSinkConfig, backend: B) -> DbSink<B> {
        let buffer = OpBuffer::new(config.buffer_rows_max);
        DbSink {
            name: name.to_string(),
            config,
            backend,
            context: None,
            plan: None,
            buffer,
            in_transaction: false,
            poisoned: false,
        }
    }

    fn plan(&self) -> Result<&WritePlan> {
        self.plan.as_ref().ok_or_else(|| {
            Error::connector(
                &self.name,
                "the sink was used before open (a bug, please report)",
            )
        })
    }

    async fn build_plan(&mut self, context: &SinkContext) -> Result<WritePlan> {
        let dialect = self.backend.dialect();
        let table = self.config.table.clone();
        let needs_key = self.config.mode == SinkMode::Upsert || self.config.deletes();
        if needs_key && context.key.is_empty() {
            let why = if self.config.mode == SinkMode::Upsert {
                "mode = \"upsert\""
            } else {
                "delete_on_tombstone = true"
            };
            return Err(Error::config(format!(
                "{} sink \"{}\": {why} needs key fields: set `key = [\"id\"]` on the sink, or read a topic whose schema entry names a key",
                dialect.name(),
                self.name
            )));
        }
        if self.config.create_table {
            let mut fields = Vec::new();
            for field in context.schema.fields() {
                let ty = canonical_or_error(field.name(), field.data_type())?;
                fields.push(Field::new(field.name(), ty, field.is_nullable()));
            }
            let key = if self.config.mode == SinkMode::Upsert || self.config.deletes() {
                context.key.clone()
            } else {
                Vec::new()
            };
            let sql = dialect.create_table(&table, &Schema::new(fields), &key)?;
            self.backend.execute(&sql).await?;
        }
        let info = self.backend.table_info(&table).await?;
        let problems = info.sink_problems(&table, &context.schema);
        if !problems.is_empty() {
            return Err(Error::config(format!(
                "{} sink \"{}\": {}",
                dialect.name(),
                self.name,
                problems.join("; ")
            )));
        }
        let mut columns = Vec::new();
        let mut types = Vec::new();
        for field in context.schema.fields() {
            let ty = info
                .column(field.name())
                .and_then(|c| c.arrow.clone())
                .unwrap_or(DataType::Utf8);
            columns.push(field.name().clone());
            types.push(ty);
        }
        let field_of = |name: &String| -> Option<Field> {
            let i = columns.iter().position(|c| c == name)?;
            Some(Field::new(name, types.get(i)?.clone(), true))
        };
        let mut key_fields = Vec::new();
        for k in &context.key {
            match field_of(k) {
                Some(f) => key_fields.push(f),
                None if needs_key => {
                    return Err(Error::config(format!(
                        "key field `{k}` is not a column of the rows written to `{table}`"
                    )));
                }
                None => {}
            }
        }
        let schema = Arc::new(Schema::new(
            columns.iter().filter_map(field_of).collect::<Vec<_>>(),
        ));
        Ok(WritePlan {
            quoted: dialect.quote_table(&table),
            table,
            columns,
            types,
            key: context.key.clone(),
            mode: self.config.mode,
            deletes: self.config.deletes(),
            schema,
            key_schema: Arc::new(Schema::new(key_fields)),
        })
    }

    /// Writes the buffered operations into the open transaction (opening it).
    async fn write_ahead(&mut self) -> Result<()> {
        if !self.in_transaction {
            self.backend.execute("BEGIN").await?;
            self.in_transaction = true;
        }
        let plan = self.plan()?.clone();
        for op in self.buffer.ops() {
            match op {
                SinkOp::Upsert(rows) => {
                    let rows = prepare(&plan.schema, rows)?;
                    self.backend.write_rows(&plan, &rows).await?;
                }
                SinkOp::Delete(keys) if plan.deletes => {
                    let keys = prepare(&plan.key_schema, keys)?;
                    self.backend.delete_rows(&plan, &keys).await?;
                }
                SinkOp::Delete(_) => {}
            }
        }
        Ok(())
    }

    async fn try_commit(&mut self, offsets: &Offsets) -> Result<()> {
        self.write_ahead().await?;
        if self.config.exactly_once
            && let Some(context) = &self.context
            && let Some(sql) = self.backend.dialect().upsert_offsets(
                &self.config.table,
                &context.pipeline,
                &context.sink,
                offsets,
            )
        {
            self.backend.execute(&sql).await?;
        }
        self.backend.execute("COMMIT").await?;
        self.in_transaction = false;
        Ok(())
    }
}

/// Rows with the plan's columns, cast to the table's types.
fn prepare(schema: &SchemaRef, rows: &RecordBatch) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = rows
            .column_by_name(field.name())
            .ok_or_else(|| Error::Data {
                position: format!("column `{}`", field.name()),
                reason: "missing from the rows handed to the sink".into(),
            })?;
        columns.push(cast_strict(field.name(), column, field.data_type())?);
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows())),
    )?)
}

#[async_trait]
impl<B: Backend> Sink for DbSink<B> {
    async fn check(&mut self) -> Vec<String> {
        if let Err(e) = self.backend.connect().await {
            return vec![format!(
                "{} sink \"{}\": cannot connect: {e}",
                self.backend.dialect().name(),
                self.name
            )];
        }
        if self.config.create_table {
            return Vec::new();
        }
        match self.backend.table_info(&self.config.table).await {
            Ok(info) if info.exists() => Vec::new(),
            Ok(_) => vec![format!(
                "{} sink \"{}\": table `{}` does not exist on {}: create it, or set create_table = true",
                self.backend.dialect().name(),
                self.name,
                self.config.table,
                self.backend.address()
            )],
            Err(e) => vec![format!(
                "{} sink \"{}\": {e}",
                self.backend.dialect().name(),
                self.name
            )],
        }
    }

    async fn open(&mut self, context: &SinkContext) -> Result<Option<Offsets>> {
        if self.in_transaction && self.backend.connected() {
            let _ = self.backend.rollback().await;
        }
        self.in_transaction = false;
        self.poisoned = false;
        self.buffer.reset();
        self.backend.connect().await?;
        let plan = self.build_plan(context).await?;
        self.backend.prepare(&plan).await?;
        self.plan = Some(plan);
        self.context = Some(context.clone());
        if !self.config.exactly_once {
            return Ok(None);
        }
        let dialect = self.backend.dialect();
        self.backend
            .execute(&dialect.create_offsets_table(&self.config.table))
            .await?;
        let offsets = self
            .backend
            .read_offsets(
                &dialect.select_offsets(&self.config.table),
                &context.pipeline,
                &context.sink,
            )
            .await?;
        Ok((!offsets.is_empty()).then_some(offsets))
    }

    async fn write(&mut self, batch: SinkBatch) -> Result<()> {
        if self.poisoned {
            return Err(poisoned(&self.name));
        }
        if self.buffer.push(batch.ops) {
            // Bounded: write what is held into the open transaction now.
            self.buffer.spilled = true;
            if let Err(e) = self.write_ahead().await {
                self.poisoned = true;
                return Err(e);
            }
            self.buffer.clear();
        }
        Ok(())
    }

    async fn commit(&mut self, offsets: &Offsets, _closing: bool) -> Result<bool> {
        if self.poisoned {
            return Err(poisoned(&self.name));
        }
        if self.buffer.ops().is_empty()
            && !self.buffer.spilled
            && (offsets.is_empty() || !self.config.exactly_once)
        {
            return Ok(true);
        }
        if !self.backend.connected() && !self.buffer.spilled {
            self.backend.connect().await?;
            if let Some(plan) = self.plan.clone() {
                self.backend.prepare(&plan).await?;
            }
        }
        match self.try_commit(offsets).await {
            Ok(()) => {
                self.buffer.reset();
                Ok(true)
            }
            Err(e) => {
                if self.backend.connected() {
                    let _ = self.backend.rollback().await;
                }
                self.in_transaction = false;
                if self.buffer.spilled {
                    self.poisoned = true;
                    self.buffer.reset();
                    return Err(Error::connector(
                        &self.name,
                        format!(
                            "commit failed after rows were written ahead, and they were rolled back: {e}; reopen the sink to resume from the stored offsets"
                        ),
                    ));
                }
                // Nothing was lost: the buffer is kept, and a retried commit writes it again.
                Err(e)
            }
        }
    }
}

fn poisoned(name: &str) -> Error {
    Error::connector(
        name,
        "an earlier commit failed after writing ahead; the sink must be reopened (the runtime resumes from the stored offsets)",
    )
}
