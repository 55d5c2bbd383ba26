//! The embedded backend: the log in this process, through sluice-core's clients.

use std::time::{Duration, Instant};

use sluice_core::client::IsolationLevel;
use sluice_core::record::{ProducerStamp, Record, encode_batch, partition_for_key};
use sluice_core::{
    Compression, ConsumerConfig, Log, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, Seek, TopicPartition,
};

use super::{Backend, ChangelogEntry, GroupConsumer, GroupMeta, OutputProducer};
use crate::error::{Result, StreamsError};
use crate::record::{InputRecord, OutputRecord};

pub(crate) struct Embedded {
    pub log: Log,
}

fn isolation(read_committed: bool) -> IsolationLevel {
    if read_committed {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    }
}

impl Backend for Embedded {
    fn partitions(&self, topic: &str) -> Result<Option<i32>> {
        match self.log.partition_count(topic) {
            Ok(n) => Ok(Some(n)),
            Err(sluice_core::Error::UnknownTopic { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn ensure_topic(&self, topic: &str, partitions: i32, compacted: bool) -> Result<()> {
        let mut t = NewTopic::new(topic, partitions);
        if compacted {
            t = t.config("cleanup.policy", "compact");
        }
        self.log.ensure_topic(t)?;
        Ok(())
    }

    fn group_consumer(
        &self,
        group: &str,
        topics: &[String],
        read_committed: bool,
    ) -> Result<Box<dyn GroupConsumer>> {
        let config = ConsumerConfig::default()
            .group(group)
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest)
            .max_poll_records(1000)
            .isolation_level(isolation(read_committed));
        // Small reads per partition interleave the partitions finely, so a thread catching
        // up on several holds records of all of them at once (see `thread::held_back`).
        let config = ConsumerConfig {
            fetch_max_bytes: 256 << 10,
            ..config
        };
        let mut consumer = self.log.consumer(config);
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Box::new(EmbeddedConsumer {
            consumer,
            group: group.to_string(),
            read_committed,
            log: self.log.clone(),
        }))
    }

    fn producer(&self, transactional_id: Option<&str>) -> Result<Box<dyn OutputProducer>> {
        if transactional_id.is_none() {
            return Ok(Box::new(BatchingProducer::new(self.log.clone())?));
        }
        let mut config = ProducerConfig::default().linger(Duration::from_millis(5));
        if let Some(id) = transactional_id {
            config = config.transactional_id(id);
        }
        let producer = self.log.producer(config)?;
        if transactional_id.is_some() {
            producer.init_transactions()?;
        }
        Ok(Box::new(EmbeddedProducer {
            producer,
            pending: Vec::new(),
            check_at: PENDING_CHECK_MIN,
            failed: None,
        }))
    }

    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        Ok(self.log.partition(topic, partition)?.log_end_offset())
    }

    fn read_changelog(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        read_committed: bool,
        apply: &mut dyn FnMut(Vec<ChangelogEntry>) -> Result<()>,
    ) -> Result<i64> {
        let p = self.log.partition(topic, partition)?;
        let end = if read_committed {
            p.last_stable_offset()
        } else {
            p.log_end_offset()
        };
        let start = from.max(p.log_start_offset());
        if start >= end {
            return Ok(end);
        }
        let mut consumer = self.log.consumer(
            ConsumerConfig::default()
                .max_poll_records(10_000)
                .isolation_level(isolation(read_committed)),
        );
        let tp = TopicPartition::new(topic, partition);
        consumer.assign(vec![tp.clone()])?;
        consumer.seek(&tp, Seek::Offset(start))?;
        let deadline = Instant::now() + Duration::from_secs(600);
        while consumer.position(&tp)? < end {
            let records = consumer.poll(Duration::from_millis(100))?;
            if records.is_empty() && Instant::now() > deadline {
                return Err(StreamsError::state(
                    topic,
                    partition,
                    "changelog restore made no progress",
                ));
            }
            let batch = records
                .into_iter()
                .filter(|r| r.offset < end)
                .filter_map(|r| r.key.map(|k| (k.to_vec(), r.value.map(|v| v.to_vec()))))
                .collect();
            apply(batch)?;
        }
        Ok(end)
    }
}

struct EmbeddedConsumer {
    consumer: sluice_core::Consumer,
    group: String,
    read_committed: bool,
    log: Log,
}

impl EmbeddedConsumer {
    fn consumer_log_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<std::sync::Arc<sluice_core::Partition>> {
        self.log.partition(topic, partition).ok()
    }
}

impl GroupConsumer for EmbeddedConsumer {
    fn poll(&mut self, timeout: Duration) -> Result<Vec<InputRecord>> {
        Ok(self
            .consumer
            .poll(timeout)?
            .into_iter()
            .map(InputRecord::from)
            .collect())
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.consumer
            .assignment()
            .iter()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect()
    }

