//! Settings: `sluice.toml` for the whole process and Kafka-named per-topic overrides.
//!
//! Every setting has a documented default (see `docs/configuration.md`). Unknown keys and
//! out-of-range values are errors naming the key, so a typo stops start-up instead of being
//! silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// When an acknowledged append is on stable storage. The contract is written in
/// `docs/durability.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Durability {
    /// Acknowledged means fsynced: the segment's data, and the directory entry whenever a
    /// segment file is created or rolled. Survives power loss.
    Sync,
    /// Acknowledged means in the page cache; a background flusher fsyncs every partition
    /// with unflushed data at this interval (milliseconds). A process crash loses nothing;
    /// power loss loses at most the last interval.
    Interval(u64),
    /// Acknowledged means in the page cache; fsync only on segment roll and clean close.
    /// A process crash loses nothing; power loss can lose anything not yet flushed.
    None,
}

impl Durability {
    /// Parses `sync`, `none`, `interval` (1000 ms) or `interval:MS`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidConfig {
            key: "durability".into(),
            value: s.into(),
            reason: reason.into(),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "sync" => Ok(Durability::Sync),
            "none" => Ok(Durability::None),
            "interval" => Ok(Durability::Interval(DEFAULT_FLUSH_INTERVAL_MS)),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .ok_or_else(|| bad("use sync, none, interval or interval:MS"))?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| bad("interval:MS needs a whole number of milliseconds"))?;
                if ms == 0 {
                    return Err(bad(
                        "interval must be at least 1 ms (use sync to fsync every append)",
                    ));
                }
                Ok(Durability::Interval(ms))
            }
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Durability::Sync => f.write_str("sync"),
            Durability::None => f.write_str("none"),
            Durability::Interval(ms) => write!(f, "interval:{ms}"),
        }
    }
}

/// Default flush interval for [`Durability::Interval`].
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;

/// Whether old data is deleted by age and size, compacted by key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CleanupPolicy {
    /// Delete whole segments past retention.ms / retention.bytes.
    #[default]
    Delete,
    /// Keep the newest record per key.
    Compact,
    /// Both: compact, and delete segments past retention.
    #[serde(rename = "compact,delete")]
    CompactDelete,
}

impl CleanupPolicy {
    fn parse(s: &str) -> Option<Self> {
        let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["delete"] => Some(CleanupPolicy::Delete),
            ["compact"] => Some(CleanupPolicy::Compact),
            ["compact", "delete"] => Some(CleanupPolicy::CompactDelete),
            _ => None,
        }
    }
    /// Whether segments are deleted by retention.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
    /// Whether the topic is compacted.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
    fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }
}

/// Which timestamp a record keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TimestampKind {
    /// The producer's timestamp.
    #[default]
    CreateTime,
    /// The time the log appended the batch.
    LogAppendTime,
}

/// The `[log]` section of `sluice.toml`: defaults for every topic plus process-wide knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `sync`, `none`, `interval` or `interval:MS`. Default `interval:1000`.
    pub durability: String,
    /// Roll the active segment when it reaches this size. Default 1 GiB.
    pub segment_bytes: u64,
    /// Roll the active segment when its first batch is this old. Default 7 days.
    pub segment_ms: u64,
    /// Bytes between sparse offset-index entries. Default 4096.
    pub index_interval_bytes: u64,
    /// Delete segments whose newest record is older than this; -1 keeps forever. Default 7 days.
    pub retention_ms: i64,
    /// Delete the oldest segments while a partition is larger than this; -1 for no limit.
    pub retention_bytes: i64,
    /// `delete`, `compact` or `compact,delete`. Default `delete`.
    pub cleanup_policy: CleanupPolicy,
    /// How long a tombstone survives compaction, from its timestamp. Default 1 day.
    pub delete_retention_ms: u64,
    /// A record is not compacted away until it is at least this old. Default 0.
    pub min_compaction_lag_ms: u64,
    /// Largest batch accepted, in bytes. Default 1 MiB + 12 (Kafka's).
    pub max_message_bytes: u64,
    /// How often the background cleaner applies retention and compaction. Default 30 s.
    pub cleaner_interval_ms: u64,
    /// Partitions for topics created without a count. Default 1.
    pub default_partitions: i32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            durability: format!("interval:{DEFAULT_FLUSH_INTERVAL_MS}"),
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_message_bytes: 1_048_588,
            cleaner_interval_ms: 30_000,
            default_partitions: 1,
        }
    }
}

/// The whole `sluice.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory; the `--data-dir` flag wins over it.
    pub data_dir: Option<PathBuf>,
    /// Log settings.
    pub log: LogConfig,
    /// Broker settings (`sluice serve`).
    pub broker: crate::broker::BrokerConfig,
}

