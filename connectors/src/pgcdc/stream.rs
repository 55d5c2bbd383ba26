//! Streaming changes: reading the slot through a cursor over
//! `pg_logical_slot_peek_binary_changes`, and turning pgoutput messages into batches of
//! one table each.
//!
//! Peeking never consumes: the slot moves only when the runtime reports a position
//! durable ([`advance_slot`](super::catalog::advance_slot)). Each read opens a cursor in
//! its own transaction and fetches at most `max_changes_per_poll` rows at a time, so the
//! client holds at most that many messages however big a transaction is (PostgreSQL
//! materializes the function's result on its side, spilling to disk past `work_mem`).
//! Decoding returns whole transactions, so a cursor never ends inside one.
//!
//! Skipping what was already emitted: a transaction whose commit LSN is before `lsn`
//! (the end of the last transaction fully emitted) was emitted whole; the transaction a
//! position left half-emitted has its first `changes` changes skipped. Re-reading from
//! the slot therefore never repeats a change, whether the slot was advanced or not.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::catalog::classify;
use super::decode::{Message, Relation, decode_message};
use super::position::{CdcPosition, format_lsn};
use super::values::{Layout, PG_EPOCH_OFFSET_US, Rows};
use crate::batch::Reject;
use crate::error::{Error, Result};

/// The cursor's name on the reading connection.
const CURSOR: &str = "sluice_cdc";

/// What the stream needs to know of its configuration.
pub(crate) struct StreamConfig<'a> {
    pub(crate) connector: &'a str,
    pub(crate) slot: &'a str,
    /// The publication name as pgoutput's `publication_names` wants it (quoted).
    pub(crate) publication: &'a str,
    pub(crate) max_changes: usize,
    pub(crate) poll_interval: Duration,
    /// Primary keys by `schema.table`, from the catalog.
    pub(crate) keys: &'a HashMap<String, Vec<String>>,
}

/// A transaction being read.
#[derive(Debug)]
struct Txn {
    /// Its commit LSN: the rows' `_lsn`.
    final_lsn: u64,
    /// Unix microseconds.
    commit_ts: i64,
    /// Changes read so far (emitted or skipped).
    changes: u64,
    /// Changes to skip from its start (`u64::MAX`: all, it was emitted before).
    skip: u64,
}

/// Streaming state.
#[derive(Debug)]
pub(crate) struct Stream {
    /// End LSN of the last transaction fully read.
    lsn: u64,
    /// From the resume position: the first `.1` changes of the transaction committing at
    /// `.0` were emitted.
    resume: Option<(u64, u64)>,
    current: Option<Txn>,
    /// Fetched messages not yet turned into rows: (LSN, bytes). At most one fetch's worth.
    pending: VecDeque<(u64, Vec<u8>)>,
    cursor_open: bool,
    /// Rows the open cursor gave that were all skipped (already emitted): the next
    /// cursor's limit grows by this so it reaches new changes.
    cursor_skipped: usize,
    cursor_new: usize,
    read_limit_extra: usize,
    last_empty_read: Option<Instant>,
    relations: HashMap<u32, Arc<Layout>>,
}

/// One stream poll's rows (or nothing new).
pub(crate) struct Gathered {
    pub(crate) rows: Option<Rows>,
    pub(crate) rejects: Vec<Reject>,
    pub(crate) position: CdcPosition,
}

impl Stream {
    /// Streaming from `lsn`, skipping `resume`'s changes.
    pub(crate) fn new(lsn: u64, resume: Option<(u64, u64)>) -> Stream {
        Stream {
            lsn,
            resume,
            current: None,
            pending: VecDeque::new(),
            cursor_open: false,
            cursor_skipped: 0,
            cursor_new: 0,
            read_limit_extra: 0,
            last_empty_read: None,
            relations: HashMap::new(),
        }
    }

    /// The position after everything read so far.
    pub(crate) fn position(&self, slot: &str) -> CdcPosition {
        let partial = self
            .current
            .as_ref()
            .filter(|t| t.changes > 0 && t.final_lsn >= self.lsn);
        CdcPosition::Stream {
            slot: slot.to_string(),
            lsn: format_lsn(self.lsn),
            txn: partial.map(|t| format_lsn(t.final_lsn)),
            changes: partial.map_or(0, |t| t.changes),
        }
    }

