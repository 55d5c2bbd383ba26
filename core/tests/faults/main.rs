//! Black-box fault tests: bad batches from producers, torn tails and garbage after a crash,
//! interior corruption, damaged index files, a full or read-only disk, and failed fsyncs.
//! Every test runs the real log on real files in a temporary directory; faults come from
//! editing those files between opens or from a `Storage` wrapper that makes the operating
//! system's calls fail.
//!
//! One module per kind of fault; `disk` holds the helpers they share, and `common` (shared
//! with `crash.rs`) the records, logs and fault-injecting storage.

#[path = "../common/mod.rs"]
mod common;
mod disk;

mod bad_batches;
mod indexes;
mod io;
mod recovery;
