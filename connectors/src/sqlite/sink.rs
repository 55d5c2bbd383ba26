//! The SQLite sink's backend: prepared `INSERT ... ON CONFLICT DO UPDATE` and `DELETE`
//! statements run row by row inside the commit's transaction (SQLite does this at
//! hundreds of thousands of rows a second: no network between statements).

use std::path::PathBuf;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use rusqlite::types::ValueRef;

use super::{Db, require_path, table_info};
use crate::batch::Offsets;
use crate::config::Settings;
use crate::db::config::DbSinkConfig;
use crate::db::sink::{Backend, DbSink, WritePlan};
use crate::db::table::TableInfo;
use crate::db::types::{format_date, format_decimal, format_timestamp};
use crate::db::values::{Param, param};
use crate::db::{Dialect, SinkMode};
use crate::error::{Error, Result};

/// The `type = "sqlite"` sink.
pub type SqliteSink = DbSink<SqliteBackend>;

/// Builds the sink from its section of the pipeline file.
pub fn build(settings: &Settings) -> Result<SqliteSink> {
    let config: DbSinkConfig = settings.parse()?;
    let path = require_path(settings, &config.url, &config.path)?;
    Ok(DbSink::new(
        &settings.name,
        config,
        SqliteBackend {
            path,
            name: settings.name.clone(),
            db: None,
        },
    ))
}

/// A SQLite database file for a sink.
pub struct SqliteBackend {
    path: PathBuf,
    name: String,
    db: Option<Db>,
}

impl SqliteBackend {
    fn db(&self) -> Result<Db> {
        self.db
            .clone()
            .ok_or_else(|| Error::unavailable(self.address(), "not open"))
    }

    /// Runs `sql` once per row of `rows`, binding the row's columns in order.
    async fn per_row(&self, sql: String, rows: &RecordBatch) -> Result<()> {
        let db = self.db()?;
        let rows = rows.clone();
        let (name, path) = (self.name.clone(), self.path.clone());
        db.run(move |conn| {
            let fail = |e| super::fail(&name, &path, e);
            let mut stmt = conn.prepare_cached(&sql).map_err(fail)?;
            for row in 0..rows.num_rows() {
                for (i, column) in rows.columns().iter().enumerate() {
                    // Text made for dates, timestamps and decimals lives until bound.
                    let text;
                    let value = match param(column.as_ref(), row) {
                        Param::Null => ValueRef::Null,
                        Param::Int(v) => ValueRef::Integer(v),
                        Param::Float(v) => ValueRef::Real(f64::from(v)),
                        Param::Double(v) => ValueRef::Real(v),
                        Param::Text(v) => ValueRef::Text(v.as_bytes()),
                        Param::Bytes(v) => ValueRef::Blob(v),
                        Param::Decimal(v, s) => {
                            text = format_decimal(v, s);
                            ValueRef::Text(text.as_bytes())
                        }
                        Param::Date(d) => {
                            text = format_date(d);
                            ValueRef::Text(text.as_bytes())
                        }
                        Param::Timestamp(t) => {
                            text = format_timestamp(t);
                            ValueRef::Text(text.as_bytes())
                        }
                    };
                    stmt.raw_bind_parameter(i + 1, rusqlite::types::ToSqlOutput::Borrowed(value))
                        .map_err(fail)?;
                }
                stmt.raw_execute().map_err(fail)?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn address(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    async fn connect(&mut self) -> Result<()> {
        if self.db.is_none() {
            self.db = Some(Db::open(&self.path, &self.name).await?);
        }
        Ok(())
    }

    fn connected(&self) -> bool {
        self.db.is_some()
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        let db = self.db()?;
        let sql = sql.to_string();
        let fail = db.clone();
        db.run(move |conn| conn.execute_batch(&sql).map_err(|e| fail.fail(e)))
            .await
    }

    async fn table_info(&mut self, table: &str) -> Result<TableInfo> {
        let db = self.db()?;
        let (table, fail) = (table.to_string(), db.clone());
        db.run(move |conn| table_info(conn, &table).map_err(|e| fail.fail(e)))
            .await
    }

    async fn read_offsets(&mut self, select: &str, pipeline: &str, sink: &str) -> Result<Offsets> {
        let db = self.db()?;
        let (select, pipeline, sink, fail) = (
            select.to_string(),
            pipeline.to_string(),
            sink.to_string(),
            db.clone(),
        );
        db.run(move |conn| {
            let read = || -> rusqlite::Result<Offsets> {
                let mut stmt = conn.prepare(&select)?;
                let rows = stmt.query_map([&pipeline, &sink], |r| {
                    Ok((
                        (r.get::<_, String>(0)?, r.get::<_, i32>(1)?),
                        r.get::<_, i64>(2)?,
                    ))
                })?;
                rows.collect()
            };
            read().map_err(|e| fail.fail(e))
        })
        .await
    }

    async fn prepare(&mut self, _plan: &WritePlan) -> Result<()> {
        Ok(())
    }

    async fn write_rows(&mut self, plan: &WritePlan, rows: &RecordBatch) -> Result<()> {
        let d = Dialect::Sqlite;
        let marks = vec!["?"; plan.columns.len()].join(", ");
        let upsert = if plan.mode == SinkMode::Upsert {
            d.upsert_clause(&plan.key, &plan.columns)
        } else {
            String::new()
        };
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({marks}){upsert}",
            plan.quoted,
            d.column_list(&plan.columns)
        );
        self.per_row(sql, rows).await
    }

    async fn delete_rows(&mut self, plan: &WritePlan, keys: &RecordBatch) -> Result<()> {
        let d = Dialect::Sqlite;
        let matches: Vec<String> = plan
            .key
            .iter()
            .map(|k| format!("{} = ?", d.quote(k)))
            .collect();
        let sql = format!(
            "DELETE FROM {} WHERE {}",
            plan.quoted,
            matches.join(" AND ")
        );
        self.per_row(sql, keys).await
    }
}
