//! Running a topology: [`StreamsConfig`] and the [`KafkaStreams`] instance with its
//! worker threads, tasks, commits and restores.

mod backend;
mod checkpoint;
mod config;
mod instance;
mod thread;
mod topics;

pub use config::{Connection, ProcessingGuarantee, StreamsConfig};
pub use instance::KafkaStreams;
