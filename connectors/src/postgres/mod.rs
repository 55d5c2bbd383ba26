//! The PostgreSQL connectors: `type = "postgres"` sink and source.
//!
//! - [`sink`]: writes through binary `COPY` (straight from Arrow arrays, [`copy`]);
//!   upserts go through a temporary staging table and `INSERT ... SELECT DISTINCT ON ...
//!   ON CONFLICT`, deletes through `DELETE ... USING` the staged keys.
//! - [`source`]: reads pages per the source mode, decoding binary result values.
//!
//! Sessions run with `TimeZone = UTC`: TIMESTAMP columns are read and written as UTC.
//! The user guide is `docs/connectors/postgres.md`.

mod catalog;
pub mod copy;
pub mod sink;
pub mod source;

use tokio_postgres::{Client, NoTls};

use crate::db::config::address;
use crate::error::{Error, Result};

pub use sink::PostgresSink;
pub use source::PostgresSource;

/// Connects to `url` as `application_name` (a task drives the connection).
pub(crate) async fn connect(url: &str, application_name: &str) -> Result<Client> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Error::config(format!("postgres url is not valid: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name(application_name);
    }
    config.connect_timeout(std::time::Duration::from_secs(10));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::unavailable(format!("postgres {}", address(url)), e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection ended: {e}");
        }
    });
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .map_err(|e| classify(url, application_name, e))?;
    Ok(client)
}

/// An error from the server or the connection, by whose fault it is: a dropped
/// connection, an administrator's termination, a serialization failure or a deadlock are
/// worth retrying; a rejected statement is not.
pub(crate) fn classify(url: &str, connector: &str, e: tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        return Error::unavailable(format!("postgres {}", address(url)), e);
    };
    let code = db.code().code();
    let mut message = format!("{}: {}", db.severity(), db.message());
    if let Some(detail) = db.detail() {
        message.push_str(&format!(" ({detail})"));
    }
    if let Some(hint) = db.hint() {
        message.push_str(&format!("; hint: {hint}"));
    }
    let retriable = ["08", "53", "57P"].iter().any(|p| code.starts_with(p))
        || code == "40001"
        || code == "40P01";
    if retriable {
        Error::unavailable(format!("postgres {}", address(url)), message)
    } else {
        Error::connector(connector, format!("{message} [SQLSTATE {code}]"))
    }
}
