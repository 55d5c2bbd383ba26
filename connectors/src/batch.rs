//! What flows through a pipeline: Arrow record batches, with the positions and offsets
//! that make resuming exact.
//!
//! A source hands the runtime a [`SourceBatch`]: rows, the rows it could not read
//! ([`Reject`]s, for the pipeline's `on_error`), and the [`Position`] to resume from once
//! they are in the log. A sink gets a [`SinkBatch`]: one topic's records in offset order as
//! [`SinkOp`]s (runs of upserts, runs of deletes), then is asked to [commit](crate::Sink::commit)
//! the [`Offsets`] consumed so far.

use std::collections::BTreeMap;

use arrow::array::{BooleanArray, RecordBatch};

/// Where a source resumes: whatever the source needs (a file and byte offset, the last id
/// and timestamp seen, a replication LSN), as JSON. Stored in the log, in the topic
/// [`POSITIONS_TOPIC`](crate::runtime::POSITIONS_TOPIC).
pub type Position = serde_json::Value;

/// Next offsets to read, per (topic, partition): what a sink has consumed.
pub type Offsets = BTreeMap<(String, i32), i64>;

/// One poll's worth of a source's rows.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// Which of the source's streams the rows belong to (a table, a file), for topic
    /// templates (`topic = "cdc.{stream}"`); `None` for single-stream sources.
    pub stream: Option<String>,
    /// The rows, in source order.
    pub rows: RecordBatch,
    /// Per row: `true` follows the row with a tombstone (its key, no value): a deleted row
    /// from change data capture, which upsert sinks then delete. `None`: no tombstones.
    pub tombstones: Option<BooleanArray>,
    /// The fields forming the record key when the pipeline file names none (a table's
    /// primary key). Empty: no key.
    pub default_key: Vec<String>,
    /// What the source could not read in this stretch.
    pub rejects: Vec<Reject>,
    /// Where to resume once these rows (and rejects) are in the log.
    pub position: Position,
}

impl SourceBatch {
    /// A batch of plain rows from a single-stream source.
    pub fn new(rows: RecordBatch, position: Position) -> SourceBatch {
        SourceBatch {
            stream: None,
            rows,
            tombstones: None,
            default_key: Vec::new(),
            rejects: Vec::new(),
            position,
        }
    }
}

/// A record a source or the runtime could not read or convert.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Where it came from, for people: `orders.csv:17`, `orders/2@1040`.
    pub position: String,
    /// Its original bytes (dead-lettered as they were).
    pub bytes: Vec<u8>,
    /// What was wrong.
    pub error: String,
}

/// A poll's answer.
#[derive(Debug)]
// A batch is the common answer; boxing it would cost an allocation per poll.
#[allow(clippy::large_enum_variant)]
pub enum Poll {
    /// Rows (possibly zero rows with rejects or a moved position).
    Batch(SourceBatch),
    /// Nothing new now; poll again after the source's poll interval.
    Idle,
    /// A bounded source has read everything (a file read once, a bulk table copy).
    Done,
}

/// A run of one topic's records, in offset order.
#[derive(Debug, Clone)]
pub enum SinkOp {
    /// Rows to write (insert, or upsert on the sink's key).
    Upsert(RecordBatch),
    /// Tombstones: the key columns of rows to delete.
    Delete(RecordBatch),
}

impl SinkOp {
    /// The rows of the run.
    pub fn rows(&self) -> &RecordBatch {
        match self {
            SinkOp::Upsert(rows) | SinkOp::Delete(rows) => rows,
        }
    }
}

/// Records of one topic, decoded and transformed, for a sink.
#[derive(Debug, Clone)]
pub struct SinkBatch {
    /// The topic they came from.
    pub topic: String,
    /// Upsert and delete runs in offset order.
    pub ops: Vec<SinkOp>,
    /// Bytes of the records as read from the log (for progress).
    pub bytes: u64,
}

impl SinkBatch {
    /// Rows in all runs.
    pub fn num_rows(&self) -> usize {
        self.ops.iter().map(|op| op.rows().num_rows()).sum()
    }
}
