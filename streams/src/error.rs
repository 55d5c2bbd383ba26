//! The error type of `sluice-streams`.
//!
//! Errors say whose fault they are: a topology that cannot run (`Topology`), a record the
//! job could not handle (`Deserialization`, `Serialization`), state that could not be read
//! or written (`State`), or the log or broker underneath (`Log`, `Kafka`).

use std::path::PathBuf;

/// A `Result` whose error is [`StreamsError`].
pub type Result<T, E = StreamsError> = std::result::Result<T, E>;

/// Everything that can stop a streaming job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamsError {
    /// The topology cannot be built or run as written: fix the program.
    #[error("invalid topology: {0}")]
    Topology(String),

    /// A record could not be deserialized and the handler says to stop.
    #[error(
        "cannot deserialize the {what} of the record at {topic}-{partition} offset {offset}: {reason} \
         (to skip such records, set a DeserializationHandler other than Fail)"
    )]
    Deserialization {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// `key` or `value`.
        what: &'static str,
        /// What the serde said.
        reason: String,
    },

    /// A value produced by the job could not be serialized for a topic or a store.
    #[error("cannot serialize a {what} for {target}: {reason}")]
    Serialization {
        /// `key` or `value`.
        what: &'static str,
        /// The topic or store it was meant for.
        target: String,
        /// What the serde said.
        reason: String,
    },

    /// A state store failed.
    #[error("state store '{store}' of task {task}: {reason}")]
    State {
        /// Store name.
        store: String,
        /// Task id (`subtopology_partition`).
        task: String,
        /// What went wrong.
        reason: String,
    },

    /// A state directory could not be used.
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The embedded log failed.
    #[error(transparent)]
    Log(#[from] sluice_core::Error),

    /// The Kafka client (remote backend) failed.
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),

    /// The job's producer was fenced: another instance with the same application id took
    /// over its tasks. This instance stops; nothing it wrote after the fence is visible.
    #[error("fenced: another instance of '{application_id}' took over ({reason})")]
    Fenced {
        /// The application id.
        application_id: String,
        /// What the log or broker said.
        reason: String,
    },

    /// A user function (a processor, an aggregator) failed.
    #[error("in {node}: {reason}")]
    User {
        /// The node it failed in.
        node: String,
        /// The failure.
        reason: String,
    },
}

impl StreamsError {
    pub(crate) fn state(store: &str, task: impl std::fmt::Display, reason: impl ToString) -> Self {
        StreamsError::State {
            store: store.to_string(),
            task: task.to_string(),
            reason: reason.to_string(),
        }
    }
}
