//! [`StreamsConfig`]: how a job runs — its application id, where the log is, the
//! processing guarantee, threads, commit interval, memory and time limits.

use std::path::PathBuf;
use std::time::Duration;

use crate::processor::source::DeserializationHandler;

/// Where the job's topics live.
#[derive(Clone)]
pub enum Connection {
    /// An embedded log in this data directory (opened by the job).
    DataDir(PathBuf),
    /// An embedded log this process already opened.
    Log(sluice_core::Log),
    /// A Kafka-compatible cluster (a `sluice serve` broker or any other), through librdkafka.
    Bootstrap(String),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connection::DataDir(p) => write!(f, "DataDir({})", p.display()),
            Connection::Log(_) => f.write_str("Log(..)"),
            Connection::Bootstrap(b) => write!(f, "Bootstrap({b})"),
        }
    }
}

/// What a job promises about its results after failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingGuarantee {
    /// Every input record's effects are written at least once: outputs and changelogs are
    /// flushed before input offsets are committed; a crash may repeat some.
    #[default]
    AtLeastOnce,
    /// Input offsets, outputs and changelog writes of each commit interval are one
    /// transaction: a read_committed reader sees every result exactly once.
    ExactlyOnce,
}

/// The settings of a streams job.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub(crate) application_id: String,
    pub(crate) connection: Option<Connection>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) guarantee: ProcessingGuarantee,
    pub(crate) threads: usize,
    pub(crate) commit_interval: Option<Duration>,
    pub(crate) cache_max_bytes: usize,
    pub(crate) state_block_cache_bytes: u64,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) deserialization_handler: DeserializationHandler,
    pub(crate) poll_timeout: Duration,
    pub(crate) repartition_purge_interval: Duration,
}

impl StreamsConfig {
    /// Settings for the job `application_id`: the consumer group, the prefix of internal
    /// topics and the name of the state directory. Instances with the same id share work.
    pub fn new(application_id: impl Into<String>) -> Self {
        StreamsConfig {
            application_id: application_id.into(),
            connection: None,
            state_dir: None,
            guarantee: ProcessingGuarantee::AtLeastOnce,
            threads: 1,
            commit_interval: None,
            cache_max_bytes: 10 << 20,
            state_block_cache_bytes: 32 << 20,
            idle_timeout: Some(Duration::from_secs(30)),
            deserialization_handler: DeserializationHandler::Fail,
            poll_timeout: Duration::from_millis(100),
            repartition_purge_interval: Duration::from_secs(30),
        }
    }

    /// Runs on an embedded log in `dir` (created if needed).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.connection = Some(Connection::DataDir(dir.into()));
        self
    }

    /// Runs on an embedded log this process already opened.
    pub fn log(mut self, log: sluice_core::Log) -> Self {
        self.connection = Some(Connection::Log(log));
        self
    }

    /// Runs against a Kafka-compatible cluster at `bootstrap` (`host:port[,host:port]`).
    pub fn bootstrap(mut self, bootstrap: impl Into<String>) -> Self {
        self.connection = Some(Connection::Bootstrap(bootstrap.into()));
        self
    }

    /// Where stores keep their files (default: `<temp dir>/sluice-streams/<application id>`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// At-least-once (default) or exactly-once processing.
    pub fn processing_guarantee(mut self, g: ProcessingGuarantee) -> Self {
        self.guarantee = g;
        self
    }

    /// Worker threads (default 1); tasks are spread over them.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// How often progress is committed (default: 30 s at-least-once, 100 ms exactly-once,
    /// as in Kafka Streams).
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = Some(d);
        self
    }

    /// The memory all store write caches and aggregation record caches of this instance
    /// may hold together (default 10 MiB). 0 turns both off: every update goes to the
    /// changelog and downstream at once.
    pub fn cache_max_bytes(mut self, bytes: usize) -> Self {
        self.cache_max_bytes = bytes;
        self
    }

    /// How often the records of repartition topics that the job has committed are deleted
    /// (Kafka's `repartition.purge.interval.ms`; default 30 s), so internal topics do not
    /// grow without bound.
    pub fn repartition_purge_interval(mut self, d: Duration) -> Self {
        self.repartition_purge_interval = d;
        self
    }

    /// The block cache of the persistent store engine (default 32 MiB).
    pub fn state_block_cache_bytes(mut self, bytes: u64) -> Self {
        self.state_block_cache_bytes = bytes;
        self
    }

    /// After this long without input, a task's stream time follows the wall clock so its
    /// windows close (default 30 s); `None` keeps stream time purely event-driven.
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }

    /// What sources do with records they cannot deserialize (default: fail).
    pub fn deserialization_handler(mut self, h: DeserializationHandler) -> Self {
        self.deserialization_handler = h;
        self
    }

    pub(crate) fn effective_commit_interval(&self) -> Duration {
        self.commit_interval.unwrap_or(match self.guarantee {
            ProcessingGuarantee::AtLeastOnce => Duration::from_secs(30),
            ProcessingGuarantee::ExactlyOnce => Duration::from_millis(100),
        })
    }

    pub(crate) fn effective_state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir()
                .join("sluice-streams")
                .join(&self.application_id)
        })
    }

    pub(crate) fn idle_timeout_ms(&self) -> Option<i64> {
        self.idle_timeout
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
