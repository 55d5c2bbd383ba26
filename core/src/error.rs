//! The error type of `sluice-core`.
//!
//! Every variant carries the context a user needs to act on it (topic, partition, offset,
//! path) and its message says what went wrong and, where there is one, what to do.

use std::path::PathBuf;

use crate::record::BatchError;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log and its embedded clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record batch handed to the log failed validation; nothing of it was written.
    #[error("invalid record batch for {topic}-{partition}: {source}")]
    InvalidBatch {
        /// Topic the batch was meant for.
        topic: String,
        /// Partition the batch was meant for.
        partition: i32,
        /// What was wrong with it.
        #[source]
        source: BatchError,
    },

    /// A batch could not be decoded while reading.
    #[error("corrupt record batch in {topic}-{partition} at offset {offset}: {reason}")]
    CorruptRead {
        /// Topic read from.
        topic: String,
        /// Partition read from.
        partition: i32,
        /// Base offset of the batch that failed to decode.
        offset: i64,
        /// What the decoder said.
        reason: String,
    },

    /// The topic does not exist.
    #[error("unknown topic '{topic}': create it first (sluice topics create {topic})")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
    },

    /// The partition does not exist in an existing topic.
    #[error("topic '{topic}' has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: i32,
    },

    /// A topic with this name already exists.
    #[error("topic '{topic}' already exists")]
    TopicExists {
        /// The topic.
        topic: String,
    },

    /// A topic name breaks Kafka's naming rules.
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A topic's partition count can only grow.
    #[error(
        "topic '{topic}' has {current} partitions and {requested} is not more: partitions can be added but never removed"
    )]
    PartitionCountNotIncreased {
        /// The topic.
        topic: String,
        /// Its partition count.
        current: i32,
        /// The count asked for.
        requested: i32,
    },

    /// A setting (from `sluice.toml`, a topic config or an API call) is invalid.
    #[error("invalid setting {key} = {value:?}: {reason}")]
    InvalidConfig {
        /// The setting's name, e.g. `retention.ms` or `log.segment_bytes`.
        key: String,
        /// The rejected value.
        value: String,
        /// Why it was rejected and what is accepted.
        reason: String,
    },

    /// A request argument is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An offset outside the partition's current range was requested.
    #[error(
        "offset {offset} is out of range for {topic}-{partition} (valid: {log_start_offset}..={log_end_offset})"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset asked for.
        offset: i64,
        /// First offset still in the log.
        log_start_offset: i64,
        /// The offset the next record will get.
        log_end_offset: i64,
    },

    /// An earlier fsync failed, so this partition no longer accepts writes.
    ///
    /// After a failed fsync the kernel may have dropped dirty pages: retrying the fsync can
    /// succeed without the data being on disk. The only safe answer is to stop acknowledging.
    #[error(
        "partition {topic}-{partition} is poisoned by an earlier I/O failure ({cause}); it accepts no more writes until the log is reopened"
    )]
    Poisoned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The original failure.
        cause: String,
    },

    /// An I/O operation failed.
    #[error("{op} {path}: {source}{hint}", path = path.display(), hint = io_hint(source))]
    Io {
        /// What was being done, e.g. "append to".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Committed data on disk failed validation; the partition refuses to open rather than
    /// silently drop what follows.
    #[error(
        "corrupt log {path} at byte {position}: {reason}; valid batches follow, so this is not a torn tail and the partition will not open (restore the file from a backup, or move it aside to discard its data)",
        path = path.display()
    )]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the bad batch within the file.
        position: u64,
        /// What was wrong.
        reason: String,
    },

    /// An idempotent producer's batch skipped sequence numbers.
    #[error(
        "out-of-order sequence for producer {producer_id} on {topic}-{partition}: expected {expected}, got {received}"
    )]
    OutOfOrderSequence {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The producer.
        producer_id: i64,
        /// The sequence the log expected next.
        expected: i32,
        /// The batch's base sequence.
        received: i32,
    },

    /// A producer with an older epoch tried to write after a newer one registered.
    #[error(
        "producer {producer_id} epoch {epoch} is fenced on {topic}-{partition}: epoch {current_epoch} has taken over"
    )]
    ProducerFenced {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The producer.
        producer_id: i64,
        /// The epoch it wrote with.
        epoch: i16,
        /// The newest epoch the log has seen.
        current_epoch: i16,
    },

    /// A transactional producer was fenced: another producer called `init_transactions`
    /// with the same transactional id (its open transaction was aborted).
    #[error(
        "transactional producer '{transactional_id}' (producer id {producer_id}, epoch {epoch}) is fenced: another producer with the same transactional id called init_transactions, and its open transaction was aborted; drop this producer, only the newer one may write"
    )]
    TransactionalIdFenced {
        /// The transactional id.
        transactional_id: String,
        /// The fenced producer's id.
        producer_id: i64,
        /// The fenced producer's epoch.
        epoch: i16,
    },

    /// A transaction stayed open longer than its timeout and the log aborted it.
    #[error(
        "the transaction of '{transactional_id}' was open longer than its timeout ({timeout_ms} ms) and was aborted; call abort_transaction() and redo the work in a new transaction (or raise ProducerConfig::transaction_timeout)"
    )]
    TransactionTimedOut {
        /// The transactional id.
        transactional_id: String,
        /// The timeout it exceeded.
        timeout_ms: i64,
    },

    /// A transactional call was made in the wrong state (e.g. `send` before
    /// `begin_transaction`, `commit_transaction` after a failed send).
    #[error("invalid transaction state for '{transactional_id}': {reason}")]
    InvalidTxnState {
        /// The transactional id (empty for a producer without one).
        transactional_id: String,
        /// What was wrong and what to call instead.
        reason: String,
    },

    /// The transaction coordinator could not record a step of a transaction (the log
    /// has the underlying error). A commit or abort already prepared is finished by the
    /// coordinator later (its next timeout pass, or the next open of the log).
    #[error(
        "the transaction coordinator failed for '{transactional_id}': {reason}; see the log's error messages for the cause, then retry or abort the transaction"
    )]
    TransactionCoordinator {
        /// The transactional id.
        transactional_id: String,
        /// What the coordinator answered.
        reason: String,
    },

    /// The log has been closed.
    #[error("the log is closed")]
    Closed,

    /// A network operation of the broker failed.
    #[error("{op} {addr}: {source}")]
    Network {
        /// What was being done, e.g. "listen on".
        op: &'static str,
        /// The address involved.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

fn io_hint(error: &std::io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(libc::ENOSPC) => {
            " (the disk is full: free space and retry; nothing acknowledged was lost)"
        }
        Some(libc::EDQUOT) => " (disk quota exceeded: raise the quota or free space and retry)",
        Some(libc::EROFS) => " (the file system is read-only: remount it read-write and retry)",
        Some(libc::EACCES) | Some(libc::EPERM) => {
            " (permission denied: check the data directory's owner and mode)"
        }
        _ => "",
    }
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
