//! The seam between the runtime and the log: the embedded log in this process, or a
//! Kafka-compatible cluster through librdkafka. Everything above talks to these traits.

mod embedded;
mod kafka;

use std::time::Duration;

pub(crate) use embedded::Embedded;
pub(crate) use kafka::Kafka;

use crate::error::Result;
use crate::record::{InputRecord, OutputRecord};

/// The consumer group a transaction commits offsets for.
pub(crate) enum GroupMeta {
    /// The embedded log needs only the group id.
    Id(String),
    /// librdkafka wants the consumer's group metadata (generation, member).
    Kafka(rdkafka::consumer::ConsumerGroupMetadata),
}

/// A changelog entry read back during a restore: key, value (`None`: deleted).
pub(crate) type ChangelogEntry = (Vec<u8>, Option<Vec<u8>>);

/// Topics, clients and offsets of one log.
pub(crate) trait Backend: Send + Sync {
    /// The topic's partition count, `None` if it does not exist.
    fn partitions(&self, topic: &str) -> Result<Option<i32>>;

    /// Creates the topic unless it exists (`compacted`: cleanup.policy=compact).
    fn ensure_topic(&self, topic: &str, partitions: i32, compacted: bool) -> Result<()>;

    /// A consumer in `group` subscribed to `topics`, committing only when told.
    fn group_consumer(
        &self,
        group: &str,
        topics: &[String],
        read_committed: bool,
    ) -> Result<Box<dyn GroupConsumer>>;

    /// A producer; transactional (and initialized, fencing older instances) when
    /// `transactional_id` is given.
    fn producer(&self, transactional_id: Option<&str>) -> Result<Box<dyn OutputProducer>>;

    /// The offset after the last record of a partition.
    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64>;
    /// Deletes the records of `topic`/`partition` before `offset` (Kafka's DeleteRecords):
    /// what the job has committed of a repartition topic is never read again.
    fn purge(&self, topic: &str, partition: i32, offset: i64) -> Result<()>;

    /// Reads a changelog partition from `from` to its end, handing entries to `apply` in
    /// batches; returns the offset after the last entry read.
    fn read_changelog(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        read_committed: bool,
        apply: &mut dyn FnMut(Vec<ChangelogEntry>) -> Result<()>,
    ) -> Result<i64>;
}

/// One worker thread's member of the application's consumer group.
pub(crate) trait GroupConsumer: Send {
    fn poll(&mut self, timeout: Duration) -> Result<Vec<InputRecord>>;
    /// The partitions currently assigned (changes after a rebalance).
    fn assignment(&self) -> Vec<(String, i32)>;
    /// How many records of an assigned partition lie beyond `next` (the offset after the
    /// last record `poll` returned for it; `None`: none returned yet), if cheaply known.
    /// `None` (unknown) never holds processing back.
    fn lag(&mut self, topic: &str, partition: i32, next: Option<i64>) -> Option<i64>;
    /// Moves these partitions back to their committed offsets (the earliest offset if none):
    /// a new task must not miss records polled for a task that was dropped.
    fn rewind(&mut self, partitions: &[(String, i32)]) -> Result<()>;
    /// What a transactional producer needs to commit this member's offsets.
    fn group_metadata(&self) -> GroupMeta;
    /// Commits these next-offsets for the group (at-least-once).
    fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<()>;
    fn close(self: Box<Self>) -> Result<()>;
}

/// Writes a task's output.
pub(crate) trait OutputProducer: Send {
    fn send(&mut self, record: OutputRecord) -> Result<()>;
    /// Sends records in order, as `send` does each.
    fn send_all(&mut self, records: Vec<OutputRecord>) -> Result<()> {
        records.into_iter().try_for_each(|r| self.send(r))
    }
    /// Waits until everything sent is acknowledged.
    fn flush(&mut self) -> Result<()>;
    /// Starts a transaction (transactional producers only).
    fn begin(&mut self) -> Result<()>;
    /// Commits the open transaction together with the group's input offsets.
    fn commit(&mut self, offsets: &[(String, i32, i64)], group: &GroupMeta) -> Result<()>;
    /// Aborts the open transaction.
    fn abort(&mut self) -> Result<()>;
}
