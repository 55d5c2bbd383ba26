//! The PostgreSQL sink's backend: binary COPY into the table, or into a temporary staging
//! table for upserts and deletes.
//!
//! The staging table `pg_temp.sluice_stage` has the written columns plus `__sluice_seq`,
//! the row's place in its run, so that among rows with equal keys the last one wins
//! (`DISTINCT ON (key) ... ORDER BY key, __sluice_seq DESC`): ON CONFLICT cannot update a
//! row twice in one statement.
//!
//! Plain inserts stream: the first batch of a transaction opens a binary COPY into the
//! table and later batches go on down the same COPY, so the server loads one batch while
//! the sink decodes the next. The COPY is finished before any other statement (the
//! commit's offsets and `COMMIT`, a delete, an upsert) and abandoned on rollback.

use std::pin::Pin;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use super::copy::{TupleWriter, put_header, put_trailer};
use super::{catalog, classify, connect};
use crate::batch::Offsets;
use crate::config::Settings;
use crate::db::config::{DbSinkConfig, address, require_url};
use crate::db::sink::{Backend, DbSink, WritePlan};
use crate::db::table::TableInfo;
use crate::db::{Dialect, SinkMode};
use crate::error::{Error, Result};

/// The `type = "postgres"` sink.
pub type PostgresSink = DbSink<PostgresBackend>;

/// Bytes of COPY data sent to the server at a time.
const COPY_CHUNK_BYTES: usize = 1 << 20;
/// The staging table (a temporary table, private to the sink's session).
const STAGE: &str = "pg_temp.sluice_stage";

/// Builds the sink from its section of the pipeline file.
pub fn build(settings: &Settings) -> Result<PostgresSink> {
    let config: DbSinkConfig = settings.parse()?;
    let url = require_url(settings, &config.url, &config.path, "postgres")?;
    let backend = PostgresBackend {
        url,
        name: settings.name.clone(),
        client: None,
        streaming: None,
    };
    Ok(DbSink::new(&settings.name, config, backend))
}

/// A PostgreSQL connection for a sink.
pub struct PostgresBackend {
    url: String,
    name: String,
    client: Option<Client>,
    /// The COPY plain inserts are streaming into, left open between batches.
    streaming: Option<Streaming>,
}

/// An open binary COPY (its header sent).
struct Streaming {
    /// The table it loads, quoted.
    target: String,
    sink: Pin<Box<CopyInSink<Bytes>>>,
}