impl Config {
    /// Reads and validates a `sluice.toml`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read config", path, e))?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::InvalidConfig { key, value, reason } => Error::InvalidConfig {
                key,
                value,
                reason: format!("{reason} (in {})", path.display()),
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (key, value) = e.span().map(|span| key_at(text, span)).unwrap_or_default();
            Error::InvalidConfig {
                key,
                value,
                reason: e.message().to_string(),
            }
        })?;
        config.log.validate()?;
        Ok(config)
    }
}

/// The dotted key (and, for a bad value, the value's text) that a TOML error's span points
/// at. For unknown keys the span is the key itself, but for a wrong type or an unknown
/// variant it is the value: naming only `"big"` would not tell the user which setting.
fn key_at(text: &str, span: std::ops::Range<usize>) -> (String, String) {
    let spanned = text.get(span.clone()).unwrap_or("").trim().to_string();
    let before = text.get(..span.start).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text
        .get(line_start..)
        .and_then(|rest| rest.lines().next())
        .unwrap_or("");
    let (key, value) = match line.split_once('=') {
        Some((key, _)) if span.start >= line_start + key.len() => (
            key.trim().to_string(),
            spanned.trim_matches('"').to_string(),
        ),
        _ => (spanned, String::new()),
    };
    // Settings under a `[table]` header are named with it, as validate() names them.
    let table = before
        .get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    match table {
        Some(table) if !key.starts_with('[') => (format!("{table}.{key}"), value),
        _ => (key, value),
    }
}

impl LogConfig {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.durability()?;
        let bad = |key: &str, value: String, reason: &str| Error::InvalidConfig {
            key: format!("log.{key}"),
            value,
            reason: reason.into(),
        };
        if self.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(bad(
                "segment_bytes",
                self.segment_bytes.to_string(),
                "must be at least 128",
            ));
        }
        if self.segment_bytes > MAX_SEGMENT_BYTES {
            return Err(bad(
                "segment_bytes",
                self.segment_bytes.to_string(),
                "must be at most 2 GiB (index positions are 32-bit)",
            ));
        }
        if self.segment_ms == 0 {
            return Err(bad("segment_ms", "0".into(), "must be at least 1"));
        }
        if self.index_interval_bytes == 0 {
            return Err(bad(
                "index_interval_bytes",
                "0".into(),
                "must be at least 1",
            ));
        }
        if self.retention_ms < -1 {
            return Err(bad(
                "retention_ms",
                self.retention_ms.to_string(),
                "must be -1 (keep forever) or a whole number of milliseconds",
            ));
        }
        if self.retention_bytes < -1 {
            return Err(bad(
                "retention_bytes",
                self.retention_bytes.to_string(),
                "must be -1 (no limit) or a whole number of bytes",
            ));
        }
        if self.max_message_bytes < 64 || self.max_message_bytes > i32::MAX as u64 {
            return Err(bad(
                "max_message_bytes",
                self.max_message_bytes.to_string(),
                "must be between 64 and 2147483647",
            ));
        }
        if self.cleaner_interval_ms == 0 {
            return Err(bad("cleaner_interval_ms", "0".into(), "must be at least 1"));
        }
        if self.default_partitions < 1 {
            return Err(bad(
                "default_partitions",
                self.default_partitions.to_string(),
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The parsed default durability.
    pub fn durability(&self) -> Result<Durability> {
        Durability::parse(&self.durability).map_err(|e| match e {
            Error::InvalidConfig { value, reason, .. } => Error::InvalidConfig {
                key: "log.durability".into(),
                value,
                reason,
            },
            other => other,
        })
    }

    /// Sets the default durability.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability.to_string();
        self
    }
}

const MIN_SEGMENT_BYTES: u64 = 128;
const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// A topic's effective settings: the log defaults with the topic's overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: u64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `retention.ms` (-1 forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`.
    pub delete_retention_ms: u64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: u64,
    /// `max.message.bytes`.
    pub max_message_bytes: u64,
    /// `message.timestamp.type`.
    pub timestamp_kind: TimestampKind,
    /// From `flush.messages` / `flush.ms`, or the log default.
    pub durability: Durability,
}

/// The per-topic keys accepted, with Kafka's names.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "delete.retention.ms",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "min.compaction.lag.ms",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

