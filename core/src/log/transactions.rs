//! A partition's side of Kafka transactions: the last stable offset, the aborted-transaction
//! index as read_committed Fetch needs it, and appending the markers that end transactions.
//! The state itself is `txn::TxnState`, kept by `Partition::append` (see its `txn` field).

use super::partition::Partition;
use crate::error::Result;
use crate::txn::AbortedTxn;

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

    /// Appends a transaction marker (a control batch: COMMIT if `commit`, else ABORT) for
    /// `producer_id` at `epoch`, ending its transaction in this partition. Returns the
    /// marker's offset. Written by the transaction coordinator, never by producers.
    pub fn append_marker(&self, producer_id: i64, epoch: i16, commit: bool) -> Result<i64> {
        let mut bytes = crate::record::encode_marker(producer_id, epoch, commit, crate::now_ms())?;
        let info = self.append_batches(&mut bytes, Some((producer_id, epoch, commit)))?;
        Ok(info.base_offset)
    }
}