    fn lag(&mut self, topic: &str, partition: i32, next: Option<i64>) -> Option<i64> {
        let p = self.consumer_log_partition(topic, partition)?;
        let end = if self.read_committed {
            p.last_stable_offset()
        } else {
            p.log_end_offset()
        };
        let from = match next {
            Some(n) => n,
            None => self
                .consumer
                .position(&TopicPartition::new(topic, partition))
                .ok()?,
        };
        Some((end - from).max(0))
    }

    fn rewind(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        for (t, p) in partitions {
            let tp = TopicPartition::new(t.clone(), *p);
            let to = match self.consumer.committed(&tp) {
                Some(o) => Seek::Offset(o),
                None => Seek::Beginning,
            };
            self.consumer.seek(&tp, to)?;
        }
        Ok(())
    }

    fn group_metadata(&self) -> GroupMeta {
        GroupMeta::Id(self.group.clone())
    }

    fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = offsets
            .iter()
            .map(|(t, p, o)| (TopicPartition::new(t.clone(), *p), *o))
            .collect();
        self.consumer.commit_offsets(&offsets)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.consumer.close()?;
        Ok(())
    }
}

/// Records of one batch at most (the embedded producer's default `batch_records`).
const BATCH_RECORDS_MAX: usize = 10_000;
/// Bytes of one batch at most, counted as the producer does (the default `batch_bytes`).
const BATCH_BYTES_MAX: usize = 1 << 20;
/// How long a batch may wait for more records before the next send appends it.
const LINGER: Duration = Duration::from_millis(5);

/// Records buffered for one output partition.
struct OpenBatch {
    topic: String,
    partition: i32,
    records: Vec<Record>,
    bytes: usize,
    /// When the first record of `records` was buffered.
    opened: Instant,
    /// The idempotent sequence of the next batch's first record.
    sequence: i32,
}

/// A topic written to: its partition count (re-read after every flush, since partitions
/// may be added) and the partition keyless records currently stick to.
struct OutputTopic {
    name: String,
    partitions: i32,
    sticky: i32,
}

/// The at-least-once producer: batches per partition, encoded and appended on the
/// sending thread, as `sluice_core::Producer` does (idempotent, 10,000 records or 1 MiB
/// per batch, 5 ms linger checked at each send, keyed records by murmur2, keyless ones
/// sticky), without its per-record costs: no delivery handle, lock or topic-name hashing
/// per record. A failed append fails the `send` or `flush` that made it.
struct BatchingProducer {
    log: Log,
    /// The idempotent producer id and epoch stamped on every batch.
    id: (i64, i16),
    /// One entry per partition written to; a task writes a handful, so a linear search
    /// (most recent hit first) beats hashing.
    batches: Vec<OpenBatch>,
    last: usize,
    topics: Vec<OutputTopic>,
}

impl BatchingProducer {
    fn new(log: Log) -> Result<Self> {
        let id = log.init_producer_id()?;
        Ok(BatchingProducer {
            log,
            id,
            batches: Vec::new(),
            last: 0,
            topics: Vec::new(),
        })
    }

    fn topic(&mut self, name: &str) -> Result<&mut OutputTopic> {
        let i = match self.topics.iter().position(|t| t.name == name) {
            Some(i) => i,
            None => {
                let partitions = self.log.partition_count(name)?;
                self.topics.push(OutputTopic {
                    name: name.to_string(),
                    partitions,
                    sticky: 0,
                });
                self.topics.len() - 1
            }
        };
        self.topics
            .get_mut(i)
            .ok_or_else(|| StreamsError::Topology("output topic index".into()))
    }

