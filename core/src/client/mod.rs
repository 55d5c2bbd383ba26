//! The embedded client API: a batching [`Producer`] (transactional with a transactional
//! id: `transactions.rs`) and a [`Consumer`] that is assigned partitions or joins a group
//! and reads committed or uncommitted, over a [`Log`](crate::Log) in the same process.

mod batches;
mod consumer;
mod delivery;
mod groups;
mod polled;
mod producer;
mod transactions;

pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetReset, Seek};
pub use polled::{Polled, PolledRecord};
pub use producer::{Delivery, Payload, Producer, ProducerConfig, ProducerRecord, RecordMetadata};

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// Names a partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
