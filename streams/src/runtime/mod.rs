//! Running a topology: [`StreamsConfig`] and the [`KafkaStreams`](crate::KafkaStreams)
//! instance with its worker threads, tasks, commits and restores.

mod config;

pub use config::{Connection, ProcessingGuarantee, StreamsConfig};
