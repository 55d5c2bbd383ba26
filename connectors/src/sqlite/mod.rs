//! The SQLite connectors: `type = "sqlite"` sink and source, over a database file.
//!
//! rusqlite is blocking: every statement runs in `tokio::task::spawn_blocking` on the one
//! connection, behind a mutex. The file is put in WAL mode so a source can read while
//! another process writes. Storage (SQLite has no strict column types): booleans as 0/1,
//! decimals as numbers (NUMERIC affinity: 15 significant digits), dates as
//! `YYYY-MM-DD`, timestamps as `YYYY-MM-DD HH:MM:SS.ffffff` text in UTC, which sorts in
//! time order. The user guide is `docs/connectors/sqlite.md`.

pub mod sink;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::db::Dialect;
use crate::db::table::{Column, TableInfo};
use crate::error::{Error, Result};

pub use sink::SqliteSink;
pub use source::SqliteSource;

/// One SQLite connection shared by a connector's blocking tasks.
#[derive(Clone)]
pub(crate) struct Db {
    path: PathBuf,
    name: String,
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if missing) the database at `path`, in WAL mode.
    pub(crate) async fn open(path: &Path, name: &str) -> Result<Db> {
        let p = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            let conn = Connection::open(&p)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::connector(name, e))?
        .map_err(|e| Error::unavailable(format!("sqlite {}", path.display()), e))?;
        Ok(Db {
            path: path.to_path_buf(),
            name: name.to_string(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection in a blocking task.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| {
                Error::connector(
                    &name,
                    "an earlier statement panicked holding the connection",
                )
            })?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::connector(&self.name, e))?
    }

    /// The error for a failed statement: a locked or busy database is worth retrying.
    pub(crate) fn fail(&self, e: rusqlite::Error) -> Error {
        fail(&self.name, &self.path, e)
    }
}

pub(crate) fn fail(name: &str, path: &Path, e: rusqlite::Error) -> Error {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::DatabaseBusy
                | rusqlite::ErrorCode::DatabaseLocked
                | rusqlite::ErrorCode::DiskFull
        )
    );
    if busy {
        Error::unavailable(format!("sqlite {}", path.display()), e)
    } else {
        Error::connector(name, format!("{e} (database {})", path.display()))
    }
}

/// The columns and primary key of `table` (`schema.table` names an attached database).
pub(crate) fn table_info(conn: &Connection, table: &str) -> rusqlite::Result<TableInfo> {
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (s, n),
        None => ("main", table),
    };
    let mut stmt = conn.prepare(
        "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1, ?2) ORDER BY cid",
    )?;
    let mut columns = Vec::new();
    let mut key: Vec<(i64, String)> = Vec::new();
    let mut rows = stmt.query([name, schema])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let sql_type: String = row.get(1)?;
        let not_null: bool = row.get(2)?;
        let pk: i64 = row.get(3)?;
        if pk > 0 {
            key.push((pk, name.clone()));
        }
        columns.push(Column {
            arrow: Dialect::Sqlite.arrow_type(&sql_type, None, None),
            name,
            sql_type,
            nullable: !not_null && pk == 0,
        });
    }
    key.sort();
    Ok(TableInfo {
        columns,
        primary_key: key.into_iter().map(|(_, k)| k).collect(),
    })
}

/// The `path` key, resolved against the pipeline file, or a problem.
pub(crate) fn require_path(
    settings: &crate::Settings,
    url: &Option<String>,
    path: &Option<String>,
) -> Result<PathBuf> {
    if url.is_some() {
        return Err(settings.error(Some("url"), "sqlite takes `path = \"file.db\"`, not `url`"));
    }
    match path {
        Some(path) => Ok(settings.resolve_path(path)),
        None => Err(settings.error(None, "missing `path = \"file.db\"`")),
    }
}
