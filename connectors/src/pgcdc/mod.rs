//! `postgres-cdc`: change data capture from PostgreSQL through a logical replication slot
//! and the built-in `pgoutput` plugin, one stream (topic) per table.
//!
//! # Reading the slot through SQL
//!
//! tokio-postgres has no replication protocol (`COPY BOTH`), so the slot is read with
//! `pg_logical_slot_peek_binary_changes`, which decodes without consuming. The slot is
//! moved with `pg_replication_slot_advance` only in [`Source::committed`], once the rows
//! are durable in the log: a crash anywhere before that re-reads the same changes, and
//! the position (the end LSN of the last transaction emitted, plus a change count inside
//! a transaction bigger than a batch) skips exactly what was already emitted. Delivery of
//! changes is therefore exactly-once into the log. The cost against the streaming
//! protocol: every read re-decodes from the slot's start (so the slot is advanced after
//! every committed batch) and a read waits for whole transactions to be decoded.
//!
//! # Invariants
//!
//! - The publication exists before the slot (pgoutput looks publications up as of each
//!   change's time; changes older than the publication cannot be decoded).
//! - The slot exists before the snapshot starts: nothing committed after the snapshot is
//!   missed (see [`snapshot`]).
//! - A position never points inside a transaction except as "the first N changes of it
//!   were emitted", and the slot is only ever advanced to a transaction's end.
//!
//! # Layout
//!
//! [`config`] the keys; [`decode`] the pgoutput decoder; `values` types and text values;
//! `catalog` the SQL the source runs; [`snapshot`] and `stream` the two phases;
//! [`position`] the position; `check` the pre-flight checks.

mod catalog;
mod check;
pub mod config;
pub mod decode;
pub mod position;
pub mod snapshot;
mod stream;
mod values;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use async_trait::async_trait;
use tokio_postgres::Client;

pub use config::{CdcConfig, DeleteMode, SnapshotMode};
pub use decode::{DecodeError, Message, decode_message};
pub use position::CdcPosition;
pub use values::{COMMIT_TS_COLUMN, LSN_COLUMN, OP_COLUMN};

use crate::batch::{Poll, Position, SourceBatch};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::source::Source;
use catalog::TableInfo;
use config::{TableName, default_object_name, quote_ident};
use position::{format_lsn, position_lsn};
use snapshot::Snapshot;
use stream::{Stream, StreamConfig};

/// The `postgres-cdc` source.
pub struct PostgresCdcSource {
    settings: Settings,
    config: CdcConfig,
    publication: String,
    slot: String,
    /// The captured tables, as found at open.
    tables: Vec<Arc<TableInfo>>,
    /// Their primary keys by `schema.table`.
    keys: HashMap<String, Vec<String>>,
    /// `control` runs the snapshot and advances the slot; `reader` holds the slot cursor.
    /// `None` until opened, and after a failure (reconnected on the next poll).
    connections: Option<(Client, Client)>,
    phase: Phase,
    /// The position of the last batch returned: where to restart after a failure.
    returned: Option<CdcPosition>,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Snapshot(Snapshot),
    Stream(Stream),
}

impl PostgresCdcSource {
    /// Builds the source from its section (nothing is opened yet).
    pub fn new(settings: &Settings) -> Result<PostgresCdcSource> {
        let config = CdcConfig::from_settings(settings)?;
        let default = default_object_name(&settings.name);
        Ok(PostgresCdcSource {
            settings: settings.clone(),
            publication: config
                .publication
                .clone()
                .unwrap_or_else(|| default.clone()),
            slot: config.slot.clone().unwrap_or(default),
            config,
            tables: Vec::new(),
            keys: HashMap::new(),
            connections: None,
            phase: Phase::Closed,
            returned: None,
        })
    }

    /// The replication slot this source reads (to drop it when retiring the pipeline).
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The publication this source reads through.
    pub fn publication(&self) -> &str {
        &self.publication
    }

    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn connections(&mut self) -> Result<&(Client, Client)> {
        if self.connections.is_none() {
            let control = catalog::connect(&self.config.url).await?;
            let reader = catalog::connect(&self.config.url).await?;
            self.connections = Some((control, reader));
        }
        self.connections
            .as_ref()
            .ok_or_else(|| Error::connector(self.name(), "connection lost"))
    }

