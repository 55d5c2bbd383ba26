//! The SQLite source's backend: runs each page's query in a blocking task.

use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use rusqlite::types::ValueRef;

use super::{Db, require_path, table_info};
use crate::config::Settings;
use crate::db::Dialect;
use crate::db::cells::{Cell, RowsBuilder};
use crate::db::config::DbSourceConfig;
use crate::db::incremental::Fetch;
use crate::db::source::{DbSource, SourceBackend};
use crate::db::table::TableInfo;
use crate::error::{Error, Result};

/// The `type = "sqlite"` source.
pub type SqliteSource = DbSource<SqliteReader>;

/// Builds the source from its section of the pipeline file.
pub fn build(settings: &Settings) -> Result<SqliteSource> {
    let config: DbSourceConfig = settings.parse()?;
    let path = require_path(settings, &config.url, &config.path)?;
    Ok(DbSource::new(
        &settings.name,
        config,
        SqliteReader {
            path,
            name: settings.name.clone(),
            db: None,
        },
    ))
}

/// A SQLite database file for a source.
pub struct SqliteReader {
    path: PathBuf,
    name: String,
    db: Option<Db>,
}

impl SqliteReader {
    fn db(&self) -> Result<Db> {
        self.db.clone().ok_or_else(|| {
            Error::unavailable(format!("sqlite {}", self.path.display()), "not open")
        })
    }
}

#[async_trait]
impl Fetch for SqliteReader {
    async fn fetch(
        &mut self,
        sql: &str,
        schema: &SchemaRef,
    ) -> Result<(RecordBatch, crate::db::cells::BadValues)> {
        let db = self.db()?;
        let (sql, schema, fail) = (sql.to_string(), schema.clone(), db.clone());
        db.run(move |conn| {
            let mut builder = RowsBuilder::new(schema, 1024)?;
            let mut read = || -> rusqlite::Result<()> {
                let mut stmt = conn.prepare_cached(&sql)?;
                let n = stmt.column_count();
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    for i in 0..n {
                        let cell = match row.get_ref(i)? {
                            ValueRef::Null => Cell::Null,
                            ValueRef::Integer(v) => Cell::Int(v),
                            ValueRef::Real(v) => Cell::Float(v),
                            ValueRef::Text(t) => {
                                std::str::from_utf8(t).map_or(Cell::Bytes(t), Cell::Text)
                            }
                            ValueRef::Blob(b) => Cell::Bytes(b),
                        };
                        builder.push(i, &cell);
                    }
                    builder.end_row();
                }
                Ok(())
            };
            read().map_err(|e| fail.fail(e))?;
            builder.finish()
        })
        .await
    }
}

#[async_trait]
impl SourceBackend for SqliteReader {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn connect(&mut self) -> Result<()> {
        if self.db.is_none() {
            if !self.path.exists() {
                return Err(Error::unavailable(
                    format!("sqlite {}", self.path.display()),
                    "the database file does not exist",
                ));
            }
            self.db = Some(Db::open(&self.path, &self.name).await?);
        }
        Ok(())
    }

    async fn table_info(&mut self, table: &str) -> Result<TableInfo> {
        let db = self.db()?;
        let (table, fail) = (table.to_string(), db.clone());
        db.run(move |conn| table_info(conn, &table).map_err(|e| fail.fail(e)))
            .await
    }
}