impl PostgresBackend {
    fn client(&self) -> Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::unavailable(self.address(), "not connected"))
    }

    fn fail(&self, e: tokio_postgres::Error) -> Error {
        classify(&self.url, &self.name, e)
    }

    /// Opens a binary COPY into `target (columns)` and sends its header.
    async fn open_copy(&self, target: &str, columns: &str) -> Result<Pin<Box<CopyInSink<Bytes>>>> {
        let sql = format!("COPY {target} ({columns}) FROM STDIN (FORMAT binary)");
        let sink = self
            .client()?
            .copy_in::<_, Bytes>(sql.as_str())
            .await
            .map_err(|e| self.fail(e))?;
        let mut sink = Box::pin(sink);
        let mut header = BytesMut::with_capacity(32);
        put_header(&mut header);
        sink.send(header.freeze()).await.map_err(|e| self.fail(e))?;
        Ok(sink)
    }

    /// Sends `rows` down an open COPY, a chunk at a time.
    async fn send_rows(
        &self,
        sink: &mut Pin<Box<CopyInSink<Bytes>>>,
        rows: &RecordBatch,
        seq: bool,
    ) -> Result<()> {
        let writer = TupleWriter::new(rows, seq.then_some(0))?;
        let mut buf = BytesMut::with_capacity(COPY_CHUNK_BYTES + (64 << 10));
        for row in 0..rows.num_rows() {
            writer.put_row(row, &mut buf);
            if buf.len() >= COPY_CHUNK_BYTES {
                let chunk = buf.split().freeze();
                sink.send(chunk).await.map_err(|e| self.fail(e))?;
                buf.reserve(COPY_CHUNK_BYTES + (64 << 10));
            }
        }
        if !buf.is_empty() {
            sink.send(buf.freeze()).await.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Sends the trailer of a COPY and waits for the server to take it all.
    async fn close_copy(&self, mut sink: Pin<Box<CopyInSink<Bytes>>>) -> Result<()> {
        let mut trailer = BytesMut::with_capacity(2);
        put_trailer(&mut trailer);
        sink.send(trailer.freeze())
            .await
            .map_err(|e| self.fail(e))?;
        sink.as_mut().finish().await.map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// Finishes the streaming COPY, if one is open, so another statement can run.
    async fn finish_streaming(&mut self) -> Result<()> {
        match self.streaming.take() {
            Some(open) => self.close_copy(open.sink).await,
            None => Ok(()),
        }
    }

    /// Loads `rows` into `target (columns)` with one binary COPY of its own.
    async fn copy(
        &mut self,
        target: &str,
        columns: &str,
        rows: &RecordBatch,
        seq: bool,
    ) -> Result<()> {
        self.finish_streaming().await?;
        let mut sink = self.open_copy(target, columns).await?;
        self.send_rows(&mut sink, rows, seq).await?;
        self.close_copy(sink).await
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn address(&self) -> String {
        format!("postgres {}", address(&self.url))
    }

    async fn connect(&mut self) -> Result<()> {
        if !self.connected() {
            self.streaming = None;
            self.client = Some(connect(&self.url, &format!("sluice/{}", self.name)).await?);
        }
        Ok(())
    }

    fn connected(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.finish_streaming().await?;
        self.client()?
            .batch_execute(sql)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn rollback(&mut self) -> Result<()> {
        // Dropping an unfinished COPY fails it on the server, which is what is wanted.
        self.streaming = None;
        self.execute("ROLLBACK").await
    }

    async fn table_info(&mut self, table: &str) -> Result<TableInfo> {
        self.finish_streaming().await?;
        catalog::table_info(self.client()?, table)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn read_offsets(&mut self, select: &str, pipeline: &str, sink: &str) -> Result<Offsets> {
        self.finish_streaming().await?;
        let rows = self
            .client()?
            .query(select, &[&pipeline, &sink])
            .await
            .map_err(|e| self.fail(e))?;
        let mut offsets = Offsets::new();
        for row in rows {
            let topic: String = row.try_get(0).map_err(|e| self.fail(e))?;
            let partition: i32 = row.try_get(1).map_err(|e| self.fail(e))?;
            let next: i64 = row.try_get(2).map_err(|e| self.fail(e))?;
            offsets.insert((topic, partition), next);
        }
        Ok(offsets)
    }

    async fn prepare(&mut self, plan: &WritePlan) -> Result<()> {
        if plan.mode == SinkMode::Upsert || plan.deletes {
            let sql = format!(
                "DROP TABLE IF EXISTS {STAGE}; \
                 CREATE TEMP TABLE sluice_stage AS SELECT {}, 0::bigint AS __sluice_seq FROM {} WITH NO DATA",
                Dialect::Postgres.column_list(&plan.columns),
                plan.quoted
            );
            self.execute(&sql).await?;
        }
        Ok(())
    }

    async fn write_rows(&mut self, plan: &WritePlan, rows: &RecordBatch) -> Result<()> {
        let d = Dialect::Postgres;
        let columns = d.column_list(&plan.columns);
        if plan.mode == SinkMode::Insert {
            if self
                .streaming
                .as_ref()
                .is_some_and(|open| open.target != plan.quoted)
            {
                self.finish_streaming().await?;
            }
            let mut open = match self.streaming.take() {
                Some(open) => open,
                None => Streaming {
                    target: plan.quoted.clone(),
                    sink: self.open_copy(&plan.quoted, &columns).await?,
                },
            };
            self.send_rows(&mut open.sink, rows, false).await?;
            self.streaming = Some(open);
            return Ok(());
        }
        self.execute(&format!("TRUNCATE {STAGE}")).await?;
        self.copy(STAGE, &format!("{columns}, __sluice_seq"), rows, true)
            .await?;
        let key = d.column_list(&plan.key);
        let sql = format!(
            "INSERT INTO {} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {STAGE} \
             ORDER BY {key}, __sluice_seq DESC{}",
            plan.quoted,
            d.upsert_clause(&plan.key, &plan.columns)
        );
        self.execute(&sql).await
    }

    async fn delete_rows(&mut self, plan: &WritePlan, keys: &RecordBatch) -> Result<()> {
        let d = Dialect::Postgres;
        self.execute(&format!("TRUNCATE {STAGE}")).await?;
        self.copy(STAGE, &d.column_list(&plan.key), keys, false)
            .await?;
        let matches: Vec<String> = plan
            .key
            .iter()
            .map(|k| format!("t.{0} = s.{0}", d.quote(k)))
            .collect();
        let sql = format!(
            "DELETE FROM {} t USING {STAGE} s WHERE {}",
            plan.quoted,
            matches.join(" AND ")
        );
        self.execute(&sql).await
    }
}
