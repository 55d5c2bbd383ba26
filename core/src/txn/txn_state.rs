//! Per-partition transaction state: which producers have a transaction open here (and the
//! offset of its first batch), and the index of aborted transactions that read_committed
//! fetches hand to clients so they can drop the aborted records.
//!
//! Invariants:
//! - a producer is ongoing from its first transactional data batch (attribute bit 4) to the
//!   next control batch (bit 5) it writes, whatever that marker says;
//! - an ABORT marker closing an ongoing transaction adds `(producer id, first offset, marker
//!   offset)` to the aborted index; COMMIT adds nothing; a marker with no open transaction
//!   (a retried EndTxn, an abort after a restart) changes nothing;
//! - the last stable offset is the smallest first offset of an ongoing transaction, or the
//!   high watermark when there is none: nothing at or past it is served to read_committed.
//!
//! The state is persisted with the producer snapshot and rebuilt on open by replaying the
//! batch headers after it, like the sequence table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::BatchHeader;

/// Kafka's control record type of an abort marker (the key's second i16).
pub(crate) const MARKER_ABORT: i16 = 0;
/// Kafka's control record type of a commit marker.
pub(crate) const MARKER_COMMIT: i16 = 1;

/// One aborted transaction in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    /// The producer that wrote it.
    pub producer_id: i64,
    /// Offset of its first batch in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker that closed it.
    pub last_offset: i64,
}

impl AbortedTxn {
    /// Whether a transactional data batch of `producer_id` at `offset` belongs to this
    /// transaction (and so must not reach a read_committed reader).
    pub fn covers(&self, producer_id: i64, offset: i64) -> bool {
        self.producer_id == producer_id && offset >= self.first_offset && offset < self.last_offset
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxnState {
    /// Producer id -> first offset of its open transaction.
    ongoing: BTreeMap<i64, i64>,
    /// Ascending by `last_offset` (markers are appended in offset order).
    aborted: Vec<AbortedTxn>,
}

impl TxnState {
    /// Accounts for a stored data batch (not a marker).
    pub fn on_data(&mut self, header: &BatchHeader<'_>) {
        if header.attributes().transactional() && !header.attributes().control() {
            self.begin(header.producer_id(), header.base_offset());
        }
    }

    /// Accounts for a transactional data batch of `producer_id` at `offset`.
    pub fn begin(&mut self, producer_id: i64, offset: i64) {
        self.ongoing.entry(producer_id).or_insert(offset);
    }

    /// Accounts for a marker of `producer_id` at `offset`.
    pub fn on_marker(&mut self, producer_id: i64, offset: i64, commit: bool) {
        if let Some(first_offset) = self.ongoing.remove(&producer_id)
            && !commit
        {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
    }

    /// Accounts for any stored batch: data or a marker (whose type is read from its key).
    pub fn on_batch(&mut self, header: &BatchHeader<'_>, raw: &[u8]) {
        if header.attributes().control() {
            if let Some(commit) = marker_is_commit(raw) {
                self.on_marker(header.producer_id(), header.base_offset(), commit);
            }
        } else {
            self.on_data(header);
        }
    }

    /// The last stable offset given the high watermark.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.ongoing
            .values()
            .copied()
            .min()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Aborted transactions overlapping `[fetch_offset, upper_offset)`, as Kafka returns
    /// them in a read_committed fetch.
    pub fn aborted_between(&self, fetch_offset: i64, upper_offset: i64) -> Vec<AbortedTxn> {
        let from = self
            .aborted
            .partition_point(|a| a.last_offset < fetch_offset);
        self.aborted[from..]
            .iter()
            .filter(|a| a.first_offset < upper_offset)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions wholly below `log_start_offset` (deleted by retention).
    pub fn drop_before(&mut self, log_start_offset: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start_offset);
    }

    /// Whether `producer_id` has a transaction open here.
    #[cfg(test)]
    pub fn is_ongoing(&self, producer_id: i64) -> bool {
        self.ongoing.contains_key(&producer_id)
    }
}

/// Reads a control batch's marker type: `Some(true)` for COMMIT, `Some(false)` for ABORT,
/// `None` if the batch is not a readable uncompressed marker.
fn marker_is_commit(raw: &[u8]) -> Option<bool> {
    let records = crate::record::decode_batch(bytes::Bytes::copy_from_slice(raw)).ok()?;
    let key = records.first()?.key.clone()?;
    let kind = i16::from_be_bytes([*key.get(2)?, *key.get(3)?]);
    match kind {
        MARKER_COMMIT => Some(true),
        MARKER_ABORT => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An abort indexes the transaction; a commit does not; LSO tracks the oldest open one.
    #[test]
    fn ongoing_and_aborted() {
        let mut t = TxnState::default();
        t.ongoing.insert(1, 10);
        t.ongoing.insert(2, 12);
        assert_eq!(t.last_stable_offset(20), 10);
        t.on_marker(1, 15, false);
        assert_eq!(t.last_stable_offset(20), 12);
        t.on_marker(2, 16, true);
        assert_eq!(t.last_stable_offset(20), 20);
        assert!(!t.is_ongoing(1));
        assert_eq!(
            t.aborted_between(0, 20),
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 15
            }]
        );
        assert!(t.aborted_between(16, 20).is_empty());
        assert!(t.aborted_between(0, 10).is_empty());
        t.on_marker(3, 17, false);
        assert_eq!(t.aborted_between(0, 20).len(), 1);
    }
}
