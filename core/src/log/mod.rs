//! The log: a data directory of topics, each a set of partitions, each a list of segments.
//!
//! ```text
//! DATA_DIR/
//!   .lock                       held (flock) by the one process that has the log open
//!   producer-id-block           end of the producer-id block in use
//!   topics/<topic>/topic.json   partition count and config overrides
//!   topics/<topic>/<partition>/ 00000000000000000000.log / .index / .timeindex,
//!                               recovery-point, log-start-offset, producer-state.json
//! ```
//!
//! Internal topics live beside user topics: `__consumer_offsets` (committed offsets) and
//! `__transaction_state` (the transaction coordinator's state, loaded with the log).

mod cleaner;
mod compaction;
mod dir;
mod index;
pub mod io;
mod notify;
mod partition;
mod recovery;
mod replay;
mod retention;
mod segment;
mod topic;
mod transactions;

pub use compaction::CompactionOutcome;
pub(crate) use dir::LogInner;
pub use dir::{Log, LogOptions};
pub use notify::Notifier;
pub use partition::{AppendInfo, Partition, PartitionInfo, ReadResult};
pub use retention::RetentionOutcome;
pub use topic::{NewTopic, TopicDescription, validate_topic_name};
pub(crate) use transactions::is_aborted;
