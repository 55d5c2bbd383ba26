//! The crate's error type: what went wrong, with the table, topic, partition and offset it
//! concerns, and (for a user's mistake) what to do instead.

use datafusion::error::DataFusionError;

/// Everything `sluice-sql` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statement DataFusion rejected or failed to run (planning, execution, a file).
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// The log below failed (I/O, a missing topic, a closed log).
    #[error(transparent)]
    Log(#[from] sluice_core::Error),
    /// `CREATE TABLE ... WITH (topic = ...)` is malformed or names something unsupported.
    #[error("table {table}: {reason}")]
    InvalidTable {
        /// The table being defined.
        table: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// A statement that names no table the catalog or DataFusion knows.
    #[error("table {0} does not exist (SHOW TABLES lists the tables)")]
    UnknownTable(String),
    /// A table of that name exists already.
    #[error("table {0} already exists (use CREATE TABLE IF NOT EXISTS or DROP TABLE first)")]
    TableExists(String),
    /// The catalog topic holds an entry this version cannot read.
    #[error("catalog topic {topic}, offset {offset}: {reason}")]
    CorruptCatalog {
        /// The catalog topic.
        topic: String,
        /// The entry's offset.
        offset: i64,
        /// What could not be read.
        reason: String,
    },
    /// A record that does not match its table under `on_error = 'fail'`.
    #[error(
        "record {topic}/{partition}@{offset} does not match table {table}: {reason} \
         (set on_error = 'null' or 'skip' on the table to read past such records)"
    )]
    BadRecord {
        /// The table being read.
        table: String,
        /// The record's topic.
        topic: String,
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// Which column, and what was found instead of what.
        reason: String,
    },
    /// A row that cannot be written to a topic in its table's format.
    #[error("cannot write a row to table {table}: {reason}")]
    BadRow {
        /// The table written to.
        table: String,
        /// What is wrong with the row.
        reason: String,
    },
    /// Something this version does not do (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A bound parameter (`$n` of a prepared statement) that is not a value of its type.
    #[error("parameter ${index}: {reason}")]
    BadParameter {
        /// 1 for `$1`.
        index: usize,
        /// What was sent and what was expected.
        reason: String,
    },
    /// A Kafka-compatible cluster (`--bootstrap`) refused or failed a request.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A cluster that stopped answering: what was being done, and for how long.
    #[error("{0}")]
    Stalled(String),
    /// A log stored batch that cannot be decoded (the log's data is damaged).
    #[error("topic {topic}, partition {partition}, offset {offset}: unreadable batch: {reason}")]
    CorruptBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The batch's base offset.
        offset: i64,
        /// What the decoder rejected.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
