//! What the transaction coordinator keeps per transactional id: the JSON value stored on
//! `__transaction_state` under the id (see `coordinator.rs` for how it changes).
//!
//! Fields added after the first release carry `#[serde(default)]`, so state written by an
//! older Sluice still loads.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Where a transactional id's current transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Phase {
    /// No transaction open.
    Empty,
    /// Partitions or offsets were added; EndTxn or the timeout will end it.
    Ongoing,
    /// Committing: markers and offsets are being written.
    PrepareCommit,
    /// Aborting: markers are being written.
    PrepareAbort,
}

/// An offset commit staged by TxnOffsetCommit, applied only if the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StagedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: String,
}

/// One transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxnMeta {
    pub producer_id: i64,
    pub epoch: i16,
    /// The epoch before the coordinator bumped it on a timeout: the producer may still
    /// present it to InitProducerId to get a new epoch (KIP-360), and nobody else may.
    pub prev_epoch: i16,
    pub timeout_ms: i32,
    pub phase: Phase,
    /// When the current transaction began (ms since the epoch), for the timeout.
    pub started_ms: i64,
    pub partitions: BTreeSet<(String, i32)>,
    /// Group id -> offsets staged for it.
    pub offsets: BTreeMap<String, Vec<StagedOffset>>,
    /// The current epoch belongs to an embedded producer of the process that had the log
    /// open. Such a producer cannot outlive that process (the data directory's lock), so a
    /// transaction of it still open when the log is next opened is aborted at once instead
    /// of waiting for its timeout. Kafka clients (through the broker) may outlive a broker
    /// restart and keep their transaction.
    #[serde(default)]
    pub in_process: bool,
}
