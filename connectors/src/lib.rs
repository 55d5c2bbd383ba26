//! `sluice-connectors`: configured pipelines moving data between Sluice topics and files,
//! Parquet and databases, for ETL without code.
//!
//! A pipeline file ([`config`]) names sources, which read from outside and write a topic,
//! and sinks, which read topics and write outside, each with its transforms. The
//! `runtime` runs them: it batches, applies backpressure (a source is polled only when
//! its last batch is in the log), retries what failed for outside reasons with backoff,
//! stores source positions in the log and commits sink offsets only once the target has
//! accepted the data. Rows travel as Arrow record batches; in topics they are encoded by a
//! [`Converter`] (json, csv, avro, raw). The user guide is `docs/connectors.md`.
//!
//! # Layout
//!
//! - [`config`]: pipeline files, `${ENV}` substitution, problems reported with lines.
//! - [`source`], [`sink`]: the traits a connector implements; [`batch`]: what they pass.
//! - [`convert`]: rows to record values and back; [`schema`]: types by SQL name and the
//!   topic schema entries sources leave for sinks.
//! - [`transform`]: rename, drop, insert, cast, filter, route, mask, flatten, timestamp.
//! - [`runtime`]: running a pipeline, positions, dead letters, progress and status.
//! - one module per system: `file`, `parquet`, `postgres`, `mysql`, `sqlite`, `stdio`;
//!   [`pgcdc`]: change data capture from PostgreSQL.

#![deny(clippy::unwrap_used)]

pub mod batch;
mod columns;
pub mod config;
pub mod convert;
pub mod db;
mod error;
pub mod file;
pub mod mysql;
pub mod parquet;
pub mod pgcdc;
pub mod postgres;
pub mod registry;
pub mod runtime;
pub mod schema;
pub mod sink;
pub mod source;
pub mod sqlite;
pub mod stdio;
pub mod transform;

pub use batch::{Offsets, Poll, Position, Reject, SinkBatch, SinkOp, SourceBatch};
pub use config::{OnError, PipelineFile, Settings};
pub use convert::Converter;
pub use error::{Error, Result};
pub use sink::{Sink, SinkContext};
pub use source::Source;
