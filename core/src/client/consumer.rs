//! The embedded consumer: reads records from assigned partitions, or from the partitions a
//! group assigns it, tracking a position per partition; seeks; commits.
//!
//! Many consumers read one topic independently: each keeps its own positions and reads
//! through the log's lock-free read path.
//!
//! Transaction markers (control batches) are never returned. Under
//! [`IsolationLevel::ReadUncommitted`] (the default) records of open and aborted
//! transactions are; under [`IsolationLevel::ReadCommitted`] reads stop at the partition's
//! last stable offset and records of aborted transactions are dropped, exactly as the
//! broker's read_committed Fetch decides (`Partition::stable_part`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::TopicPartition;
use super::polled::{Buffer, Polled};
use crate::error::{Error, Result};
use crate::log::{Log, is_aborted};
use crate::record::{BatchIter, Header, visit_batch_section};

/// Which transactional records a consumer sees (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record up to the end of the log, including those of open and aborted
    /// transactions.
    #[default]
    ReadUncommitted,
    /// Only records below the last stable offset (no open transaction's records), and
    /// none of aborted transactions.
    ReadCommitted,
}

/// Where to start when a partition has no committed offset (or it fell out of the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The oldest record still in the log.
    #[default]
    Earliest,
    /// Only records appended from now on.
    Latest,
    /// Fail with an error.
    None,
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Group id: needed for `subscribe` and for commits.
    pub group_id: Option<String>,
    /// Starting point without a committed offset (default earliest).
    pub auto_offset_reset: OffsetReset,
    /// Commit positions automatically (default true).
    pub enable_auto_commit: bool,
    /// How often auto-commit runs, at the start of a poll (default 5 s).
    pub auto_commit_interval: Duration,
    /// Most records one poll returns (default 500).
    pub max_poll_records: usize,
    /// Bytes read from a partition per fetch (default 1 MiB; at least one batch).
    pub fetch_max_bytes: usize,
    /// Which transactional records are returned (default read_uncommitted).
    pub isolation_level: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            auto_offset_reset: OffsetReset::Earliest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            max_poll_records: 500,
            fetch_max_bytes: 1 << 20,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }
}

impl ConsumerConfig {
    /// Sets the group id.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group_id = Some(group.into());
        self
    }
    /// Sets the reset policy.
    pub fn auto_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.auto_offset_reset = reset;
        self
    }
    /// Turns auto-commit on or off.
    pub fn enable_auto_commit(mut self, on: bool) -> Self {
        self.enable_auto_commit = on;
        self
    }
    /// Sets the auto-commit interval.
    pub fn auto_commit_interval(mut self, interval: Duration) -> Self {
        self.auto_commit_interval = interval;
        self
    }
    /// Sets the per-poll record cap.
    pub fn max_poll_records(mut self, n: usize) -> Self {
        self.max_poll_records = n.max(1);
        self
    }
    /// Sets the isolation level (Kafka's `isolation.level`).
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = level;
        self
    }
}

/// A record as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms since epoch).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None` for a tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// To this offset. Past the end it is clamped to the end; below the log start the
    /// reset policy ([`OffsetReset`]) applies when the consumer next reads, as in Kafka.
    Offset(i64),
    /// To the first record with a timestamp at or after this (ms); the end if none.
    Timestamp(i64),
    /// To the oldest record still in the log.
    Beginning,
    /// To the end: only new records.
    End,
}

struct Membership {
    group: String,
    member_id: String,
    generation: i32,
}

/// Reads records from the log. Not shared between threads: give each thread its own.
pub struct Consumer {
    log: Log,
    config: ConsumerConfig,
    membership: Option<Membership>,
    assignment: Vec<TopicPartition>,
    positions: HashMap<TopicPartition, i64>,
    buffer: Buffer,
    next_partition: usize,
    last_commit: Instant,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.config.group_id)
            .field("assignment", &self.assignment)
            .finish()
    }
}

impl Log {
    /// A consumer of this log. Call [`Consumer::assign`] or [`Consumer::subscribe`] next.
    pub fn consumer(&self, config: ConsumerConfig) -> Consumer {
        Consumer {
            log: self.clone(),
            config,
            membership: None,
            assignment: Vec::new(),
            positions: HashMap::new(),
            buffer: Buffer::default(),
            next_partition: 0,
            last_commit: Instant::now(),
        }
    }
}

