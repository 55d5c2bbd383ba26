//! Committed offsets per (group, topic, partition), stored in the compacted internal topic
//! `__consumer_offsets` (as Kafka does) with `flush.messages=1`, so an acknowledged commit is
//! fsynced. The topic is read once at open into a map; commits append and update the map.
//!
//! Record format (JSON, so `sluice consume __consumer_offsets` is readable):
//! key `{"group":G,"topic":T,"partition":P}`, value
//! `{"offset":O,"metadata":M,"commit_timestamp":MS}`, or a null value (tombstone) when the
//! group's offsets are deleted.

use std::collections::BTreeMap;

use bytes::Bytes;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::log::{Log, NewTopic};
use crate::record::{Compression, Record, encode_batch};

/// Name of the internal topic holding committed offsets.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct OffsetKey {
    group: String,
    topic: String,
    partition: i32,
}

/// A committed position: the offset of the next record the group will read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// Next offset to consume.
    pub offset: i64,
    /// Free-form metadata the committer attached.
    #[serde(default)]
    pub metadata: String,
    /// When the commit was made (ms since epoch).
    pub commit_timestamp: i64,
}

#[derive(Default)]
pub(crate) struct GroupOffsets {
    committed: RwLock<BTreeMap<OffsetKey, CommittedOffset>>,
}

impl GroupOffsets {
    /// Creates the internal topic if needed and loads every committed offset.
    pub fn load(&self, log: &Log) -> Result<()> {
        log.ensure_topic(
            NewTopic::new(CONSUMER_OFFSETS_TOPIC, 1)
                .config("cleanup.policy", "compact")
                .config("flush.messages", "1")
                .config("segment.bytes", (64 << 20).to_string()),
        )?;
        let partition = log.partition(CONSUMER_OFFSETS_TOPIC, 0)?;
        let mut map = BTreeMap::new();
        partition.replay_records(|record| {
            let Some(key) = record
                .key
                .as_deref()
                .and_then(|k| serde_json::from_slice::<OffsetKey>(k).ok())
            else {
                return;
            };
            match record
                .value
                .as_deref()
                .map(serde_json::from_slice::<CommittedOffset>)
            {
                Some(Ok(value)) => {
                    map.insert(key, value);
                }
                Some(Err(_)) => {}
                None => {
                    map.remove(&key);
                }
            }
        })?;
        *self.committed.write() = map;
        Ok(())
    }

    /// Durably commits offsets for a group; all or nothing (one batch).
    pub fn commit(
        &self,
        log: &Log,
        group: &str,
        offsets: &[(String, i32, i64, String)],
    ) -> Result<()> {
        if group.is_empty() {
            return Err(Error::InvalidArgument("a group id cannot be empty".into()));
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let now = crate::now_ms();
        let mut entries = Vec::with_capacity(offsets.len());
        for (topic, partition, offset, metadata) in offsets {
            log.partition(topic, *partition)?;
            if *offset < 0 {
                return Err(Error::InvalidArgument(format!(
                    "cannot commit negative offset {offset} for {topic}-{partition}"
                )));
            }
            entries.push((
                OffsetKey {
                    group: group.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                },
                Some(CommittedOffset {
                    offset: *offset,
                    metadata: metadata.clone(),
                    commit_timestamp: now,
                }),
            ));
        }
        self.write(log, entries)
    }

    fn write(&self, log: &Log, entries: Vec<(OffsetKey, Option<CommittedOffset>)>) -> Result<()> {
        let now = crate::now_ms();
        let records: Vec<Record> = entries
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                offset: i as i64,
                timestamp: now,
                key: Some(Bytes::from(serde_json::to_vec(key).unwrap_or_default())),
                value: value
                    .as_ref()
                    .map(|v| Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
                headers: Vec::new(),
            })
            .collect();
        let mut batch = encode_batch(&records, Compression::None, Default::default())?;
        log.append(CONSUMER_OFFSETS_TOPIC, 0, &mut batch)?;
        let mut map = self.committed.write();
        for (key, value) in entries {
            match value {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    /// The group's committed offset for a partition.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.committed
            .read()
            .get(&OffsetKey {
                group: group.to_string(),
                topic: topic.to_string(),
                partition,
            })
            .cloned()
    }

    /// Groups with at least one committed offset.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self
            .committed
            .read()
            .keys()
            .map(|k| k.group.clone())
            .collect();
        groups.dedup();
        groups
    }

    /// Every committed offset of a group: (topic, partition) -> offset.
    pub fn group_offsets(&self, group: &str) -> BTreeMap<(String, i32), CommittedOffset> {
        self.committed
            .read()
            .iter()
            .filter(|(k, _)| k.group == group)
            .map(|(k, v)| ((k.topic.clone(), k.partition), v.clone()))
            .collect()
    }

    /// Deletes a group's committed offsets (tombstones).
    pub fn delete_group(&self, log: &Log, group: &str) -> Result<usize> {
        let keys: Vec<OffsetKey> = self
            .committed
            .read()
            .keys()
            .filter(|k| k.group == group)
            .cloned()
            .collect();
        let n = keys.len();
        if n > 0 {
            self.write(log, keys.into_iter().map(|k| (k, None)).collect())?;
        }
        Ok(n)
    }

    /// Drops commits for a deleted topic.
    pub fn forget_topic(&self, log: &Log, topic: &str) -> Result<()> {
        let keys: Vec<OffsetKey> = self
            .committed
            .read()
            .keys()
            .filter(|k| k.topic == topic)
            .cloned()
            .collect();
        if keys.is_empty() || topic == CONSUMER_OFFSETS_TOPIC {
            return Ok(());
        }
        self.write(log, keys.into_iter().map(|k| (k, None)).collect())
    }
}
