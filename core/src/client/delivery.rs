//! What a `send` hands back: a [`Delivery`], settled when its record's batch is appended.
//!
//! The records of one batch share one [`BatchOutcome`] (the batch's base offset and
//! log-append time, or the error that failed it), set exactly once when the batch is
//! shipped or discarded. A delivery holds the outcome, the record's offset delta in the
//! batch and its timestamp, and builds its [`RecordMetadata`] only when asked: the
//! producer pays for one shared slot per batch, not for a slot and a topic name per record.

use std::sync::{Arc, OnceLock};

use crate::error::Error;

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp as stored (log-append time on LogAppendTime topics).
    pub timestamp: i64,
}

/// Where an appended batch starts, and the time the log stamped on it, if any.
#[derive(Debug, Clone, Copy)]
pub(super) struct Appended {
    pub(super) base_offset: i64,
    pub(super) log_append_time: Option<i64>,
}

/// The outcome of one batch, shared by the deliveries of its records.
#[derive(Debug)]
pub(super) struct BatchOutcome {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) result: OnceLock<std::result::Result<Appended, Arc<Error>>>,
}

impl BatchOutcome {
    pub(super) fn new(topic: &str, partition: i32) -> Arc<BatchOutcome> {
        Arc::new(BatchOutcome {
            topic: topic.to_string(),
            partition,
            result: OnceLock::new(),
        })
    }
}

/// The outcome of one `send`, filled in when its batch is appended.
#[derive(Debug, Clone)]
pub struct Delivery {
    outcome: Arc<BatchOutcome>,
    /// The record's offset relative to its batch's first record.
    offset_delta: i64,
    /// The record's own timestamp (the stored one unless the topic uses log-append time).
    timestamp: i64,
}

impl Delivery {
    pub(super) fn new(outcome: Arc<BatchOutcome>, offset_delta: i64, timestamp: i64) -> Self {
        Delivery {
            outcome,
            offset_delta,
            timestamp,
        }
    }

    /// The record's metadata, or the error that failed its batch; `None` while the batch
    /// is still buffered (call [`Producer::flush`](super::Producer::flush)).
    pub fn result(&self) -> Option<std::result::Result<RecordMetadata, Arc<Error>>> {
        let outcome = &self.outcome;
        Some(match outcome.result.get()? {
            Ok(appended) => Ok(RecordMetadata {
                topic: outcome.topic.clone(),
                partition: outcome.partition,
                offset: appended.base_offset + self.offset_delta,
                timestamp: appended.log_append_time.unwrap_or(self.timestamp),
            }),
            Err(e) => Err(e.clone()),
        })
    }
}
