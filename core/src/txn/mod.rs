//! Producer ids, idempotence and transactions: the state that lets a partition recognise a
//! retried batch, and the coordinator that runs transactions across partitions.
//!
//! `txn_state.rs` adds what transactions need per partition: open transactions (for the
//! last stable offset) and the aborted-transaction index. `coordinator.rs` (state per
//! transactional id in `txn_meta.rs`) fences producers, writes the markers that end
//! transactions and applies their offsets; one per open `Log`, shared by the broker's
//! transaction APIs and the embedded transactional `Producer`.

mod coordinator;
#[cfg(test)]
mod coordinator_tests;
mod producer_ids;
mod producer_state;
mod txn_meta;
mod txn_state;

pub use coordinator::TRANSACTION_STATE_TOPIC;
pub(crate) use coordinator::{StagedOffset, TRANSACTION_MAX_TIMEOUT_MS, TxnCoordinator};
pub(crate) use producer_ids::ProducerIdAllocator;
pub(crate) use producer_state::{BatchSeq, ProducerStateTable, SequenceCheck};
pub use txn_state::AbortedTxn;
pub(crate) use txn_state::TxnState;