    fn batch_index(&mut self, topic: &str, partition: i32) -> usize {
        let hit = |b: &OpenBatch| b.partition == partition && b.topic == topic;
        if self.batches.get(self.last).is_some_and(hit) {
            return self.last;
        }
        let i = match self.batches.iter().position(hit) {
            Some(i) => i,
            None => {
                self.batches.push(OpenBatch {
                    topic: topic.to_string(),
                    partition,
                    records: Vec::new(),
                    bytes: 0,
                    opened: Instant::now(),
                    sequence: 0,
                });
                self.batches.len() - 1
            }
        };
        self.last = i;
        i
    }

    /// Encodes and appends the records buffered in batch `i`, if any.
    fn ship(&mut self, i: usize) -> Result<()> {
        let Some(b) = self.batches.get_mut(i) else {
            return Ok(());
        };
        if b.records.is_empty() {
            return Ok(());
        }
        let stamp = ProducerStamp {
            producer_id: self.id.0,
            producer_epoch: self.id.1,
            base_sequence: b.sequence,
            transactional: false,
        };
        let mut bytes = encode_batch(&b.records, Compression::None, stamp)?;
        self.log.append(&b.topic, b.partition, &mut bytes)?;
        let next = (i64::from(b.sequence) + b.records.len() as i64) % (i64::from(i32::MAX) + 1);
        b.sequence = next as i32;
        b.records.clear();
        b.bytes = 0;
        // Keyless records move on to the next partition once a batch is sent.
        let (topic, partition) = (&b.topic, b.partition);
        if let Some(t) = self.topics.iter_mut().find(|t| t.name == *topic)
            && t.sticky == partition
        {
            t.sticky = t.sticky.wrapping_add(1).max(0);
        }
        Ok(())
    }

    /// Adds a record to its partition's batch, appending the batch if that fills it.
    fn buffer(&mut self, r: OutputRecord, now: Instant) -> Result<()> {
        let t = self.topic(&r.topic)?;
        let partition = match (r.partition, &r.key) {
            (Some(p), _) => {
                if !(0..t.partitions).contains(&p) {
                    return Err(StreamsError::Log(sluice_core::Error::UnknownPartition {
                        topic: r.topic,
                        partition: p,
                        partitions: t.partitions,
                    }));
                }
                p
            }
            (None, Some(key)) => partition_for_key(key, t.partitions),
            (None, None) => t.sticky % t.partitions,
        };
        let i = self.batch_index(&r.topic, partition);
        let b = self
            .batches
            .get_mut(i)
            .ok_or_else(|| StreamsError::Topology("output batch index".into()))?;
        if b.records.is_empty() {
            b.opened = now;
        }
        b.bytes +=
            r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()) + 16;
        let mut headers = r.headers;
        // The producer API takes header values only; a null-valued header is dropped.
        headers.retain(|h| h.value.is_some());
        b.records.push(Record {
            offset: b.records.len() as i64,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers,
        });
        if b.records.len() >= BATCH_RECORDS_MAX || b.bytes >= BATCH_BYTES_MAX {
            self.ship(i)?;
        }
        Ok(())
    }

    /// Appends the batches that have waited `LINGER` or longer.
    fn ship_lingered(&mut self, now: Instant) -> Result<()> {
        for j in 0..self.batches.len() {
            let due = self
                .batches
                .get(j)
                .is_some_and(|b| !b.records.is_empty() && now.duration_since(b.opened) >= LINGER);
            if due {
                self.ship(j)?;
            }
        }
        Ok(())
    }
}

impl OutputProducer for BatchingProducer {
    fn send(&mut self, r: OutputRecord) -> Result<()> {
        let now = Instant::now();
        self.buffer(r, now)?;
        self.ship_lingered(now)
    }

    /// One clock read and one linger check for the whole burst, not one per record.
    fn send_all(&mut self, records: Vec<OutputRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        for r in records {
            self.buffer(r, now)?;
        }
        self.ship_lingered(Instant::now())
    }

