//! What the relational database connectors (`postgres`, `mysql`, `sqlite`) share.
//!
//! Each system lives in its own module and speaks its own client library; this module
//! holds everything that is the same idea in three spellings:
//!
//! - [`dialect`]: identifier quoting, column types for `CREATE TABLE`, upsert syntax and
//!   the exactly-once offsets table `sluice_connect_offsets`.
//! - [`types`]: Arrow types to SQL types and back, the civil calendar and timestamp text.
//! - [`config`]: the keys of a database sink and source, parsed once for all three.
//! - [`cells`]: building Arrow columns from database values, one value at a time.
//! - [`incremental`]: the source modes (bulk, incrementing, timestamp,
//!   timestamp+incrementing), their positions and the query each poll runs.
//! - [`buffer`]: the sink's bounded buffer of operations waiting for a commit.
//! - [`table`]: what a table looks like (columns, types, primary key) and the checks
//!   against it.
//!
//! Invariant kept by every sink: the rows of a commit and the offsets it stores are
//! written in one database transaction, so after a crash the table and
//! `sluice_connect_offsets` agree, and the runtime resumes from the stored offsets.

pub mod buffer;
pub mod cells;
pub mod config;
pub mod dialect;
pub mod incremental;
pub mod sink;
pub mod source;
pub mod table;
pub mod types;
pub mod values;

pub use buffer::OpBuffer;
pub use config::{DbSinkConfig, DbSourceConfig, SinkMode};
pub use dialect::Dialect;
pub use incremental::{Mode, SourcePosition};
pub use table::{Column, TableInfo};
