//! `sluice-core`: Sluice's durable, partitioned, append-only log and its embedded clients.
//!
//! # Layout
//!
//! - [`record`]: RecordBatch v2 — header parsing and validation (the hot path), encoding and
//!   decoding through the `kafka-protocol` codec, Kafka's murmur2 partitioner.
//! - [`log`]: the data directory ([`Log`]), topics, partitions, segments with their offset
//!   and time indexes, recovery, retention, compaction, and the [`log::io`] seam that lets
//!   tests inject disk faults.
//! - `txn`: producer ids, idempotent-producer sequence state, per-partition transaction
//!   state and the transaction coordinator (one per open [`Log`], on
//!   `__transaction_state`), shared by the broker and embedded transactional producers.
//! - `group`: committed offsets (on the compacted `__consumer_offsets` topic) and
//!   in-process group membership with the range assignor.
//! - [`client`]: the embedded [`Producer`] and [`Consumer`].
//! - [`broker`]: the log behind the Kafka wire protocol (`sluice serve`).
//! - [`config`]: `sluice.toml` and per-topic settings.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use sluice_core::{ConsumerConfig, Log, NewTopic, ProducerConfig, ProducerRecord, TopicPartition};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path())?;
//! log.create_topic(NewTopic::new("orders", 3))?;
//!
//! let producer = log.producer(ProducerConfig::default())?;
//! let meta = producer.send_and_wait(ProducerRecord::to("orders").key("customer-7").value("42.00"))?;
//!
//! let mut consumer = log.consumer(ConsumerConfig::default());
//! consumer.assign(vec![TopicPartition::new("orders", meta.partition)])?;
//! let records = consumer.poll(Duration::from_secs(1))?;
//! assert_eq!(records[0].value.as_deref(), Some(&b"42.00"[..]));
//! # Ok(()) }
//! ```

#![deny(clippy::unwrap_used)]

pub mod alloc;
pub mod broker;
pub mod client;
pub mod config;
mod error;
mod group;
pub mod log;
pub mod record;
mod txn;

pub use client::{
    Consumer, ConsumerConfig, ConsumerRecord, Delivery, IsolationLevel, OffsetReset, Payload,
    Polled, PolledRecord, Producer, ProducerConfig, ProducerRecord, RecordMetadata, Seek,
    TopicPartition,
};
pub use config::{CleanupPolicy, Config, Durability, LogConfig, TopicConfig};
pub use error::{Error, Result};
pub use group::{CONSUMER_OFFSETS_TOPIC, CommittedOffset, range_assign};
pub use log::{
    AppendInfo, Log, LogOptions, NewTopic, Partition, PartitionInfo, ReadResult, TopicDescription,
};
pub use record::{BatchError, Compression};
pub use txn::{AbortedTxn, TRANSACTION_STATE_TOPIC};

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
