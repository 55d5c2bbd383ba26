//! What a [`Producer`](super::Producer) holds between sends: per topic, a table of
//! per-partition batches with their idempotent sequences, and the producer-wide state the
//! transactional side shares (`transactions.rs`).
//!
//! Invariants: a batch's records are numbered 0, 1, 2, ... (their offset deltas); a
//! batch is either empty or has `opened` set to the time of its first record, and
//! `State::oldest` is the earliest `opened` of the non-empty batches (or `None`), so a send
//! looks for lingered batches only when one may be due.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::delivery::{Appended, BatchOutcome};
use super::transactions::TxnProducer;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::record::Record;

/// The records buffered for one partition, and its idempotent sequence.
pub(super) struct PartitionBatch {
    /// The sequence of the next batch's first record.
    pub(super) sequence: i32,
    /// Buffered records; their `offset` is their index (the batch's offset deltas).
    pub(super) records: Vec<Record>,
    /// How many records the last shipped batch held: the next batch reserves that many at
    /// its first record, so a busy partition does not regrow its vector batch after
    /// batch, while an idle one holds no memory.
    pub(super) capacity_hint: usize,
    /// Key and value bytes buffered, plus 16 per record: what `batch_bytes` caps.
    pub(super) bytes: usize,
    /// When the first of `records` was buffered.
    pub(super) opened: Instant,
    /// Shared by the deliveries handed out for `records`; made at the first one.
    pub(super) outcome: Option<Arc<BatchOutcome>>,
    /// Whether some of `records` were sent without a delivery (`send_all`): a failure of
    /// the batch is then kept for the next `flush`.
    pub(super) unacked: bool,
}

impl PartitionBatch {
    pub(super) fn new() -> Self {
        PartitionBatch {
            sequence: 0,
            records: Vec::new(),
            capacity_hint: 0,
            bytes: 0,
            opened: Instant::now(),
            outcome: None,
            unacked: false,
        }
    }

    /// Empties the batch, settling its deliveries with `result`.
    pub(super) fn settle(&mut self, result: std::result::Result<Appended, Arc<Error>>) {
        self.capacity_hint = self.records.len();
        self.records = Vec::new();
        self.bytes = 0;
        self.unacked = false;
        if let Some(outcome) = self.outcome.take() {
            let _ = outcome.result.set(result);
        }
    }
}

/// A topic written to.
pub(super) struct TopicBatches {
    pub(super) name: String,
    /// The partition count, read at the first send after each shipped batch of the topic
    /// (partitions may be added), so not once per record.
    pub(super) partitions: Option<i32>,
    /// The partition keyless records stick to; set at the first keyless record.
    pub(super) sticky: Option<i32>,
    /// Indexed by partition, grown to the highest partition written.
    pub(super) batches: Vec<PartitionBatch>,
}

pub(super) struct State {
    pub(super) producer_id: Option<(i64, i16)>,
    pub(super) topics: Vec<TopicBatches>,
    /// Index into `topics` by name.
    pub(super) topic_index: HashMap<String, usize>,
    /// The topic of the last send: most sends go to the same topic as the one before.
    pub(super) last_topic: usize,
    /// The earliest `opened` of the non-empty batches (`None`: nothing is buffered), so a
    /// send looks for lingered batches only when one may be due.
    pub(super) oldest: Option<Instant>,
    /// The first failure of a batch holding records sent without a delivery, reported by
    /// the next `flush` (or `commit_transaction`).
    pub(super) unacked_failure: Option<Arc<Error>>,
    /// The transaction state of a transactional producer.
    pub(super) txn: Option<TxnProducer>,
}

impl State {
    /// Idempotent sequences start again from zero (a new producer id or epoch).
    pub(super) fn reset_sequences(&mut self) {
        for topic in &mut self.topics {
            for batch in &mut topic.batches {
                batch.sequence = 0;
            }
        }
    }

    pub(super) fn recompute_oldest(&mut self) {
        self.oldest = self
            .topics
            .iter()
            .flat_map(|t| &t.batches)
            .filter(|b| !b.records.is_empty())
            .map(|b| b.opened)
            .min();
    }

    /// The index of `topic` in `topics`, added (its partition count read) if new.
    pub(super) fn topic_slot(&mut self, log: &Log, topic: &str) -> Result<usize> {
        if self
            .topics
            .get(self.last_topic)
            .is_some_and(|t| t.name == topic)
        {
            return Ok(self.last_topic);
        }
        let i = match self.topic_index.get(topic) {
            Some(&i) => i,
            None => {
                let partitions = log.partition_count(topic)?;
                self.topics.push(TopicBatches {
                    name: topic.to_string(),
                    partitions: Some(partitions),
                    sticky: None,
                    batches: Vec::new(),
                });
                let i = self.topics.len() - 1;
                self.topic_index.insert(topic.to_string(), i);
                i
            }
        };
        self.last_topic = i;
        Ok(i)
    }
}