    fn flush(&mut self) -> Result<()> {
        for i in 0..self.batches.len() {
            self.ship(i)?;
        }
        // Partition counts may have grown: read them again.
        for t in &mut self.topics {
            t.partitions = self.log.partition_count(&t.name)?;
        }
        Ok(())
    }

    fn begin(&mut self) -> Result<()> {
        Err(not_transactional())
    }

    fn commit(&mut self, _: &[(String, i32, i64)], _: &GroupMeta) -> Result<()> {
        Err(not_transactional())
    }

    fn abort(&mut self) -> Result<()> {
        Err(not_transactional())
    }
}

impl Drop for BatchingProducer {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("producer dropped with unsent records: {e}");
        }
    }
}

fn not_transactional() -> StreamsError {
    StreamsError::Topology("internal error: a transaction on the at-least-once producer".into())
}

/// Deliveries buffered before the first check for settled ones.
const PENDING_CHECK_MIN: usize = 4096;

struct EmbeddedProducer {
    producer: Producer,
    /// Deliveries not yet known to have succeeded; checked at `flush`.
    pending: Vec<sluice_core::Delivery>,
    /// Prune `pending` when it reaches this length.
    check_at: usize,
    /// A delivery that failed, pruned from `pending` before the flush that reports it.
    failed: Option<std::sync::Arc<sluice_core::Error>>,
}

fn to_producer_record(r: OutputRecord) -> ProducerRecord {
    let mut p = ProducerRecord::to(r.topic).timestamp(r.timestamp);
    if let Some(k) = r.key {
        p = p.key(k);
    }
    if let Some(v) = r.value {
        p = p.value(v);
    }
    if let Some(partition) = r.partition {
        p = p.partition(partition);
    }
    for h in r.headers {
        if let Some(v) = h.value {
            p = p.header(h.key, v);
        }
    }
    p
}

impl OutputProducer for EmbeddedProducer {
    fn send(&mut self, record: OutputRecord) -> Result<()> {
        let delivery = self.producer.send(to_producer_record(record))?;
        self.pending.push(delivery);
        if self.pending.len() >= self.check_at {
            // Settled deliveries that failed must still fail the next flush.
            let mut failed = None;
            self.pending.retain(|d| match d.result() {
                None => true,
                Some(Ok(_)) => false,
                Some(Err(e)) => {
                    failed.get_or_insert(e);
                    false
                }
            });
            if let Some(e) = failed {
                self.failed.get_or_insert(e);
            }
            // Check again when as many more have been sent: each delivery is looked at
            // O(1) times on average, however many are still in flight.
            self.check_at = (2 * self.pending.len()).max(PENDING_CHECK_MIN);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.producer.flush()?;
        self.check_at = PENDING_CHECK_MIN;
        let mut failed = self.failed.take();
        for d in self.pending.drain(..) {
            if let Some(Err(e)) = d.result() {
                failed.get_or_insert(e);
            }
        }
        match failed {
            Some(e) => Err(StreamsError::Log(sluice_core::Error::InvalidArgument(
                format!("a record of this job was not written: {e}"),
            ))),
            None => Ok(()),
        }
    }

    fn begin(&mut self) -> Result<()> {
        self.producer.begin_transaction()?;
        Ok(())
    }

    fn commit(&mut self, offsets: &[(String, i32, i64)], group: &GroupMeta) -> Result<()> {
        let GroupMeta::Id(group) = group else {
            return Err(StreamsError::Topology(
                "internal error: Kafka group metadata for the embedded log".into(),
            ));
        };
        let offsets: Vec<(TopicPartition, i64)> = offsets
            .iter()
            .map(|(t, p, o)| (TopicPartition::new(t.clone(), *p), *o))
            .collect();
        if !offsets.is_empty() {
            self.producer.send_offsets_to_transaction(&offsets, group)?;
        }
        self.producer.commit_transaction()?;
        self.pending.clear();
        self.failed = None;
        self.check_at = PENDING_CHECK_MIN;
        Ok(())
    }

    fn abort(&mut self) -> Result<()> {
        self.producer.abort_transaction()?;
        self.pending.clear();
        self.failed = None;
        self.check_at = PENDING_CHECK_MIN;
        Ok(())
    }
}
