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

use bytes::BytesMut;

use super::delivery::{Appended, BatchOutcome};
use super::transactions::TxnProducer;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::record::{BatchBuilder, Compression, ProducerStamp};

/// The records buffered for one partition, and its idempotent sequence.
pub(super) struct PartitionBatch {
    /// The sequence of the next batch's first record.
    pub(super) sequence: i32,
    /// The buffered records, encoded; their offset deltas are their places (0, 1, ...).
    pub(super) builder: BatchBuilder,
    /// Bytes the last shipped batch took, and an eighth more: the next batch reserves
    /// that at its first record, so a busy partition does not regrow its buffer batch
    /// after batch, while an idle one holds no memory.
    pub(super) capacity_hint: usize,
    /// When the first of the buffered records was.
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
            builder: BatchBuilder::new(),
            capacity_hint: 0,
            opened: Instant::now(),
            outcome: None,
            unacked: false,
        }
    }

    /// The buffered records as one batch, leaving none buffered.
    pub(super) fn finish(
        &mut self,
        compression: Compression,
        stamp: ProducerStamp,
    ) -> Result<BytesMut> {
        let size = self.builder.size();
        self.capacity_hint = size + size / 8;
        self.builder.finish(0, compression, stamp)
    }

    /// Empties the batch, settling its deliveries with `result`.
    pub(super) fn settle(&mut self, result: std::result::Result<Appended, Arc<Error>>) {
        self.builder = BatchBuilder::new();
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
            .filter(|b| !b.builder.is_empty())
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
