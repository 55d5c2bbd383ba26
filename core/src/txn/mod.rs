//! Producer ids and idempotence: the state that lets a partition recognise a retried batch.
//!
//! `txn_state.rs` adds what transactions need per partition: open transactions (for the
//! last stable offset) and the aborted-transaction index.

mod producer_ids;
mod producer_state;
mod txn_state;

pub(crate) use producer_ids::ProducerIdAllocator;
pub(crate) use producer_state::{BatchSeq, ProducerStateTable, SequenceCheck};
pub use txn_state::AbortedTxn;
pub(crate) use txn_state::TxnState;
