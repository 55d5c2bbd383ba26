//! Topic metadata: name rules, `topic.json`, and the descriptions the admin API returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::partition::{Partition, PartitionInfo};
use crate::config::TopicConfig;
use crate::error::{Error, Result};

/// Kafka's longest topic name.
const MAX_TOPIC_NAME_BYTES: usize = 249;

/// Checks a topic name against Kafka's rules: 1..=249 characters from `[a-zA-Z0-9._-]`,
/// not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |reason| Error::InvalidTopicName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_TOPIC_NAME_BYTES {
        return Err(bad("it is longer than 249 characters"));
    }
    if name == "." || name == ".." {
        return Err(bad("'.' and '..' are reserved"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: i32,
    /// Kafka-named config overrides, e.g. `retention.ms`.
    pub config: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and default settings.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            config: BTreeMap::new(),
        }
    }

    /// Adds a config override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }
}

/// A topic as `describe` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Per-partition offsets and sizes.
    pub partitions: Vec<PartitionInfo>,
    /// Overrides set on the topic.
    pub overrides: BTreeMap<String, String>,
    /// Effective settings (defaults plus overrides).
    pub config: BTreeMap<String, String>,
}

/// `topic.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TopicMeta {
    pub name: String,
    pub partitions: i32,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// An open topic.
pub(crate) struct Topic {
    pub meta: TopicMeta,
    pub config: Arc<TopicConfig>,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub fn partition(&self, id: i32) -> Result<&Arc<Partition>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.meta.name.clone(),
                partition: id,
                partitions: self.meta.partitions,
            })
    }

    pub fn describe(&self) -> TopicDescription {
        TopicDescription {
            name: self.meta.name.clone(),
            partitions: self.partitions.iter().map(|p| p.info()).collect(),
            overrides: self.meta.config.clone(),
            config: self.config.entries(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "ü"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }
}