impl TopicConfig {
    /// Applies `overrides` (Kafka topic-config names) to the log defaults.
    pub fn resolve(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> Result<Self> {
        let mut config = TopicConfig {
            segment_bytes: defaults.segment_bytes,
            segment_ms: defaults.segment_ms,
            index_interval_bytes: defaults.index_interval_bytes,
            retention_ms: defaults.retention_ms,
            retention_bytes: defaults.retention_bytes,
            cleanup_policy: defaults.cleanup_policy,
            delete_retention_ms: defaults.delete_retention_ms,
            min_compaction_lag_ms: defaults.min_compaction_lag_ms,
            max_message_bytes: defaults.max_message_bytes,
            timestamp_kind: TimestampKind::CreateTime,
            durability: defaults.durability()?,
        };
        let mut flush_messages: Option<u64> = None;
        let mut flush_ms: Option<u64> = None;
        for (key, value) in overrides {
            let bad = |reason: &str| Error::InvalidConfig {
                key: key.clone(),
                value: value.clone(),
                reason: reason.into(),
            };
            let uint = |min: u64, max: u64| -> Result<u64> {
                value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or_else(|| bad(&format!("must be a whole number between {min} and {max}")))
            };
            let limit = || -> Result<i64> {
                value
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|v| *v >= -1)
                    .ok_or_else(|| bad("must be -1 (unlimited) or a whole number"))
            };
            match key.as_str() {
                "segment.bytes" => {
                    config.segment_bytes = uint(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)?
                }
                "segment.ms" => config.segment_ms = uint(1, i64::MAX as u64)?,
                "index.interval.bytes" => config.index_interval_bytes = uint(1, i32::MAX as u64)?,
                "retention.ms" => config.retention_ms = limit()?,
                "retention.bytes" => config.retention_bytes = limit()?,
                "cleanup.policy" => {
                    config.cleanup_policy = CleanupPolicy::parse(value)
                        .ok_or_else(|| bad("use delete, compact or compact,delete"))?
                }
                "delete.retention.ms" => config.delete_retention_ms = uint(0, i64::MAX as u64)?,
                "min.compaction.lag.ms" => config.min_compaction_lag_ms = uint(0, i64::MAX as u64)?,
                "max.message.bytes" => config.max_message_bytes = uint(64, i32::MAX as u64)?,
                "message.timestamp.type" => {
                    config.timestamp_kind = match value.trim() {
                        "CreateTime" => TimestampKind::CreateTime,
                        "LogAppendTime" => TimestampKind::LogAppendTime,
                        _ => return Err(bad("use CreateTime or LogAppendTime")),
                    }
                }
                "flush.messages" => flush_messages = Some(uint(1, i64::MAX as u64)?),
                "flush.ms" => flush_ms = Some(uint(1, i64::MAX as u64)?),
                _ => {
                    return Err(Error::InvalidConfig {
                        key: key.clone(),
                        value: value.clone(),
                        reason: format!(
                            "unknown topic setting; known: {}",
                            TOPIC_CONFIG_KEYS.join(", ")
                        ),
                    });
                }
            }
        }
        // Kafka's flush.messages / flush.ms map onto the durability modes: flushing after
        // every message is `Sync`; a flush interval is `Interval`. Larger flush.messages
        // values are accepted for compatibility and treated as the log default.
        if flush_messages == Some(1) {
            config.durability = Durability::Sync;
        } else if let Some(ms) = flush_ms.filter(|ms| *ms < i64::MAX as u64) {
            config.durability = Durability::Interval(ms);
        }
        Ok(config)
    }

    /// The effective settings as Kafka-named key/value pairs, for `describe`.
    pub fn entries(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("cleanup.policy".into(), self.cleanup_policy.as_str().into());
        m.insert(
            "delete.retention.ms".into(),
            self.delete_retention_ms.to_string(),
        );
        m.insert(
            "index.interval.bytes".into(),
            self.index_interval_bytes.to_string(),
        );
        m.insert(
            "max.message.bytes".into(),
            self.max_message_bytes.to_string(),
        );
        m.insert(
            "message.timestamp.type".into(),
            match self.timestamp_kind {
                TimestampKind::CreateTime => "CreateTime",
                TimestampKind::LogAppendTime => "LogAppendTime",
            }
            .into(),
        );
        m.insert(
            "min.compaction.lag.ms".into(),
            self.min_compaction_lag_ms.to_string(),
        );
        m.insert("retention.bytes".into(), self.retention_bytes.to_string());
        m.insert("retention.ms".into(), self.retention_ms.to_string());
        m.insert("segment.bytes".into(), self.segment_bytes.to_string());
        m.insert("segment.ms".into(), self.segment_ms.to_string());
        m.insert("sluice.durability".into(), self.durability.to_string());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_in_toml_is_named() {
        let err = Config::from_toml("[log]\nsegment_byts = 10\n").unwrap_err();
        assert!(err.to_string().contains("segment_byts"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::from_toml("[log]\nsegment_bytes = 3\n").unwrap_err();
        assert!(err.to_string().contains("log.segment_bytes"), "{err}");
        let err = Config::from_toml("[log]\ndurability = \"sometimes\"\n").unwrap_err();
        assert!(err.to_string().contains("log.durability"), "{err}");
    }

    #[test]
    fn topic_overrides() {
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "1000".to_string());
        o.insert("flush.messages".to_string(), "1".to_string());
        o.insert("cleanup.policy".to_string(), "delete,compact".to_string());
        let c = TopicConfig::resolve(&LogConfig::default(), &o).unwrap();
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(c.durability, Durability::Sync);
        assert_eq!(c.cleanup_policy, CleanupPolicy::CompactDelete);
        o.insert("retention.mss".to_string(), "1".to_string());
        let err = TopicConfig::resolve(&LogConfig::default(), &o).unwrap_err();
        assert!(err.to_string().contains("retention.mss"), "{err}");
    }
}