    /// Gathers up to `max_rows` rows of one table. `None`: nothing new, and the
    /// position did not move.
    pub(crate) async fn poll(
        &mut self,
        client: &Client,
        config: &StreamConfig<'_>,
        max_rows: usize,
    ) -> Result<Option<Gathered>> {
        let limit = max_rows.clamp(1, config.max_changes);
        let start = self.position(config.slot);
        let mut rows: Option<Rows> = None;
        let mut rejects = Vec::new();
        let mut opened = false;
        loop {
            let Some((lsn, bytes)) = self.pending.front() else {
                let gathered = rows.as_ref().is_some_and(|r| r.len() > 0) || !rejects.is_empty();
                if gathered || self.position(config.slot) != start {
                    break;
                }
                if !self.cursor_open {
                    if opened {
                        return Ok(None);
                    }
                    self.open_cursor(client, config).await?;
                    opened = true;
                }
                self.fetch(client, config, limit).await?;
                continue;
            };
            let lsn = *lsn;
            let message = decode_message(bytes).map_err(|e| {
                Error::connector(
                    config.connector,
                    format!("slot {} at {}: {e}", config.slot, format_lsn(lsn)),
                )
            })?;
            match message {
                Message::Begin {
                    final_lsn,
                    commit_ts,
                    ..
                } => {
                    let skip = if final_lsn < self.lsn {
                        u64::MAX
                    } else {
                        match self.resume {
                            Some((txn, changes)) if txn == final_lsn => changes,
                            _ => 0,
                        }
                    };
                    self.current = Some(Txn {
                        final_lsn,
                        commit_ts: commit_ts.saturating_add(PG_EPOCH_OFFSET_US),
                        changes: 0,
                        skip,
                    });
                }
                Message::Commit { end_lsn, .. } => {
                    if let Some(txn) = self.current.take()
                        && txn.final_lsn >= self.lsn
                    {
                        self.resume = None;
                    }
                    self.lsn = self.lsn.max(end_lsn);
                }
                Message::Relation(relation) => {
                    let layout = relation_layout(&relation, config.keys);
                    let changed = self
                        .relations
                        .get(&relation.id)
                        .is_none_or(|old| old.columns != layout.columns);
                    let in_batch = rows
                        .as_ref()
                        .is_some_and(|r| r.len() > 0 && r.layout().stream == layout.stream);
                    if changed && in_batch {
                        break; // the table's columns changed: new rows, new batch
                    }
                    if changed {
                        self.relations.insert(relation.id, Arc::new(layout));
                    }
                }
                Message::Insert { relation, .. }
                | Message::Update { relation, .. }
                | Message::Delete { relation, .. } => {
                    let Some(txn) = self.current.as_ref() else {
                        return Err(self.protocol(config, lsn, "a change outside a transaction"));
                    };
                    let Some(layout) = self.relations.get(&relation).cloned() else {
                        return Err(self.protocol(
                            config,
                            lsn,
                            &format!("a change to relation {relation} before its description"),
                        ));
                    };
                    let skipped = txn.changes < txn.skip;
                    if !skipped && let Some(batch) = &rows {
                        let other = !Arc::ptr_eq(batch.layout(), &layout);
                        if batch.len() > 0 && (other || batch.len() >= limit) {
                            break;
                        }
                    }
                    let txn = self.current.as_mut().ok_or_else(|| {
                        Error::connector(config.connector, "transaction state lost")
                    })?;
                    txn.changes += 1;
                    let (final_lsn, commit_ts) = (txn.final_lsn, txn.commit_ts);
                    let Some((_, bytes)) = self.pending.pop_front() else {
                        continue;
                    };
                    if skipped {
                        self.cursor_skipped += 1;
                        continue;
                    }
                    self.cursor_new += 1;
                    if rows
                        .as_ref()
                        .is_none_or(|r| !Arc::ptr_eq(r.layout(), &layout))
                    {
                        rows = Some(Rows::new(layout.clone()));
                    }
                    let (op, tuple) = match &message {
                        Message::Insert { new, .. } => ("c", new.as_slice()),
                        Message::Update { new, .. } => ("u", new.as_slice()),
                        Message::Delete { old, .. } => ("d", old.values()),
                        _ => continue,
                    };
                    match layout.parse_tuple(tuple) {
                        Ok(cells) => {
                            if let Some(rows) = rows.as_mut() {
                                rows.push(
                                    cells,
                                    op,
                                    i64::try_from(final_lsn).ok(),
                                    Some(commit_ts),
                                );
                            }
                        }
                        Err(error) => rejects.push(Reject {
                            position: format!("{}@{}", layout.stream, format_lsn(lsn)),
                            bytes,
                            error,
                        }),
                    }
                    continue;
                }
                Message::Truncate { relations, .. } => {
                    if let Some(txn) = self.current.as_mut() {
                        txn.changes += 1;
                    }
                    tracing::warn!(
                        source = config.connector,
                        ?relations,
                        "TRUNCATE is not propagated by postgres-cdc; downstream keeps the rows"
                    );
                }
                Message::Origin { .. } | Message::Type { .. } | Message::Message { .. } => {}
            }
            self.pending.pop_front();
        }
        Ok(Some(Gathered {
            rows,
            rejects,
            position: self.position(config.slot),
        }))
    }

