//! Sluice: stream processing with a built-in, Kafka-compatible log.
//!
//! This facade re-exports the layers a user programs against:
//! - [`core`] (`sluice-core`): the durable, partitioned log and its embedded
//!   [`Producer`](core::Producer) / [`Consumer`](core::Consumer).
//! - [`streams`] (`sluice-streams`): the Kafka-Streams-style DSL, its runtime and state.
//!
//! Later layers (SQL, connectors) join as their crates arrive.
//!
//! ```
//! use sluice::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path())?;
//! log.create_topic(NewTopic::new("events", 1))?;
//! let producer = log.producer(ProducerConfig::default())?;
//! let meta = producer.send_and_wait(ProducerRecord::to("events").value("hello"))?;
//! assert_eq!(meta.offset, 0);
//! # Ok(()) }
//! ```

pub use sluice_core as core;
pub use sluice_streams as streams;

/// The names most programs need.
pub mod prelude {
    pub use sluice_core::{
        Compression, Consumer, ConsumerConfig, ConsumerRecord, Durability, Log, LogConfig,
        LogOptions, NewTopic, OffsetReset, Producer, ProducerConfig, ProducerRecord,
        RecordMetadata, Seek, TopicPartition,
    };
    pub use sluice_streams::prelude::*;
}
