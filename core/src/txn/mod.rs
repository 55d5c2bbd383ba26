//! Producer ids and idempotence: the state that lets a partition recognise a retried batch.
//!
//! Transactions (markers, last stable offset, aborted-transaction index) build on this in
//! the broker issue.

mod producer_ids;
mod producer_state;

pub(crate) use producer_ids::ProducerIdAllocator;
pub(crate) use producer_state::{BatchSeq, ProducerStateTable, SequenceCheck};