    fn protocol(&self, config: &StreamConfig<'_>, lsn: u64, what: &str) -> Error {
        Error::connector(
            config.connector,
            format!(
                "slot {} at {}: {what} (not what pgoutput sends; please report)",
                config.slot,
                format_lsn(lsn)
            ),
        )
    }

    async fn open_cursor(&mut self, client: &Client, config: &StreamConfig<'_>) -> Result<()> {
        if let Some(last) = self.last_empty_read {
            let wait = config.poll_interval.saturating_sub(last.elapsed());
            tokio::time::sleep(wait).await;
        }
        let limit = config
            .max_changes
            .saturating_add(self.read_limit_extra)
            .min(i32::MAX as usize) as i32;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| classify(config.connector, "starting a slot read", e))?;
        client
            .execute(
                &format!(
                    "DECLARE {CURSOR} NO SCROLL CURSOR FOR SELECT lsn::text, data \
                     FROM pg_logical_slot_peek_binary_changes($1, NULL, $2, \
                     'proto_version', '1', 'publication_names', $3)"
                ),
                &[&config.slot, &limit, &config.publication],
            )
            .await
            .map_err(|e| {
                classify(
                    config.connector,
                    &format!("reading slot {}", config.slot),
                    e,
                )
            })?;
        self.cursor_open = true;
        self.cursor_skipped = 0;
        self.cursor_new = 0;
        Ok(())
    }

    async fn fetch(
        &mut self,
        client: &Client,
        config: &StreamConfig<'_>,
        limit: usize,
    ) -> Result<()> {
        let reading = |e| {
            classify(
                config.connector,
                &format!("reading slot {}", config.slot),
                e,
            )
        };
        let found = client
            .query(&format!("FETCH FORWARD {limit} FROM {CURSOR}"), &[])
            .await
            .map_err(reading)?;
        if found.is_empty() {
            client.batch_execute("COMMIT").await.map_err(reading)?;
            self.cursor_open = false;
            self.current = None;
            // Nothing new: wait a poll interval before the next read, and let the next
            // read reach past what this one re-read.
            self.last_empty_read = (self.cursor_new == 0).then(Instant::now);
            self.read_limit_extra = self.cursor_skipped;
            return Ok(());
        }
        for row in found {
            let lsn: String = row.get(0);
            let lsn = super::position::parse_lsn(&lsn).unwrap_or(0);
            self.pending.push_back((lsn, row.get(1)));
        }
        Ok(())
    }
}

/// A table's layout from its Relation message; the key from the catalog when known,
/// else the replica identity's columns.
fn relation_layout(relation: &Relation, keys: &HashMap<String, Vec<String>>) -> Layout {
    let stream = format!("{}.{}", relation.namespace, relation.name);
    let columns: Vec<(String, u32, i32)> = relation
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.type_oid, c.type_modifier))
        .collect();
    let key = keys.get(&stream).cloned().unwrap_or_else(|| {
        if relation.replica_identity == b'f' {
            Vec::new() // every column is "key" under FULL: no usable key
        } else {
            relation
                .columns
                .iter()
                .filter(|c| c.key)
                .map(|c| c.name.clone())
                .collect()
        }
    });
    Layout::new(stream, &columns, key)
}
