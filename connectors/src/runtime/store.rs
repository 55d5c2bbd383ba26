//! What the runtime keeps in the log: source positions ([`POSITIONS_TOPIC`]) and topic
//! schema entries ([`SCHEMAS_TOPIC`]), both compacted topics keyed by name, read back in
//! full (read_committed: a position written by an aborted transaction never counts).

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_core::{ConsumerConfig, IsolationLevel, Log, NewTopic, Seek, TopicPartition};

use crate::error::{Error, Result};
use crate::schema::{SCHEMAS_TOPIC, SchemaEntry};

/// The compacted topic of source positions: key `<pipeline>/<source>`, value a
/// [`StoredPosition`] as JSON.
pub const POSITIONS_TOPIC: &str = "__sluice_connect_positions";

/// A source position as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredPosition {
    /// The source's position.
    pub position: serde_json::Value,
    /// When it was stored (ms since the epoch).
    pub updated_ms: i64,
    /// Rows written by the source, in all runs.
    #[serde(default)]
    pub records: u64,
}

/// The key of a source's position.
pub fn position_key(pipeline: &str, source: &str) -> String {
    format!("{pipeline}/{source}")
}

/// Creates the runtime's internal topics if missing.
pub fn ensure_internal_topics(log: &Log) -> Result<()> {
    for topic in [POSITIONS_TOPIC, SCHEMAS_TOPIC] {
        log.ensure_topic(
            NewTopic::new(topic, 1)
                .config("cleanup.policy", "compact")
                .config("flush.messages", "1"),
        )?;
    }
    Ok(())
}

/// Every key's last value in a compacted one-partition topic (`None`: deleted).
pub fn read_compacted(log: &Log, topic: &str) -> Result<BTreeMap<String, Option<Vec<u8>>>> {
    let partition = log.partition(topic, 0)?;
    let end = partition.last_stable_offset();
    let mut out = BTreeMap::new();
    if end <= partition.log_start_offset() {
        return Ok(out);
    }
    let mut consumer =
        log.consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted));
    let tp = TopicPartition::new(topic, 0);
    consumer.assign(vec![tp.clone()])?;
    consumer.seek(&tp, Seek::Beginning)?;
    let mut idle = 0;
    while consumer.position(&tp)? < end {
        let records = consumer.poll(Duration::from_millis(50))?;
        if records.is_empty() {
            idle += 1;
            // Aborted data and markers can leave the position short of `end` with nothing
            // left to read; a few empty polls in a row mean we are done.
            if idle > 20 {
                break;
            }
            continue;
        }
        idle = 0;
        for record in records {
            if let Some(key) = record.key {
                out.insert(
                    String::from_utf8_lossy(&key).into_owned(),
                    record.value.map(|v| v.to_vec()),
                );
            }
        }
    }
    Ok(out)
}

/// Stored source positions by key.
pub fn read_positions(log: &Log) -> Result<BTreeMap<String, StoredPosition>> {
    let mut out = BTreeMap::new();
    for (key, value) in read_compacted(log, POSITIONS_TOPIC)? {
        if let Some(value) = value {
            let stored: StoredPosition = serde_json::from_slice(&value).map_err(|e| {
                Error::config(format!(
                    "{POSITIONS_TOPIC}: the position of {key} is unreadable: {e}"
                ))
            })?;
            out.insert(key, stored);
        }
    }
    Ok(out)
}

/// The schema entry of a topic, if a source left one.
pub fn read_schema_entry(log: &Log, topic: &str) -> Result<Option<SchemaEntry>> {
    let entries = read_compacted(log, SCHEMAS_TOPIC)?;
    match entries.get(topic) {
        Some(Some(value)) => serde_json::from_slice(value).map(Some).map_err(|e| {
            Error::config(format!(
                "{SCHEMAS_TOPIC}: the schema entry of {topic} is unreadable: {e}"
            ))
        }),
        _ => Ok(None),
    }
}