    /// The configured tables, or the existing publication's; creates the publication.
    async fn resolve_tables(&self, client: &Client) -> Result<Vec<TableName>> {
        let name = self.name();
        let configured: Vec<TableName> = self
            .config
            .tables
            .iter()
            .filter_map(|t| TableName::parse(t))
            .collect();
        match catalog::publication_tables(client, name, &self.publication).await? {
            Some(published) => {
                let missing: Vec<String> = configured
                    .iter()
                    .filter(|t| !published.contains(t))
                    .map(|t| t.quoted())
                    .collect();
                if !missing.is_empty() {
                    return Err(Error::connector(
                        name,
                        format!(
                            "publication {} does not include {}: run `ALTER PUBLICATION {} \
                             ADD TABLE {}`",
                            self.publication,
                            missing.join(", "),
                            quote_ident(&self.publication),
                            missing.join(", ")
                        ),
                    ));
                }
                Ok(if configured.is_empty() {
                    published
                } else {
                    configured
                })
            }
            None if configured.is_empty() => Err(Error::connector(
                name,
                format!(
                    "publication {} does not exist and no `tables` are configured to create \
                     it for",
                    self.publication
                ),
            )),
            None => {
                catalog::create_publication(client, name, &self.publication, &configured).await?;
                Ok(configured)
            }
        }
    }

    /// The phase a position (or none) starts in.
    fn phase_from(&self, position: Option<&CdcPosition>, slot_lsn: u64) -> Result<Phase> {
        Ok(match position {
            None if self.config.snapshot == SnapshotMode::Initial => Phase::Snapshot(Snapshot {
                slot_lsn,
                tables: self.tables.clone(),
                index: 0,
                after: None,
                in_transaction: false,
            }),
            None => Phase::Stream(Stream::new(slot_lsn, None)),
            Some(CdcPosition::Snapshot {
                slot_lsn,
                table,
                after,
                ..
            }) => {
                let index = self
                    .tables
                    .iter()
                    .position(|t| &t.name.to_string() == table)
                    .ok_or_else(|| {
                        Error::connector(
                            self.name(),
                            format!(
                                "the stored position is in the snapshot of {table}, which is \
                                 no longer captured; drop the pipeline's position to start over"
                            ),
                        )
                    })?;
                Phase::Snapshot(Snapshot {
                    slot_lsn: position_lsn(slot_lsn)?,
                    tables: self.tables.clone(),
                    index,
                    after: after.clone(),
                    in_transaction: false,
                })
            }
            Some(CdcPosition::Stream {
                lsn, txn, changes, ..
            }) => {
                let resume = match txn {
                    Some(txn) => Some((position_lsn(txn)?, *changes)),
                    None => None,
                };
                Phase::Stream(Stream::new(position_lsn(lsn)?, resume))
            }
        })
    }

    /// Drops the connections and rewinds to the last position returned, so the next poll
    /// reconnects and re-reads what the failed one had gathered.
    fn reset(&mut self) {
        self.connections = None;
        let position = self.returned.clone();
        let slot_lsn = match &self.phase {
            Phase::Snapshot(s) => s.slot_lsn,
            _ => 0,
        };
        if let Ok(phase) = self.phase_from(position.as_ref(), slot_lsn) {
            self.phase = phase;
        }
    }

    async fn poll_phase(&mut self, max_rows: usize) -> Result<Poll> {
        self.connections().await?;
        let Some((control, reader)) = self.connections.as_ref() else {
            return Err(Error::connector(self.name(), "not opened"));
        };
        let name = self.settings.name.as_str();
        match &mut self.phase {
            Phase::Closed => Err(Error::connector(name, "poll before open")),
            Phase::Snapshot(snapshot) => {
                let page = snapshot
                    .poll(control, name, &self.slot, max_rows, self.config.deletes)
                    .await?;
                if page.finished {
                    let slot_lsn = snapshot.slot_lsn;
                    self.phase = Phase::Stream(Stream::new(slot_lsn, None));
                }
                Ok(Poll::Batch(page.batch))
            }
            Phase::Stream(stream) => {
                let publication = quote_ident(&self.publication);
                let config = StreamConfig {
                    connector: name,
                    slot: &self.slot,
                    publication: &publication,
                    max_changes: self.config.max_changes_per_poll,
                    poll_interval: Duration::from_millis(self.config.poll_interval_ms),
                    keys: &self.keys,
                };
                let Some(gathered) = stream.poll(reader, &config, max_rows).await? else {
                    return Ok(Poll::Idle);
                };
                let batch = match gathered.rows {
                    Some(rows) => snapshot::batch(
                        rows,
                        gathered.rejects,
                        gathered.position,
                        self.config.deletes,
                    )?,
                    // Only the position moved (transactions with nothing to emit), or
                    // only rejects: report it, as no rows of the first table, so the
                    // slot can be advanced and the batch still names a stream.
                    None => match self.tables.first() {
                        Some(table) => snapshot::batch(
                            values::Rows::new(table.layout()),
                            gathered.rejects,
                            gathered.position,
                            self.config.deletes,
                        )?,
                        None => {
                            let mut batch = SourceBatch::new(
                                RecordBatch::new_empty(Arc::new(Schema::empty())),
                                gathered.position.to_json(),
                            );
                            batch.rejects = gathered.rejects;
                            batch
                        }
                    },
                };
                Ok(Poll::Batch(batch))
            }
        }
    }
}

