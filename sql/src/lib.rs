//! `sluice-sql`: SQL over Sluice topics, on Apache DataFusion.
//!
//! A topic becomes a table with `CREATE TABLE orders (...) WITH (topic = 'orders',
//! format = 'json')`; the definition is kept in the log itself, so every process that
//! opens the data directory sees it. Queries are DataFusion's, reading the topic's
//! partitions in parallel and pushing partition, offset and time ranges down to the log.
//! `INSERT INTO` a topic table produces records. The topics may be those of an embedded log
//! ([`SqlEngine::open`]) or of a Kafka-compatible cluster ([`SqlEngine::connect`]), where the
//! catalog is the same topic. The user guide is `docs/sql.md`.
//!
//! # Layout
//!
//! - [`engine`]: [`SqlEngine`], the session: statement routing, topic-table DDL.
//! - [`backend`]: where topics live: the embedded log, or a Kafka-compatible cluster.
//! - [`catalog`]: table definitions, their DDL, and the durable catalog topic.
//! - [`provider`]: the DataFusion `TableProvider` of a topic table: scan, pushdown, INSERT.
//! - [`pg`]: the PostgreSQL wire endpoint over an engine.
//! - [`session`]: what PostgreSQL clients send besides queries (BEGIN, SET, SHOW).
//! - `pg_catalog`: the system catalogs and functions PostgreSQL tools describe a database
//!   through, and the rewrite of the PostgreSQL syntax they use.
//! - `format`: record values (json, csv, raw) to Arrow and back.
//! - `read`: read_committed reading of a partition's offset range.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let engine = sluice_sql::SqlEngine::open(sluice_core::Log::open(dir.path())?)?;
//! engine
//!     .execute(
//!         "CREATE TABLE orders (id BIGINT, amount DOUBLE) WITH (topic = 'orders', format = 'json');
//!          INSERT INTO orders VALUES (1, 9.5), (2, 0.5);",
//!     )
//!     .await?;
//! let out = engine.execute("SELECT sum(amount) AS total FROM orders").await?;
//! assert_eq!(out[0].row_count(), 1);
//! # Ok(()) }
//! ```

#![deny(clippy::unwrap_used)]

pub mod backend;
pub mod catalog;
pub mod engine;
mod error;
mod format;
pub mod pg;
mod pg_catalog;
pub mod provider;
mod read;
pub mod session;

/// The DataFusion (and through it, Arrow) this crate is built on, so users get the same
/// versions.
pub use datafusion;

pub use backend::Backend;
pub use catalog::{CATALOG_TOPIC, Catalog, TableDef};
pub use engine::{SqlEngine, StatementOutput};
pub use error::{Error, Result};
pub use provider::TopicTable;
