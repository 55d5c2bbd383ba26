//! Kafka transactions over the wire: the transaction APIs (`handlers.rs`: InitProducerId
//! with a transactional id, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn)
//! in front of the log's transaction coordinator (`crate::txn::TxnCoordinator`, shared with
//! embedded producers; the log's background thread enforces transaction timeouts).
//!
//! The partition side (open transactions, last stable offset, aborted index, markers) is
//! in `log::Partition` and `txn::TxnState`; read_committed Fetch is in `fetch.rs`.

mod handlers;

pub use crate::txn::TRANSACTION_STATE_TOPIC;
pub(crate) use handlers::{
    add_offsets_to_txn, add_partitions_to_txn, end_txn, init_transactional_producer,
    txn_offset_commit,
};

use std::sync::Arc;
use std::time::Duration;

use crate::txn::TxnCoordinator;

/// How often the timer looks for transactions past their timeout.
const EXPIRY_INTERVAL: Duration = Duration::from_millis(500);

/// Aborts transactions past their timeout until the task is aborted at shutdown. Only
/// for a log opened without its background thread, which otherwise does this.
pub(crate) async fn run_timer(coordinator: Arc<TxnCoordinator>) {
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let c = coordinator.clone();
        // Markers are fsynced log writes: keep them off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || c.expire(crate::now_ms())).await;
    }
}
