//! The `parquet` connectors: a sink writing Parquet files exactly once, rolled and
//! partitioned Hive style, and a source reading Parquet files with exact positions. The
//! user reference is `docs/connectors/parquet.md`.
//!
//! # Layout
//!
//! - [`partition`]: rows to `field=value/` and event-time directories.
//! - [`sink`]: the sink; its commits are the file sinks' ([`crate::file::commit`]).
//! - [`source`]: the source.

pub mod partition;
pub mod sink;
pub mod source;

pub use sink::ParquetSink;
pub use source::ParquetSource;
