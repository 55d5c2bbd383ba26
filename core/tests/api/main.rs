//! Black-box tests of `sluice-core`'s public API on real files: the embedded producer and
//! consumer, batch reads, segment rolls, seeks, consumer groups, idempotence, retention,
//! compaction, transactions (log level and the embedded transactional producer with
//! read_committed consumers), topic administration and configuration parsing. One module per topic;
//! `common` holds the helpers they share.

// Tests fail loudly on the first unexpected error.
#![allow(clippy::unwrap_used)]

mod common;

mod admin;
mod compaction;
mod config;
mod embedded_transactions;
mod groups;
mod idempotence;
mod produce_consume;
mod reads;
mod retention;
mod seek;
mod segments;
mod transactions;
