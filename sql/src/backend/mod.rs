//! Where the records of topic tables live: the embedded log of a data directory
//! ([`Backend::Log`]), or a Kafka-compatible cluster reached through librdkafka
//! ([`Backend::Kafka`], `sluice sql --bootstrap`). The catalog, scans and INSERT go through
//! the same few operations on either:
//!
//! - topics: does one exist, create one;
//! - a scan's plan: each partition's offset range under the pushed-down bounds, read as a
//!   read_committed consumer sees it (up to the last stable offset; a `_timestamp` lower
//!   bound found through the time index, or the broker's ListOffsets by timestamp);
//! - reading one partition's range ([`PartitionReader`]);
//! - writing records and waiting until they are durably accepted ([`Writer`]).
//!
//! Invariant: a scan's ranges are fixed when it is planned (and printed by EXPLAIN), on
//! either backend, so records appended later are not read and a scan always ends.

mod kafka;

use std::sync::Arc;

use sluice_core::record::RecordRef;
use sluice_core::{Log, NewTopic, Producer, ProducerConfig, ProducerRecord};

pub use kafka::Kafka;
use kafka::{KafkaReader, KafkaWriter};

use crate::Result;
use crate::provider::pushdown::ScanBounds;
use crate::read::RangeReader;

/// Where topic tables' records live: see the module docs.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded log of a data directory.
    Log(Log),
    /// A Kafka-compatible cluster: a `sluice serve` broker, or any Kafka.
    Kafka(Arc<Kafka>),
}

/// One partition's share of a scan: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionRange {
    /// The partition.
    pub(crate) partition: i32,
    /// First offset to read.
    pub(crate) start: i64,
    /// One past the last offset to read.
    pub(crate) end: i64,
}

impl Backend {
    /// A Kafka-compatible cluster at `bootstrap` (`HOST:PORT`, comma-separated for
    /// several). Fails if no broker answers.
    pub fn kafka(bootstrap: &str) -> Result<Self> {
        Ok(Self::Kafka(Arc::new(Kafka::connect(bootstrap)?)))
    }

    /// What the backend is, for banners and messages: a data directory or a broker list.
    pub fn describe(&self) -> String {
        match self {
            Self::Log(log) => log.dir().display().to_string(),
            Self::Kafka(kafka) => kafka.bootstrap().to_string(),
        }
    }

    /// Creates `topic` with `partitions` partitions and the given topic configs, unless it
    /// exists already.
    pub(crate) fn ensure_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        match self {
            Self::Log(log) => {
                let mut new = NewTopic::new(topic, partitions);
                for (key, value) in configs {
                    new = new.config(*key, *value);
                }
                log.ensure_topic(new)?;
                Ok(())
            }
            Self::Kafka(kafka) => kafka.ensure_topic(topic, partitions, configs),
        }
    }

    /// Each partition's offset range to read under `bounds`, as the topic is now.
    pub(crate) fn plan_ranges(
        &self,
        topic: &str,
        bounds: &ScanBounds,
    ) -> Result<Vec<PartitionRange>> {
        match self {
            Self::Log(log) => plan_log_ranges(log, topic, bounds),
            Self::Kafka(kafka) => kafka.plan_ranges(topic, bounds),
        }
    }

    /// A reader of one planned range.
    pub(crate) fn reader(&self, topic: &str, range: PartitionRange) -> Result<PartitionReader> {
        Ok(match self {
            Self::Log(log) => {
                let partition = log.partition(topic, range.partition)?;
                PartitionReader::Log(RangeReader::new(partition, range.start, range.end))
            }
            Self::Kafka(kafka) => PartitionReader::Kafka(Box::new(kafka.reader(topic, range)?)),
        })
    }

    /// A writer of records (INSERT, the catalog).
    pub(crate) fn writer(&self) -> Result<Writer> {
        Ok(match self {
            Self::Log(log) => Writer::Log(Box::new(log.producer(ProducerConfig::default())?)),
            Self::Kafka(kafka) => Writer::Kafka(kafka.writer()?),
        })
    }
}

/// The embedded log's side of [`Backend::plan_ranges`].
fn plan_log_ranges(log: &Log, topic: &str, bounds: &ScanBounds) -> Result<Vec<PartitionRange>> {
    let count = log.partition_count(topic)?;
    let mut ranges = Vec::new();
    for id in 0..count {
        if !bounds.includes_partition(id) {
            continue;
        }
        let partition = log.partition(topic, id)?;
        let (start, end) =
            bounds.offset_range(partition.log_start_offset(), partition.last_stable_offset());
        let start = match bounds.timestamp_min_ms {
            // Every record before this offset is older than `ms` (the time index keeps the
            // running maximum timestamp), so skipping them loses nothing.
            Some(ms) => match partition.offset_for_timestamp(ms)? {
                Some(offset) => start.max(offset),
                None => end,
            },
            None => start,
        };
        ranges.push(PartitionRange {
            partition: id,
            start: start.min(end),
            end,
        });
    }
    Ok(ranges)
}

/// Reads one partition's planned range, a chunk at a time: see [`visit_next`](Self::visit_next).
pub(crate) enum PartitionReader {
    /// From the embedded log.
    Log(RangeReader),
    /// From a broker, through a librdkafka consumer.
    Kafka(Box<KafkaReader>),
}

impl PartitionReader {
    /// Hands the next records of the range to `visit`, in offset order, until it returns
    /// `Ok(false)`; `Ok(false)` once the range is done (or `visit` said stop), `Ok(true)`
    /// while there may be more.
    pub(crate) fn visit_next(
        &mut self,
        visit: impl FnMut(&RecordRef<'_>) -> Result<bool>,
    ) -> Result<bool> {
        match self {
            Self::Log(reader) => reader.visit_next(visit),
            Self::Kafka(reader) => reader.visit_next(visit),
        }
    }
}

/// Writes records: [`send_all`](Self::send_all), then [`flush`](Self::flush) to wait
/// until every record is durably accepted (or learn the first failure).
pub(crate) enum Writer {
    /// An embedded producer.
    Log(Box<Producer>),
    /// A librdkafka producer.
    Kafka(KafkaWriter),
}

impl Writer {
    /// Queues `records` (blocking while the producer's buffer is full).
    pub(crate) fn send_all(&self, records: Vec<ProducerRecord>) -> Result<()> {
        match self {
            Self::Log(producer) => Ok(producer.send_all(records)?),
            Self::Kafka(writer) => writer.send_all(records),
        }
    }

    /// Waits until everything sent is accepted; the first failure, if any.
    pub(crate) fn flush(&self) -> Result<()> {
        match self {
            Self::Log(producer) => Ok(producer.flush()?),
            Self::Kafka(writer) => writer.flush(),
        }
    }
}