#[async_trait]
impl Source for PostgresCdcSource {
    async fn check(&mut self) -> Vec<String> {
        check::check(&self.settings, &self.config, &self.publication, &self.slot).await
    }

    async fn open(&mut self, position: Option<Position>) -> Result<()> {
        let position = position
            .filter(|p| !p.is_null())
            .map(|p| CdcPosition::from_json(&p))
            .transpose()?;
        if let Some(p) = &position
            && p.slot() != self.slot
        {
            return Err(Error::connector(
                self.name(),
                format!(
                    "the stored position belongs to slot {}, but this source reads slot {}; \
                     set `slot = \"{}\"` or drop the pipeline's position to start over",
                    p.slot(),
                    self.slot,
                    p.slot()
                ),
            ));
        }
        self.connections = None;
        self.connections().await?;
        let Some((control, _)) = self.connections.as_ref() else {
            return Err(Error::connector(self.name(), "not connected"));
        };
        let name = self.settings.name.clone();
        // The publication first: pgoutput cannot decode changes older than it.
        let tables = self.resolve_tables(control).await?;
        let mut infos = Vec::with_capacity(tables.len());
        for table in &tables {
            let info = catalog::table_info(control, &name, table)
                .await?
                .ok_or_else(|| Error::connector(&name, format!("table {table} does not exist")))?;
            if info.key.is_empty() && self.config.snapshot == SnapshotMode::Initial {
                return Err(Error::connector(
                    &name,
                    format!(
                        "table {table} has no primary key, which the snapshot pages by: add \
                         one, or set `snapshot = \"never\"`"
                    ),
                ));
            }
            infos.push(Arc::new(info));
        }
        self.keys = infos
            .iter()
            .map(|t| (t.name.to_string(), t.key.clone()))
            .collect();
        self.tables = infos;
        let database = catalog::current_database(control, &name).await?;
        let slot_lsn = match catalog::slot_info(control, &name, &self.slot).await? {
            Some(slot) => {
                if slot.plugin.as_deref() != Some("pgoutput")
                    || slot.database.as_deref() != Some(&database)
                {
                    return Err(Error::connector(
                        &name,
                        format!(
                            "slot {} exists but is not a pgoutput slot of database {database} \
                             (plugin {:?}, database {:?}): name another `slot`",
                            self.slot, slot.plugin, slot.database
                        ),
                    ));
                }
                slot.confirmed_flush.unwrap_or(0)
            }
            None if position.is_some() => {
                return Err(Error::connector(
                    &name,
                    format!(
                        "slot {} is gone, so changes since the stored position are lost: drop \
                         the pipeline's position to start over with a new snapshot",
                        self.slot
                    ),
                ));
            }
            None => catalog::create_slot(control, &name, &self.slot).await?,
        };
        if let Some(CdcPosition::Stream { lsn, .. }) = &position {
            let stored = position_lsn(lsn)?;
            if slot_lsn > stored {
                return Err(Error::connector(
                    &name,
                    format!(
                        "slot {} starts at {}, after the stored position {lsn}: the changes \
                         between were consumed elsewhere. Drop the slot and the pipeline's \
                         position to start over with a new snapshot",
                        self.slot,
                        format_lsn(slot_lsn)
                    ),
                ));
            }
            // The position came from the log, so it is durable: the slot may move to it.
            catalog::advance_slot(control, &name, &self.slot, lsn).await?;
        }
        self.phase = self.phase_from(position.as_ref(), slot_lsn)?;
        self.returned = position;
        if self.returned.is_none() {
            self.returned = Some(match &self.phase {
                Phase::Snapshot(s) => s.position(&self.slot),
                Phase::Stream(s) => s.position(&self.slot),
                Phase::Closed => return Err(Error::connector(&name, "not opened")),
            });
        }
        Ok(())
    }

    async fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        match self.poll_phase(max_rows).await {
            Ok(Poll::Batch(batch)) => {
                self.returned = Some(CdcPosition::from_json(&batch.position)?);
                Ok(Poll::Batch(batch))
            }
            Ok(other) => Ok(other),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    async fn committed(&mut self, position: &Position) -> Result<()> {
        let CdcPosition::Stream { lsn, .. } = CdcPosition::from_json(position)? else {
            return Ok(()); // the slot does not move during the snapshot
        };
        let slot = self.slot.clone();
        let name = self.settings.name.clone();
        let result = async {
            let (control, _) = self.connections().await?;
            catalog::advance_slot(control, &name, &slot, &lsn).await
        }
        .await;
        if result.is_err() {
            self.reset();
        }
        result
    }
}
