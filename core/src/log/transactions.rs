//! A partition's side of Kafka transactions: the last stable offset, what a read_committed
//! reader may see of a read (`stable_part`, shared by the broker's Fetch and the embedded
//! `Consumer`), and appending the markers that end transactions. The state itself is
//! `txn::TxnState`, kept by `Partition::append` (see its `txn` field). The log's
//! transaction coordinator is reached through [`Log::txn_coordinator`].

use std::sync::Arc;

use bytes::Bytes;

use super::dir::Log;
use super::partition::Partition;
use crate::config::Durability;
use crate::error::Result;
use crate::record::BatchHeader;
use crate::txn::{AbortedTxn, TxnCoordinator};

/// Whether a stored batch is a data batch of an aborted transaction (one of `aborted`).
pub(crate) fn is_aborted(header: &BatchHeader<'_>, aborted: &[AbortedTxn]) -> bool {
    header.attributes().transactional()
        && !header.attributes().control()
        && aborted
            .iter()
            .any(|a| a.covers(header.producer_id(), header.base_offset()))
}

/// The whole batches of `records` that end below `lso`, and the offset after the last of
/// them (`None` if there is none). A batch never straddles the LSO: it is a batch's base
/// offset or the high watermark.
fn below_offset(records: Bytes, lso: i64) -> (Bytes, Option<i64>) {
    let mut cut = 0;
    let mut upper = None;
    // Header walk only: the log validated these batches when they were appended.
    while let Some(rest) = records.get(cut..)
        && let Ok(header) = BatchHeader::peek(rest)
        && header.last_offset() < lso
        && header.batch_bytes() <= rest.len()
    {
        cut += header.batch_bytes();
        upper = Some(header.last_offset() + 1);
    }
    (records.slice(..cut), upper)
}

impl Partition {
    /// The last stable offset: the first offset of the oldest open transaction, or the
    /// high watermark when none is open. read_committed consumers read only below it.
    pub fn last_stable_offset(&self) -> i64 {
        let txn = self.txn.lock();
        txn.last_stable_offset(self.log_end_offset())
    }

    /// Aborted transactions overlapping `[fetch_offset, upper_offset)` as
    /// `(producer id, first offset)`, what a read_committed Fetch returns with its records.
    pub fn aborted_transactions(&self, fetch_offset: i64, upper_offset: i64) -> Vec<(i64, i64)> {
        self.aborted_transactions_full(fetch_offset, upper_offset)
            .into_iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Like [`aborted_transactions`](Self::aborted_transactions), with the marker offsets.
    pub fn aborted_transactions_full(
        &self,
        fetch_offset: i64,
        upper_offset: i64,
    ) -> Vec<AbortedTxn> {
        let start = self.log_start_offset();
        self.txn
            .lock()
            .aborted_between(fetch_offset.max(start), upper_offset)
    }

    /// What a read_committed reader may see of `records`, read from `fetch_offset` after
    /// `lso` was taken (read the LSO first: taken later, it could pass batches the read
    /// missed): the whole batches below `lso`, and the aborted transactions overlapping
    /// them, whose data batches the reader must drop (see [`AbortedTxn::covers`]). Control
    /// batches stay in; readers skip them.
    pub fn stable_part(
        &self,
        records: Bytes,
        fetch_offset: i64,
        lso: i64,
    ) -> (Bytes, Vec<AbortedTxn>) {
        let (stable, upper) = below_offset(records, lso);
        let aborted = match upper {
            Some(upper) => self.aborted_transactions_full(fetch_offset, upper),
            None => Vec::new(),
        };
        (stable, aborted)
    }

    /// Appends a transaction marker (a control batch: COMMIT if `commit`, else ABORT) for
    /// `producer_id` at `epoch`, ending its transaction in this partition. Returns the
    /// marker's offset. Written by the transaction coordinator, never by producers.
    ///
    /// Under `Interval` durability the marker is fsynced before this returns (`Sync` does
    /// it in the append): the coordinator then records the transaction as ended, and a
    /// marker lost to a power cut after that would leave the transaction open here with
    /// nobody left to end it, holding the last stable offset forever.
    pub fn append_marker(&self, producer_id: i64, epoch: i16, commit: bool) -> Result<i64> {
        let mut bytes = crate::record::encode_marker(producer_id, epoch, commit, crate::now_ms())?;
        let info = self.append_batches(&mut bytes, Some((producer_id, epoch, commit)), false)?;
        if matches!(self.config().durability, Durability::Interval(_)) {
            self.sync()?;
        }
        Ok(info.base_offset)
    }
}

impl Log {
    /// The log's transaction coordinator, loaded from `__transaction_state` (created if
    /// needed) on first use; the broker and every embedded producer share it.
    pub(crate) fn txn_coordinator(&self) -> Result<Arc<TxnCoordinator>> {
        self.check_open()?;
        let mut slot = self.inner.txn.lock();
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = Arc::new(TxnCoordinator::load(self)?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Aborts every transaction open past its timeout now; returns how many. The
    /// background thread does this every tick (at least once a second); a log opened
    /// without it (`LogOptions::background(false)`) relies on this call.
    pub fn expire_transactions(&self) -> Result<usize> {
        self.check_open()?;
        let coordinator = self.inner.txn.lock().clone();
        Ok(coordinator.map_or(0, |c| c.expire(crate::now_ms())))
    }
}