impl Consumer {
    /// Reads exactly these partitions, outside any group membership (commits still go to
    /// the group, if one is configured).
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        for tp in &partitions {
            self.log.partition(&tp.topic, tp.partition)?;
        }
        self.leave_group();
        self.set_assignment(partitions);
        Ok(())
    }

    /// Joins the configured group for `topics`; partitions are shared with the group's
    /// other members in this process and rebalanced as members come and go.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        let group = self.config.group_id.clone().ok_or_else(|| {
            Error::InvalidArgument("subscribe needs a group id (ConsumerConfig::group)".into())
        })?;
        for t in topics {
            self.log.partition_count(t)?;
        }
        self.leave_group();
        let log = self.log.clone();
        let counts = move |t: &str| log.partition_count(t).unwrap_or(0);
        let member_id = self.log.inner.coordinator.join(
            &group,
            topics.iter().map(|t| t.to_string()).collect(),
            &counts,
        );
        self.membership = Some(Membership {
            group,
            member_id,
            generation: -1,
        });
        self.sync_group()
    }

    /// The partitions currently read.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    fn set_assignment(&mut self, partitions: Vec<TopicPartition>) {
        self.positions.retain(|tp, _| partitions.contains(tp));
        self.buffer.retain(|tp| partitions.contains(tp));
        self.assignment = partitions;
        self.next_partition = 0;
    }

    /// Picks up a new group generation, if there is one.
    fn sync_group(&mut self) -> Result<()> {
        let Some(m) = &self.membership else {
            return Ok(());
        };
        let (group, member_id, previous) = (m.group.clone(), m.member_id.clone(), m.generation);
        let current = self.log.inner.coordinator.generation(&group);
        if current == previous {
            return Ok(());
        }
        // Hand back what we hold: commit progress before the partitions move.
        if self.config.enable_auto_commit && previous >= 0 {
            self.commit()?;
        }
        let (generation, assigned) = self.log.inner.coordinator.assignment(&group, &member_id);
        let partitions: Vec<TopicPartition> = assigned
            .into_iter()
            .map(|(t, p)| TopicPartition::new(t, p))
            .collect();
        tracing::debug!(%group, member = %member_id, generation, ?partitions, "assignment");
        if let Some(m) = &mut self.membership {
            m.generation = generation;
        }
        // Positions of partitions we keep stay; new ones start from the committed offset.
        self.set_assignment(partitions);
        Ok(())
    }

    fn initial_position(&self, tp: &TopicPartition) -> Result<i64> {
        if let Some(group) = &self.config.group_id
            && let Some(c) = self.log.committed_offset(group, &tp.topic, tp.partition)
        {
            return Ok(c.offset);
        }
        self.reset_position(tp, None)
    }

    fn reset_position(&self, tp: &TopicPartition, failed: Option<i64>) -> Result<i64> {
        let partition = self.log.partition(&tp.topic, tp.partition)?;
        match self.config.auto_offset_reset {
            OffsetReset::Earliest => Ok(partition.log_start_offset()),
            OffsetReset::Latest => Ok(self.end_offset(&partition)),
            OffsetReset::None => Err(Error::OffsetOutOfRange {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: failed.unwrap_or(-1),
                log_start_offset: partition.log_start_offset(),
                log_end_offset: partition.log_end_offset(),
            }),
        }
    }

    /// Where "the end" is for this consumer: the last stable offset under read_committed
    /// (as Kafka's ListOffsets answers), else the log end offset.
    fn end_offset(&self, partition: &crate::log::Partition) -> i64 {
        match self.config.isolation_level {
            IsolationLevel::ReadCommitted => partition.last_stable_offset(),
            IsolationLevel::ReadUncommitted => partition.log_end_offset(),
        }
    }

    /// The offset of the next record of `tp` that [`poll`](Self::poll) will return (Kafka's
    /// `position`), resolving it if needed. Records already read from the log but still
    /// buffered count as not yet consumed: the position is the first of them, so a
    /// caller that reads "until the position reaches the end" has seen every record.
    pub fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        if let Some(offset) = self.buffer.first_offset(tp) {
            return Ok(offset);
        }
        self.fetch_position(tp)
    }

    /// Where the next read of `tp` from the log starts: past every record buffered.
    fn fetch_position(&mut self, tp: &TopicPartition) -> Result<i64> {
        if let Some(p) = self.positions.get(tp) {
            return Ok(*p);
        }
        let p = self.initial_position(tp)?;
        self.positions.insert(tp.clone(), p);
        Ok(p)
    }

    /// Moves a partition's position; it must be assigned.
    pub fn seek(&mut self, tp: &TopicPartition, to: Seek) -> Result<()> {
        if !self.assignment.contains(tp) {
            return Err(Error::InvalidArgument(format!(
                "cannot seek {tp}: it is not assigned to this consumer"
            )));
        }
        let partition = self.log.partition(&tp.topic, tp.partition)?;
        let offset = match to {
            Seek::Offset(o) => o,
            Seek::Beginning => partition.log_start_offset(),
            Seek::End => self.end_offset(&partition),
            Seek::Timestamp(ts) => partition
                .offset_for_timestamp(ts)?
                .unwrap_or_else(|| partition.log_end_offset()),
        };
        self.buffer.retain(|held| held != tp);
        self.positions.insert(tp.clone(), offset);
        Ok(())
    }

    /// Seeks every assigned partition.
    pub fn seek_all(&mut self, to: Seek) -> Result<()> {
        for tp in self.assignment.clone() {
            self.seek(&tp, to)?;
        }
        Ok(())
    }

    /// Returns up to `max_poll_records` records, waiting up to `timeout` for the first.
    /// Records of one partition come in offset order.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let n = self.config.max_poll_records;
        self.poll_with(timeout, |buffer| buffer.take_owned(n))
    }

    /// [`poll`](Self::poll), with the records left in the bytes of the batches they were
    /// read from: no allocation per record. For readers that turn records into something
    /// else at once, such as a sink decoding values into columns.
    pub fn poll_batch(&mut self, timeout: Duration) -> Result<Polled> {
        let n = self.config.max_poll_records;
        self.poll_with(timeout, |buffer| buffer.take(n))
    }

    /// Waits up to `timeout` for records, then hands up to a poll's worth out with `take`
    /// (or an empty one: `take` of an empty buffer).
    fn poll_with<T>(&mut self, timeout: Duration, take: impl Fn(&mut Buffer) -> T) -> Result<T> {
        self.sync_group()?;
        if self.config.enable_auto_commit
            && self.config.group_id.is_some()
            && self.last_commit.elapsed() >= self.config.auto_commit_interval
        {
            self.commit()?;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if !self.buffer.is_empty() {
                return Ok(take(&mut self.buffer));
            }
            let seen = self.log.notifier().generation();
            self.fetch()?;
            if !self.buffer.is_empty() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(take(&mut self.buffer));
            }
            // Wake on new data, and at least every 100 ms to notice rebalances.
            self.log
                .notifier()
                .wait_past(seen, (deadline - now).min(Duration::from_millis(100)));
            self.sync_group()?;
        }
    }

    /// Reads from assigned partitions, round robin, until a poll's worth is buffered or
    /// every partition has been read once.
    fn fetch(&mut self) -> Result<()> {
        // Called with nothing buffered: what the last records pointed into can go.
        self.buffer.clear();
        let n = self.assignment.len();
        for i in 0..n {
            let tp = self.assignment[(self.next_partition + i) % n].clone();
            let position = self.fetch_position(&tp)?;
            let partition = self.log.partition(&tp.topic, tp.partition)?;
            // Taken before the read: see `Partition::stable_part`.
            let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
            let lso = partition.last_stable_offset();
            let end = partition.log_end_offset();
            if position > end {
                // A seek past the end (or a truncated log) is clamped to the end, as `Seek`
                // promises: waiting at the old position would silently skip every record
                // appended below it.
                tracing::warn!(partition = %tp, position, end, "position past the end; clamped");
                self.positions.insert(tp.clone(), end);
                continue;
            }
            if position == end || (read_committed && position >= lso) {
                continue;
            }
            let (records, aborted) = match partition.read(position, self.config.fetch_max_bytes) {
                Ok(read) if read_committed => partition.stable_part(read.records, position, lso),
                Ok(read) => (read.records, Vec::new()),
                Err(Error::OffsetOutOfRange { offset, .. }) => {
                    let reset = self.reset_position(&tp, Some(offset))?;
                    tracing::warn!(partition = %tp, offset, reset, "position out of range; reset");
                    self.positions.insert(tp.clone(), reset);
                    continue;
                }
                Err(e) => return Err(e),
            };
            // A corrupt batch fails the poll with none of this read's records held, so
            // nothing is handed out twice when the caller polls again.
            let held = self.buffer.len();
            let corrupt = |buffer: &mut Buffer, offset, reason| {
                buffer.truncate(held);
                Error::CorruptRead {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset,
                    reason,
                }
            };
            let mut next = position;
            for item in BatchIter::new(&records) {
                let (start, header) = match item {
                    Ok(item) => item,
                    Err(e) => return Err(corrupt(&mut self.buffer, next, e.to_string())),
                };
                let batch_next = header.last_offset() + 1;
                if !header.attributes().control() && !is_aborted(&header, &aborted) {
                    let bytes = records.slice(start..start + header.batch_bytes());
                    let buffer = &mut self.buffer;
                    let read = visit_batch_section(bytes, |section, count| {
                        let at = buffer.section(&tp, section, count);
                        move |record| {
                            if record.offset >= position {
                                buffer.push(at, record);
                            }
                            true
                        }
                    });
                    if let Err(reason) = read {
                        return Err(corrupt(&mut self.buffer, header.base_offset(), reason));
                    }
                }
                next = next.max(batch_next);
            }
            self.positions.insert(tp.clone(), next);
            // Fill up to one poll's worth across partitions; start after this one next time
            // so no partition starves the others.
            if self.buffer.len() >= self.config.max_poll_records {
                self.next_partition = (self.next_partition + i + 1) % n;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Durably commits the current position of every assigned partition for the group.
    pub fn commit(&mut self) -> Result<()> {
        let Some(group) = self.config.group_id.clone() else {
            return Err(Error::InvalidArgument(
                "commit needs a group id (ConsumerConfig::group)".into(),
            ));
        };
        // `position` counts records still buffered as not handed out, as a commit must.
        let assigned: Vec<TopicPartition> = self.positions.keys().cloned().collect();
        let mut offsets: Vec<(String, i32, i64)> = Vec::with_capacity(assigned.len());
        for tp in assigned {
            let at = self.position(&tp)?;
            let unchanged = self
                .log
                .committed_offset(&group, &tp.topic, tp.partition)
                .is_some_and(|c| c.offset == at);
            if !unchanged {
                offsets.push((tp.topic, tp.partition, at));
            }
        }
        self.log.commit_offsets(&group, &offsets)?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commits specific positions (the offset of the next record to read).
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        let Some(group) = self.config.group_id.clone() else {
            return Err(Error::InvalidArgument(
                "commit needs a group id (ConsumerConfig::group)".into(),
            ));
        };
        let offsets: Vec<(String, i32, i64)> = offsets
            .iter()
            .map(|(tp, o)| (tp.topic.clone(), tp.partition, *o))
            .collect();
        self.log.commit_offsets(&group, &offsets)
    }

    /// The group's committed offset for a partition.
    pub fn committed(&self, tp: &TopicPartition) -> Option<i64> {
        let group = self.config.group_id.as_ref()?;
        self.log
            .committed_offset(group, &tp.topic, tp.partition)
            .map(|c| c.offset)
    }

    fn leave_group(&mut self) {
        if let Some(m) = self.membership.take() {
            let log = self.log.clone();
            let counts = move |t: &str| log.partition_count(t).unwrap_or(0);
            self.log
                .inner
                .coordinator
                .leave(&m.group, &m.member_id, &counts);
        }
    }

    /// Commits (if auto-commit is on) and leaves the group.
    pub fn close(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        let result = if self.config.enable_auto_commit
            && self.config.group_id.is_some()
            && !self.positions.is_empty()
        {
            self.commit()
        } else {
            Ok(())
        };
        self.leave_group();
        // Nothing left for Drop to commit.
        self.positions.clear();
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::error!("consumer closed without committing: {e}");
        }
    }
}
