//! What the source asks PostgreSQL's catalog and does to it: connecting, table layouts,
//! the publication and the slot.

use std::sync::Arc;

use tokio_postgres::{Client, NoTls};

use super::config::{TableName, quote_ident};
use super::position::parse_lsn;
use super::values::Layout;
use crate::error::{Error, Result};

/// Session settings that fix the text formats values arrive in (see `values`).
const SESSION_SETUP: &str = "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; \
     SET extra_float_digits = 3; SET bytea_output = 'hex'; \
     SET application_name = 'sluice postgres-cdc'";

/// Connects and fixes the session's formats. The connection's task is spawned on the
/// current runtime and ends when the client is dropped.
pub(crate) async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| Error::unavailable(format!("postgres {}", redact(url)), e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres-cdc connection ended: {e}");
        }
    });
    client
        .batch_execute(SESSION_SETUP)
        .await
        .map_err(|e| classify("postgres", "setting up the session", e))?;
    Ok(client)
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_string(),
    }
}

/// A database error as the framework's: connection trouble, shutdown, resource limits
/// and a slot busy elsewhere are worth retrying; anything else is this source's failure.
pub(crate) fn classify(connector: &str, doing: &str, e: tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        return Error::unavailable("postgres", format!("{doing}: {e}"));
    };
    let code = db.code().code();
    let retriable = code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "55006"; // object_in_use: the slot is active for another process
    let message = format!("{doing}: {}", db.message());
    if retriable {
        Error::unavailable("postgres", message)
    } else {
        Error::connector(connector, message)
    }
}

/// A table as the catalog describes it.
#[derive(Debug)]
pub(crate) struct TableInfo {
    pub(crate) name: TableName,
    /// `REPLICA IDENTITY`: `d`, `n`, `f` or `i`.
    pub(crate) replica_identity: String,
    /// Replicated columns: name, type OID, typmod, SQL type name (for casts).
    pub(crate) columns: Vec<(String, u32, i32, String)>,
    /// Primary key columns, in key order.
    pub(crate) key: Vec<String>,
}

impl TableInfo {
    pub(crate) fn layout(&self) -> Arc<Layout> {
        let columns: Vec<(String, u32, i32)> = self
            .columns
            .iter()
            .map(|(n, oid, typmod, _)| (n.clone(), *oid, *typmod))
            .collect();
        Arc::new(Layout::new(
            self.name.to_string(),
            &columns,
            self.key.clone(),
        ))
    }
}

/// The table's layout, or `None` if there is no such table.
pub(crate) async fn table_info(
    client: &Client,
    connector: &str,
    name: &TableName,
) -> Result<Option<TableInfo>> {
    let err = |e| classify(connector, &format!("reading the catalog for {name}"), e);
    let Some(row) = client
        .query_opt(
            "SELECT c.oid, c.relreplident::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&name.schema, &name.table],
        )
        .await
        .map_err(err)?
    else {
        return Ok(None);
    };
    let oid: u32 = row.get(0);
    let replica_identity: String = row.get(1);
    // Generated and dropped columns are not replicated, so pgoutput leaves them out too.
    let columns = client
        .query(
            "SELECT attname::text, atttypid, atttypmod, format_type(atttypid, NULL) \
             FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped \
             AND attgenerated = '' ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let key = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            &[&oid],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Some(TableInfo {
        name: name.clone(),
        replica_identity,
        columns,
        key,
    }))
}

/// The tables of a publication, or `None` if it does not exist.
pub(crate) async fn publication_tables(
    client: &Client,
    connector: &str,
    publication: &str,
) -> Result<Option<Vec<TableName>>> {
    let err = |e| classify(connector, &format!("reading publication {publication}"), e);
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(err)?;
    if exists.is_none() {
        return Ok(None);
    }
    let mut tables: Vec<TableName> = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables \
             WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| TableName {
            schema: r.get(0),
            table: r.get(1),
        })
        .collect();
    tables.sort();
    Ok(Some(tables))
}

/// Creates the publication for `tables`.
pub(crate) async fn create_publication(
    client: &Client,
    connector: &str,
    publication: &str,
    tables: &[TableName],
) -> Result<()> {
    let list: Vec<String> = tables.iter().map(TableName::quoted).collect();
    let sql = format!(
        "CREATE PUBLICATION {} FOR TABLE {}",
        quote_ident(publication),
        list.join(", ")
    );
    client.batch_execute(&sql).await.map_err(|e| {
        classify(
            connector,
            &format!(
                "creating publication {publication} (needs ownership of the tables, or run \
                 `{sql}` as their owner)"
            ),
            e,
        )
    })
}

/// A replication slot as `pg_replication_slots` shows it.
#[derive(Debug)]
pub(crate) struct SlotInfo {
    pub(crate) plugin: Option<String>,
    pub(crate) database: Option<String>,
    /// Where decoding starts: changes committed before it were consumed.
    pub(crate) confirmed_flush: Option<u64>,
}

/// The slot, or `None` if there is none of that name.
pub(crate) async fn slot_info(
    client: &Client,
    connector: &str,
    slot: &str,
) -> Result<Option<SlotInfo>> {
    let row = client
        .query_opt(
            "SELECT plugin::text, database::text, confirmed_flush_lsn::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| classify(connector, &format!("reading slot {slot}"), e))?;
    Ok(row.map(|r| SlotInfo {
        plugin: r.get(0),
        database: r.get(1),
        confirmed_flush: r.get::<_, Option<String>>(2).and_then(|l| parse_lsn(&l)),
    }))
}

/// Creates a pgoutput slot; returns its start LSN. Waits for transactions running now to
/// finish (PostgreSQL needs a consistent starting point).
pub(crate) async fn create_slot(client: &Client, connector: &str, slot: &str) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&slot],
        )
        .await
        .map_err(|e| {
            classify(
                connector,
                &format!(
                    "creating replication slot {slot} (needs wal_level = logical, a free \
                     slot under max_replication_slots, and a user with REPLICATION)"
                ),
                e,
            )
        })?;
    let lsn: String = row.get(0);
    parse_lsn(&lsn).ok_or_else(|| Error::connector(connector, format!("slot LSN `{lsn}`")))
}

/// Moves the slot's start to `lsn` if it is before it (PostgreSQL refuses to move back).
pub(crate) async fn advance_slot(
    client: &Client,
    connector: &str,
    slot: &str,
    lsn: &str,
) -> Result<()> {
    client
        .execute(
            "SELECT pg_replication_slot_advance(slot_name, $2::text::pg_lsn) \
             FROM pg_replication_slots WHERE slot_name = $1 \
             AND confirmed_flush_lsn < $2::text::pg_lsn",
            &[&slot, &lsn],
        )
        .await
        .map_err(|e| classify(connector, &format!("advancing slot {slot} to {lsn}"), e))?;
    Ok(())
}

/// The current database's name.
pub(crate) async fn current_database(client: &Client, connector: &str) -> Result<String> {
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(|e| classify(connector, "reading the database name", e))?;
    Ok(row.get(0))
}
