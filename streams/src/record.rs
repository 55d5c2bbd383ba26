//! Records as they flow through a topology, and the raw records that enter and leave it.

use bytes::Bytes;

/// A header of a record: a name and an optional value (Kafka's null header value).
pub type Header = sluice_core::record::Header;

/// A typed record inside a topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Event time in ms since the epoch (from the timestamp extractor).
    pub timestamp: i64,
    /// Headers, passed through unchanged unless a processor edits them.
    pub headers: Vec<Header>,
}

impl<K, V> Record<K, V> {
    /// A record with no headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record {
            key,
            value,
            timestamp,
            headers: Vec::new(),
        }
    }
}

/// A raw record read from an input topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The record's own timestamp (ms).
    pub timestamp: i64,
    /// Key bytes.
    pub key: Option<Bytes>,
    /// Value bytes (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

impl From<sluice_core::ConsumerRecord> for InputRecord {
    fn from(r: sluice_core::ConsumerRecord) -> Self {
        InputRecord {
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
        }
    }
}

/// A raw record a task wants written: job output, a repartition record or a changelog
/// entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    /// Topic.
    pub topic: String,
    /// The partition, when the task chose one (changelogs, custom partitioners); otherwise
    /// the producer's key hash picks it, as Kafka's default partitioner does.
    pub partition: Option<i32>,
    /// Key bytes.
    pub key: Option<Bytes>,
    /// Value bytes (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Headers.
    pub headers: Vec<Header>,
}
