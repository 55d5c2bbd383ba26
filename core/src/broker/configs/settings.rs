//! The topic settings DescribeConfigs reports: Kafka's topic-level name, the broker-level
//! name of the log default behind it, its type and a line of documentation, and how to
//! read each one's effective value off a [`TopicConfig`].

use std::collections::BTreeMap;

use crate::config::{Durability, TopicConfig};

/// `ConfigType` codes (DescribeConfigs v3+).
pub(super) const TYPE_STRING: i8 = 2;
pub(super) const TYPE_INT: i8 = 3;
pub(super) const TYPE_LONG: i8 = 5;
pub(super) const TYPE_LIST: i8 = 7;

/// Kafka's "never force a flush" value of `flush.messages` and `flush.ms`.
const NEVER: i64 = i64::MAX;
/// The overrides that `sluice.durability` is derived from.
pub(super) const FLUSH_KEYS: [&str; 2] = ["flush.messages", "flush.ms"];

/// One topic setting as DescribeConfigs reports it.
pub(super) struct Setting {
    /// Kafka's topic-level name (one of [`crate::config::TOPIC_CONFIG_KEYS`], or
    /// `sluice.durability`).
    pub(super) topic: &'static str,
    /// The broker-level name of the log default it falls back to.
    pub(super) broker: &'static str,
    /// A `ConfigType` code; `TYPE_LIST` settings accept APPEND and SUBTRACT.
    pub(super) kind: i8,
    /// False for `sluice.durability`, which is derived from `flush.*` and not settable.
    pub(super) writable: bool,
    /// One line for DescribeConfigs' `documentation` (v3+).
    pub(super) doc: &'static str,
}

pub(super) const SETTINGS: &[Setting] = &[
    Setting {
        topic: "cleanup.policy",
        broker: "log.cleanup.policy",
        kind: TYPE_LIST,
        writable: true,
        doc: "delete (by retention.ms / retention.bytes), compact (newest record per key), or both.",
    },
    Setting {
        topic: "delete.retention.ms",
        broker: "log.cleaner.delete.retention.ms",
        kind: TYPE_LONG,
        writable: true,
        doc: "How long a tombstone survives compaction, from its timestamp.",
    },
    Setting {
        topic: "flush.messages",
        broker: "log.flush.interval.messages",
        kind: TYPE_LONG,
        writable: true,
        doc: "1 fsyncs every append (durability sync); larger values keep the log default.",
    },
    Setting {
        topic: "flush.ms",
        broker: "log.flush.interval.ms",
        kind: TYPE_LONG,
        writable: true,
        doc: "Fsync unflushed data at this interval (durability interval:MS).",
    },
    Setting {
        topic: "index.interval.bytes",
        broker: "log.index.interval.bytes",
        kind: TYPE_INT,
        writable: true,
        doc: "Bytes between sparse offset-index entries.",
    },
    Setting {
        topic: "max.message.bytes",
        broker: "message.max.bytes",
        kind: TYPE_INT,
        writable: true,
        doc: "Largest record batch accepted, in bytes.",
    },
    Setting {
        topic: "message.timestamp.type",
        broker: "log.message.timestamp.type",
        kind: TYPE_STRING,
        writable: true,
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the append time.",
    },
    Setting {
        topic: "min.compaction.lag.ms",
        broker: "log.cleaner.min.compaction.lag.ms",
        kind: TYPE_LONG,
        writable: true,
        doc: "A record is not compacted away until it is at least this old.",
    },
    Setting {
        topic: "retention.bytes",
        broker: "log.retention.bytes",
        kind: TYPE_LONG,
        writable: true,
        doc: "Delete the oldest segments while a partition is larger than this; -1 for no limit.",
    },
    Setting {
        topic: "retention.ms",
        broker: "log.retention.ms",
        kind: TYPE_LONG,
        writable: true,
        doc: "Delete segments whose newest record is older than this; -1 keeps forever.",
    },
    Setting {
        topic: "segment.bytes",
        broker: "log.segment.bytes",
        kind: TYPE_INT,
        writable: true,
        doc: "Roll the active segment when it reaches this size.",
    },
    Setting {
        topic: "segment.ms",
        broker: "log.roll.ms",
        kind: TYPE_LONG,
        writable: true,
        doc: "Roll the active segment when its first batch is this old.",
    },
    Setting {
        topic: "sluice.durability",
        broker: "sluice.durability",
        kind: TYPE_STRING,
        writable: false,
        doc: "When an acknowledged append is on stable storage (sync, none or interval:MS); set it with flush.messages / flush.ms.",
    },
];

/// Every setting's effective value under `config`, by topic-level name.
///
/// `flush.messages` / `flush.ms` are derived from the durability they map onto (see
/// [`TopicConfig::resolve`]), so writing described values back as overrides keeps the
/// same durability.
pub(super) fn values(config: &TopicConfig) -> BTreeMap<String, String> {
    let mut values = config.entries();
    let flush_messages = match config.durability {
        Durability::Sync => 1,
        _ => NEVER,
    };
    let flush_ms = match config.durability {
        Durability::Interval(ms) => i64::try_from(ms).unwrap_or(NEVER),
        _ => NEVER,
    };
    values.insert("flush.messages".into(), flush_messages.to_string());
    values.insert("flush.ms".into(), flush_ms.to_string());
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogConfig, TOPIC_CONFIG_KEYS};

    #[test]
    fn every_topic_setting_is_described() {
        // Guards against a setting added to TOPIC_CONFIG_KEYS (or to TopicConfig::entries)
        // that DescribeConfigs silently leaves out.
        let config = TopicConfig::resolve(&LogConfig::default(), &BTreeMap::new()).unwrap();
        let described: Vec<&str> = SETTINGS.iter().map(|s| s.topic).collect();
        for key in TOPIC_CONFIG_KEYS.iter().copied().chain(
            values(&config)
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ) {
            assert!(described.contains(&key), "{key} is not in SETTINGS");
        }
        for s in SETTINGS {
            assert!(
                values(&config).contains_key(s.topic),
                "{} has no value",
                s.topic
            );
        }
    }

    #[test]
    fn described_flush_values_round_trip_to_the_same_durability() {
        // Guards against describe reporting flush.* values that, written back as overrides
        // (as `kafka-configs` does), change the topic's durability.
        for durability in ["sync", "interval:250", "none"] {
            let log = LogConfig {
                durability: durability.into(),
                ..LogConfig::default()
            };
            let config = TopicConfig::resolve(&log, &BTreeMap::new()).unwrap();
            let v = values(&config);
            let mut overrides = BTreeMap::new();
            for key in FLUSH_KEYS {
                overrides.insert(key.to_string(), v[key].clone());
            }
            let again = TopicConfig::resolve(&log, &overrides).unwrap();
            assert_eq!(again.durability, config.durability, "{durability}");
        }
    }
}
