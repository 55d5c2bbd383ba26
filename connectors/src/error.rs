//! The connector framework's error type.
//!
//! Errors say whose fault they are. [`Error::Config`] is the pipeline file's (fix the file);
//! [`Error::Data`] is one record's (the pipeline's `on_error` decides); [`Error::Unavailable`]
//! is the outside world's (a database down, a disk full: the runtime retries it with backoff,
//! then fails loudly); everything else stops the pipeline at once.

use std::path::PathBuf;

/// A connector framework error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file is wrong: what is wrong and, where known, the line.
    #[error("{0}")]
    Config(String),
    /// One record cannot be read or converted; `position` says where it came from.
    #[error("{position}: {reason}")]
    Data {
        /// Where the record is (a file and line, a topic/partition@offset, a table and key).
        position: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A system the pipeline talks to is unreachable or refused: worth retrying.
    #[error("{what} is unavailable: {reason}")]
    Unavailable {
        /// The system (`postgres 127.0.0.1:5432`, a path).
        what: String,
        /// The underlying error.
        reason: String,
    },
    /// A connector could not do its work (a rejected statement, a write that failed).
    #[error("{connector}: {reason}")]
    Connector {
        /// The connector's name in the pipeline file.
        connector: String,
        /// What went wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The log refused an operation.
    #[error(transparent)]
    Log(#[from] sluice_core::Error),
    /// Arrow refused a conversion.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl Error {
    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config(message.into())
    }

    /// A connector error.
    pub fn connector(connector: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Connector {
            connector: connector.into(),
            reason: reason.to_string(),
        }
    }

    /// An unavailable system.
    pub fn unavailable(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying after a pause can help: the outside world was down or full, or the
    /// log was (an I/O error from the disk).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}

/// The connector framework's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
