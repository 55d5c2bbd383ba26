//! The MySQL / MariaDB connectors: `type = "mysql"` sink and source.
//!
//! - [`sink`]: multi-row `INSERT ... ON DUPLICATE KEY UPDATE` with bound parameters (at
//!   most 65,535 placeholders a statement, MySQL's limit), `DELETE ... WHERE key IN (...)`.
//! - [`source`]: reads pages per the source mode through the binary protocol.
//!
//! Sessions run with `time_zone = '+00:00'`: DATETIME and TIMESTAMP values are UTC.
//! The user guide is `docs/connectors/mysql.md`.

pub mod sink;
pub mod source;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::db::Dialect;
use crate::db::config::address;
use crate::db::table::{Column, TableInfo};
use crate::error::{Error, Result};

pub use sink::MysqlSink;
pub use source::MysqlSource;

/// The most placeholders one statement may hold.
pub const PLACEHOLDERS_MAX: usize = 65_535;

/// Connects to `url`, UTC session.
pub(crate) async fn connect(url: &str, name: &str) -> Result<Conn> {
    let opts =
        Opts::from_url(url).map_err(|e| Error::config(format!("mysql url is not valid: {e}")))?;
    let mut conn = Conn::new(opts)
        .await
        .map_err(|e| Error::unavailable(format!("mysql {}", address(url)), e))?;
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .map_err(|e| classify(url, name, e))?;
    Ok(conn)
}

/// An error by whose fault it is: the connection, a lock timeout or a deadlock are worth
/// retrying; a rejected statement is not.
pub(crate) fn classify(url: &str, name: &str, e: mysql_async::Error) -> Error {
    match e {
        mysql_async::Error::Server(s) if ![1205, 1213, 1927].contains(&s.code) => Error::connector(
            name,
            format!("{} [error {}, SQLSTATE {}]", s.message, s.code, s.state),
        ),
        other => Error::unavailable(format!("mysql {}", address(url)), other),
    }
}

/// Whether the connection is unusable after `e`.
pub(crate) fn breaks_connection(e: &Error) -> bool {
    matches!(e, Error::Unavailable { .. })
}

/// The columns and primary key of `table` (`db.table`, or in the connection's database).
pub(crate) async fn table_info(conn: &mut Conn, table: &str) -> mysql_async::Result<TableInfo> {
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (Some(s.to_string()), n.to_string()),
        None => (None, table.to_string()),
    };
    let rows: Vec<(String, String, i64)> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR), is_nullable = 'YES' \
             FROM information_schema.columns \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? ORDER BY ordinal_position",
            (schema.clone(), name.clone()),
        )
        .await?;
    let columns = rows
        .into_iter()
        .map(|(name, sql_type, nullable)| Column {
            arrow: Dialect::Mysql.arrow_type(&sql_type, None, None),
            name,
            sql_type,
            nullable: nullable != 0,
        })
        .collect();
    let primary_key: Vec<String> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.key_column_usage \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND constraint_name = 'PRIMARY' \
             ORDER BY ordinal_position",
            (schema, name),
        )
        .await?;
    Ok(TableInfo {
        columns,
        primary_key,
    })
}
