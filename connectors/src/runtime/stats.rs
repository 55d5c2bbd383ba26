//! Live counters of a running pipeline, one set per source and sink, read by the progress
//! display and the final report.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

/// What a connector is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Starting (connecting, resolving the schema, restoring its position).
    Starting,
    /// Moving data.
    Running,
    /// Waiting after an outside failure before trying again (the error).
    Retrying(String),
    /// A bounded source has read everything; a sink has drained its topics.
    Done,
    /// Stopped on an error.
    Failed(String),
}

/// Counters of one source or sink.
#[derive(Debug)]
pub struct ConnectorStats {
    /// `source` or `sink`.
    pub role: &'static str,
    /// Its name in the pipeline file.
    pub name: String,
    /// Rows written to the log (source) or handed to the target and committed (sink).
    pub records: AtomicU64,
    /// Bytes of record values written (source) or read (sink).
    pub bytes: AtomicU64,
    /// Bad records skipped.
    pub skipped: AtomicU64,
    /// Bad records sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Sinks: records in their topics not yet committed (-1: unknown).
    pub lag: AtomicI64,
    /// The state.
    pub state: Mutex<State>,
}

impl ConnectorStats {
    pub(crate) fn new(role: &'static str, name: &str) -> Arc<ConnectorStats> {
        Arc::new(ConnectorStats {
            role,
            name: name.to_string(),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            lag: AtomicI64::new(-1),
            state: Mutex::new(State::Starting),
        })
    }

    pub(crate) fn set(&self, state: State) {
        *self.state.lock() = state;
    }

    pub(crate) fn add(&self, records: usize, bytes: usize) {
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A snapshot: (records, bytes, skipped, dead-lettered, lag, state).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            role: self.role,
            name: self.name.clone(),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            lag: Some(self.lag.load(Ordering::Relaxed)).filter(|l| *l >= 0),
            state: self.state.lock().clone(),
        }
    }
}

/// A copy of a connector's counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `source` or `sink`.
    pub role: &'static str,
    /// Its name.
    pub name: String,
    /// Rows moved.
    pub records: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Bad records skipped.
    pub skipped: u64,
    /// Bad records dead-lettered.
    pub dead_lettered: u64,
    /// Sinks: records not yet committed.
    pub lag: Option<i64>,
    /// The state.
    pub state: State,
}
