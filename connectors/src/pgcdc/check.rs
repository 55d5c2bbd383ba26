//! `check()`: what can be verified before moving data, each problem with its fix.

use tokio_postgres::Client;

use super::catalog::{self, redact};
use super::config::{CdcConfig, SnapshotMode, TableName};
use crate::config::Settings;

/// Every problem found with the source's database, publication, slot and tables.
pub(crate) async fn check(
    settings: &Settings,
    config: &CdcConfig,
    publication: &str,
    slot: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let client = match catalog::connect(&config.url).await {
        Ok(client) => client,
        Err(e) => {
            problems.push(settings.problem(
                Some("url"),
                format!(
                    "cannot connect to {}: {e}; check the host, port, user, password and \
                     database in `url`",
                    redact(&config.url)
                ),
            ));
            return problems;
        }
    };
    if let Err(e) =
        check_database(settings, &client, config, publication, slot, &mut problems).await
    {
        problems.push(settings.problem(None, e));
    }
    problems
}

async fn check_database(
    settings: &Settings,
    client: &Client,
    config: &CdcConfig,
    publication: &str,
    slot: &str,
    problems: &mut Vec<String>,
) -> crate::Result<()> {
    let name = settings.name.as_str();
    let err = |e| catalog::classify(name, "checking the server", e);
    let wal_level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(err)?
        .get(0);
    if wal_level != "logical" {
        problems.push(settings.problem(
            None,
            format!(
                "the server's wal_level is `{wal_level}`, and change data capture needs \
                 `logical`: run `ALTER SYSTEM SET wal_level = logical` as a superuser, then \
                 restart PostgreSQL"
            ),
        ));
    }
    let can_replicate: bool = client
        .query_one(
            "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    if !can_replicate {
        problems.push(settings.problem(
            Some("url"),
            "the user may not use replication slots: run `ALTER ROLE <user> REPLICATION` as \
             a superuser",
        ));
    }
    let configured: Vec<TableName> = config
        .tables
        .iter()
        .filter_map(|t| TableName::parse(t))
        .collect();
    let published = catalog::publication_tables(client, name, publication).await?;
    let tables = match &published {
        Some(published) => {
            for table in configured.iter().filter(|t| !published.contains(t)) {
                problems.push(settings.problem(
                    Some("tables"),
                    format!(
                        "publication {publication} does not include {table}: run \
                         `ALTER PUBLICATION \"{publication}\" ADD TABLE {}`",
                        table.quoted()
                    ),
                ));
            }
            if configured.is_empty() {
                published.clone()
            } else {
                configured
            }
        }
        None if configured.is_empty() => {
            problems.push(settings.problem(
                Some("publication"),
                format!(
                    "publication {publication} does not exist: create it, or list `tables` \
                     so the source creates it"
                ),
            ));
            Vec::new()
        }
        None => configured,
    };
    for table in &tables {
        let Some(info) = catalog::table_info(client, name, table).await? else {
            problems
                .push(settings.problem(Some("tables"), format!("table {table} does not exist")));
            continue;
        };
        if info.key.is_empty() {
            let fix = if config.snapshot == SnapshotMode::Initial {
                "the snapshot pages by it and deletes carry no key: add a primary key"
            } else {
                "deletes carry no key: add a primary key"
            };
            problems.push(settings.problem(
                Some("tables"),
                format!("table {table} has no primary key; {fix}"),
            ));
        }
        match info.replica_identity.as_str() {
            "n" => problems.push(settings.problem(
                Some("tables"),
                format!(
                    "table {table} has REPLICA IDENTITY NOTHING: updates and deletes on a \
                     published table fail; run `ALTER TABLE {} REPLICA IDENTITY DEFAULT`",
                    table.quoted()
                ),
            )),
            "d" if info.key.is_empty() => problems.push(settings.problem(
                Some("tables"),
                format!(
                    "table {table} has no replica identity key: updates and deletes on it \
                     fail once published; add a primary key or run `ALTER TABLE {} REPLICA \
                     IDENTITY FULL`",
                    table.quoted()
                ),
            )),
            _ => {}
        }
    }
    if let Some(info) = catalog::slot_info(client, name, slot).await? {
        let database = catalog::current_database(client, name).await?;
        if info.plugin.as_deref() != Some("pgoutput") || info.database.as_deref() != Some(&database)
        {
            problems.push(settings.problem(
                Some("slot"),
                format!(
                    "slot {slot} exists but is not a pgoutput slot of database {database} \
                     (plugin {:?}, database {:?}): name another `slot` or drop it",
                    info.plugin, info.database
                ),
            ));
        }
    }
    Ok(())
}
