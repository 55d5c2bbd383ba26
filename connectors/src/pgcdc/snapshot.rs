//! The initial snapshot: the captured tables' existing rows, `_op = 'r'`, copied a page at
//! a time in primary key order inside one `REPEATABLE READ` transaction.
//!
//! The slot is created before the snapshot starts, so every change committed after the
//! slot's start is streamed afterwards and every change committed before it is in the
//! copy. A change committed between the two is in both (the SQL interface cannot export
//! the slot's own snapshot): delivery there is at-least-once, which keyed upsert sinks
//! absorb. The position names the table and the last key copied; after a crash a new
//! transaction continues from that key.

use std::sync::Arc;

use arrow::array::BooleanArray;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::catalog::{TableInfo, classify};
use super::config::{DeleteMode, quote_ident};
use super::position::{CdcPosition, format_lsn};
use super::values::Rows;
use crate::batch::{Reject, SourceBatch};
use crate::error::Result;

/// Snapshot progress.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The slot's start: the `_lsn` of snapshot rows, and where streaming begins.
    pub(crate) slot_lsn: u64,
    /// The tables to copy, in order.
    pub(crate) tables: Vec<Arc<TableInfo>>,
    /// The table being copied.
    pub(crate) index: usize,
    /// The key of the last row copied from it.
    pub(crate) after: Option<Vec<String>>,
    /// Whether the connection holds the snapshot's transaction.
    pub(crate) in_transaction: bool,
}

/// What one snapshot poll gave.
pub(crate) struct Page {
    pub(crate) batch: SourceBatch,
    /// Every table is copied: stream from the slot now.
    pub(crate) finished: bool,
}

impl Snapshot {
    /// The position after what was copied so far.
    pub(crate) fn position(&self, slot: &str) -> CdcPosition {
        match self.tables.get(self.index) {
            Some(table) => CdcPosition::Snapshot {
                slot: slot.to_string(),
                slot_lsn: format_lsn(self.slot_lsn),
                table: table.name.to_string(),
                after: self.after.clone(),
            },
            None => CdcPosition::Stream {
                slot: slot.to_string(),
                lsn: format_lsn(self.slot_lsn),
                txn: None,
                changes: 0,
            },
        }
    }

    /// Copies the next page of up to `max_rows` rows.
    pub(crate) async fn poll(
        &mut self,
        client: &Client,
        connector: &str,
        slot: &str,
        max_rows: usize,
        deletes: DeleteMode,
    ) -> Result<Page> {
        if !self.in_transaction {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(|e| classify(connector, "starting the snapshot transaction", e))?;
            self.in_transaction = true;
        }
        let Some(table) = self.tables.get(self.index).cloned() else {
            return self
                .finish(client, connector, slot, None, Vec::new(), deletes)
                .await;
        };
        let layout = table.layout();
        let limit = max_rows.clamp(1, i64::MAX as usize);
        let (sql, params) = page_query(&table, self.after.as_deref(), limit);
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let found = client
            .query(&sql, &params)
            .await
            .map_err(|e| classify(connector, &format!("copying {}", table.name), e))?;
        let key_at: Vec<usize> = table
            .key
            .iter()
            .filter_map(|k| table.columns.iter().position(|c| &c.0 == k))
            .collect();
        let mut rows = Rows::new(layout.clone());
        let mut rejects = Vec::new();
        let lsn = i64::try_from(self.slot_lsn).ok();
        for row in &found {
            let texts: Vec<Option<&str>> = (0..row.len()).map(|i| row.get(i)).collect();
            let key: Vec<String> = key_at
                .iter()
                .map(|&i| texts.get(i).copied().flatten().unwrap_or("").to_string())
                .collect();
            match layout.parse_text_row(texts.iter().copied()) {
                Ok(cells) => rows.push(cells, "r", lsn, None),
                Err(error) => rejects.push(Reject {
                    position: format!("{} key ({})", table.name, key.join(", ")),
                    bytes: serde_json::to_vec(&texts).unwrap_or_default(),
                    error,
                }),
            }
            self.after = Some(key);
        }
        if found.len() < limit {
            // The table is done; the next poll starts the next one.
            self.index += 1;
            self.after = None;
            if self.index >= self.tables.len() {
                return self
                    .finish(client, connector, slot, Some(rows), rejects, deletes)
                    .await;
            }
        }
        Ok(Page {
            batch: batch(rows, rejects, self.position(slot), deletes)?,
            finished: false,
        })
    }

    async fn finish(
        &mut self,
        client: &Client,
        connector: &str,
        slot: &str,
        rows: Option<Rows>,
        rejects: Vec<Reject>,
        deletes: DeleteMode,
    ) -> Result<Page> {
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| classify(connector, "ending the snapshot transaction", e))?;
        self.in_transaction = false;
        let rows = match (rows, self.tables.last()) {
            (Some(rows), _) => rows,
            (None, Some(last)) => Rows::new(last.layout()),
            (None, None) => {
                return Ok(Page {
                    batch: SourceBatch::new(
                        arrow::array::RecordBatch::new_empty(Arc::new(
                            arrow::datatypes::Schema::empty(),
                        )),
                        self.position(slot).to_json(),
                    ),
                    finished: true,
                });
            }
        };
        Ok(Page {
            batch: batch(rows, rejects, self.position(slot), deletes)?,
            finished: true,
        })
    }
}

/// The batch of a table's rows.
pub(crate) fn batch(
    rows: Rows,
    rejects: Vec<Reject>,
    position: CdcPosition,
    deletes: DeleteMode,
) -> Result<SourceBatch> {
    let layout = rows.layout().clone();
    let (rows, tombstones) = rows.finish()?;
    Ok(SourceBatch {
        stream: Some(layout.stream.clone()),
        rows,
        tombstones: (deletes == DeleteMode::Tombstone).then(|| BooleanArray::from(tombstones)),
        default_key: layout.key.clone(),
        rejects,
        position: position.to_json(),
    })
}

/// `SELECT cols::text FROM t WHERE (key) > ($1::type, ...) ORDER BY key LIMIT n`.
fn page_query(table: &TableInfo, after: Option<&[String]>, limit: usize) -> (String, Vec<String>) {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|(name, ..)| {
            // concat() renders with the type's output function, as pgoutput does; a
            // `::text` cast would differ (it trims a char(n)'s padding).
            let name = quote_ident(name);
            format!("CASE WHEN {name} IS NULL THEN NULL ELSE concat({name}) END")
        })
        .collect();
    let key: Vec<String> = table.key.iter().map(|k| quote_ident(k)).collect();
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), table.name.quoted());
    let mut params = Vec::new();
    if let Some(after) = after {
        let bounds: Vec<String> = table
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let ty = table
                    .columns
                    .iter()
                    .find(|c| &c.0 == k)
                    .map_or("text", |c| c.3.as_str());
                format!("(${}::text)::{ty}", i + 1)
            })
            .collect();
        sql.push_str(&format!(
            " WHERE ({}) > ({})",
            key.join(", "),
            bounds.join(", ")
        ));
        params = after.to_vec();
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", key.join(", ")));
    (sql, params)
}
