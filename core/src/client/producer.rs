//! The embedded producer: buffers records per partition into RecordBatch v2 batches and
//! appends them to the log, returning each record's offset.
//!
//! Keyed records go where Kafka's default partitioner puts them (murmur2); unkeyed records
//! use the sticky strategy of modern Kafka clients: one partition until its batch is sent,
//! then the next, so they spread evenly without tiny batches. Idempotence is on by default:
//! each batch carries producer id, epoch and sequence, so a retried append is recognised by
//! the log instead of written twice.
//!
//! With a transactional id the producer is transactional (`transactions.rs`): after
//! `init_transactions`, records are sent only inside a transaction, and every batch is
//! stamped transactional and appended through the log's transaction coordinator.
//!
//! Per record, a send does no allocation of its own: the record is encoded into its
//! partition's open batch at once ([`BatchBuilder`](crate::record::BatchBuilder), which
//! grows one buffer, sized from the last batch), batches live in a per-topic table indexed
//! by partition (found by name, the last topic first),
//! a topic's partition count is read once per shipped batch rather than per record, and
//! the records of a batch share one outcome (`delivery.rs`) from which a [`Delivery`]
//! builds its `RecordMetadata` when asked. [`Producer::send_all`] buffers many records
//! under one lock and one clock read, without deliveries: a failed batch of theirs fails
//! the next [`Producer::flush`] (or `commit_transaction`). [`Producer::send_all_to`] does
//! the same for records of one topic given as [`Payload`]s (borrowed keys and values),
//! looking the topic up once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::TopicPartition;
use super::batches::{PartitionBatch, State};
use super::delivery::{Appended, BatchOutcome};
pub use super::delivery::{Delivery, RecordMetadata};
use super::transactions::TxnProducer;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::record::{Compression, Header, ProducerStamp, partition_for_key};

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Most records in one batch (default 10 000).
    pub batch_records: usize,
    /// Batch size in bytes, uncompressed, at which it is sent (default 1 MiB).
    pub batch_bytes: usize,
    /// How long a batch may wait for more records before the next `send` ships it
    /// (default 5 ms, librdkafka's `linger.ms`). `flush` always ships everything.
    pub linger: Duration,
    /// Compression codec (default none).
    pub compression: Compression,
    /// Stamp batches with producer id and sequence (default true).
    pub idempotence: bool,
    /// Makes the producer transactional (Kafka's `transactional.id`; default none): one
    /// producer at a time may use an id, a newer one fences the older.
    pub transactional_id: Option<String>,
    /// How long a transaction may stay open before the log aborts it (Kafka's
    /// `transaction.timeout.ms`; default 60 s, at most 15 min).
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            batch_records: 10_000,
            batch_bytes: 1 << 20,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            idempotence: true,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    /// Sets the records-per-batch cap.
    pub fn batch_records(mut self, n: usize) -> Self {
        self.batch_records = n.max(1);
        self
    }
    /// Sets the batch byte threshold.
    pub fn batch_bytes(mut self, n: usize) -> Self {
        self.batch_bytes = n.max(1);
        self
    }
    /// Sets linger.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }
    /// Sets compression.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
    /// Turns idempotence on or off.
    pub fn idempotence(mut self, on: bool) -> Self {
        self.idempotence = on;
        self
    }
    /// Makes the producer transactional with this id (see [`Producer::init_transactions`]).
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = Some(id.into());
        self
    }
    /// Sets the transaction timeout.
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }
}

/// A record to send.
#[derive(Debug, Clone)]
pub struct ProducerRecord {
    /// Destination topic.
    pub topic: String,
    /// Explicit partition; otherwise chosen from the key.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Timestamp; defaults to now.
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<Header>,
}

impl ProducerRecord {
    /// A record for `topic` with no key and no value yet.
    pub fn to(topic: impl Into<String>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            timestamp: None,
            headers: Vec::new(),
        }
    }
    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    /// Sends to this partition regardless of the key.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    /// Sets the timestamp (ms since epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }
}

/// A record for [`Producer::send_all_to`]: what a [`ProducerRecord`] holds besides its
/// topic, partition and headers, borrowed. A source handing one topic many rows builds one
/// of these per row (its key and value slices of the rows' encoded bytes, say) instead of
/// a `ProducerRecord` with its own buffers and its own copy of the topic's name; the
/// producer copies the bytes into the batch being built, so they need not outlive the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Payload<'a> {
    /// Key; the partition is chosen from it (or, without one, the sticky partition).
    pub key: Option<&'a [u8]>,
    /// Value (`None` is a tombstone).
    pub value: Option<&'a [u8]>,
    /// Timestamp (ms since epoch); defaults to now.
    pub timestamp: Option<i64>,
}

/// A record on its way into a batch: a [`ProducerRecord`] or a [`Payload`], borrowed.
struct Unsent<'a> {
    partition: Option<i32>,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [Header],
}

/// Sends records to the log. Thread-safe; share it behind an `Arc`.
pub struct Producer {
    log: Log,
    pub(super) config: ProducerConfig,
    pub(super) state: Mutex<State>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.config)
            .finish()
    }
}

impl Log {
    /// A producer writing to this log.
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer> {
        let txn = match &config.transactional_id {
            Some(id) => Some(TxnProducer::new(self, id, &config)?),
            None => None,
        };
        // A transactional producer gets its id from the coordinator (init_transactions).
        let producer_id = if config.idempotence && txn.is_none() {
            Some(self.init_producer_id()?)
        } else {
            None
        };
        Ok(Producer {
            log: self.clone(),
            config,
            state: Mutex::new(State {
                producer_id,
                topics: Vec::new(),
                topic_index: HashMap::new(),
                last_topic: 0,
                oldest: None,
                unacked_failure: None,
                txn,
            }),
        })
    }
}

impl Producer {
    /// Buffers a record. Its batch is appended when full, when it has lingered, or on
    /// [`flush`](Self::flush); the returned [`Delivery`] then holds the offset.
    pub fn send(&self, record: ProducerRecord) -> Result<Delivery> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let delivery = self.buffer(&mut state, record, (now, crate::now_ms()), true, true)?;
        self.ship_lingered(&mut state, now);
        delivery.ok_or_else(|| Error::InvalidArgument("internal error: no delivery".into()))
    }

    /// Buffers records in order, as [`send`](Self::send) does each, under one lock and one
    /// clock read (records without a timestamp all take that reading's), and without a
    /// [`Delivery`] per record: if a batch holding any of them
    /// fails, the next [`flush`](Self::flush) (or `commit_transaction`) returns the error.
    /// On an error, the records before the failing one are buffered, the rest are not.
    pub fn send_all(&self, records: impl IntoIterator<Item = ProducerRecord>) -> Result<()> {
        let now = (Instant::now(), crate::now_ms());
        let mut state = self.state.lock();
        let mut check_txn = true;
        for record in records {
            self.buffer(&mut state, record, now, false, check_txn)?;
            // The transaction cannot change while the lock is held.
            check_txn = false;
        }
        self.ship_lingered(&mut state, Instant::now());
        Ok(())
    }

    /// Buffers records of one topic in order, as [`send_all`](Self::send_all) does, without
    /// a [`ProducerRecord`] (and a copy of the topic's name) per record: the topic is looked
    /// up once. Keys choose partitions as in [`send`](Self::send); records carry no
    /// headers.
    pub fn send_all_to<'a>(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = Payload<'a>>,
    ) -> Result<()> {
        let now = (Instant::now(), crate::now_ms());
        let mut state = self.state.lock();
        let t = state.topic_slot(&self.log, topic)?;
        let mut check_txn = true;
        for Payload {
            key,
            value,
            timestamp,
        } in records
        {
            let record = Unsent {
                partition: None,
                timestamp: timestamp.unwrap_or(now.1),
                key,
                value,
                headers: &[],
            };
            self.buffer_in(&mut state, t, record, now.0, false, check_txn)?;
            check_txn = false;
        }
        self.ship_lingered(&mut state, Instant::now());
        Ok(())
    }

    /// Adds a record to its partition's batch (shipping the batch if that fills it); a
    /// delivery for it if `delivery`. `now`: the monotonic clock (for lingering) and the
    /// wall clock in milliseconds (a record's timestamp if it has none), read once by the
    /// caller.
    fn buffer(
        &self,
        state: &mut State,
        record: ProducerRecord,
        (now, now_ms): (Instant, i64),
        delivery: bool,
        check_txn: bool,
    ) -> Result<Option<Delivery>> {
        let t = state.topic_slot(&self.log, &record.topic)?;
        let ProducerRecord {
            partition,
            key,
            value,
            timestamp,
            headers,
            ..
        } = record;
        let record = Unsent {
            partition,
            timestamp: timestamp.unwrap_or(now_ms),
            key: key.as_deref(),
            value: value.as_deref(),
            headers: &headers,
        };
        self.buffer_in(state, t, record, now, delivery, check_txn)
    }

    /// [`buffer`](Self::buffer) into topic slot `t`: the record is encoded into its
    /// partition's batch at once.
    fn buffer_in(
        &self,
        state: &mut State,
        t: usize,
        record: Unsent<'_>,
        now: Instant,
        delivery: bool,
        check_txn: bool,
    ) -> Result<Option<Delivery>> {
        let topic = state
            .topics
            .get_mut(t)
            .ok_or_else(|| Error::InvalidArgument("internal error: topic slot".into()))?;
        let mut partitions = match topic.partitions {
            Some(n) => n,
            None => *topic
                .partitions
                .insert(self.log.partition_count(&topic.name)?),
        };
        if check_txn {
            let current = state.producer_id;
            if let Some(txn) = &mut state.txn {
                txn.check_send(current)?;
            }
        }
        let topic = state
            .topics
            .get_mut(t)
            .ok_or_else(|| Error::InvalidArgument("internal error: topic slot".into()))?;
        let partition = match (record.partition, record.key) {
            (Some(p), _) => {
                if !(0..partitions).contains(&p) {
                    // The cached count may be stale: partitions may have been added.
                    partitions = self.log.partition_count(&topic.name)?;
                    topic.partitions = Some(partitions);
                }
                if !(0..partitions).contains(&p) {
                    return Err(Error::UnknownPartition {
                        topic: topic.name.clone(),
                        partition: p,
                        partitions,
                    });
                }
                p
            }
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => {
                // Kept below the partition count, so the move at ship time (which compares
                // it with the shipped partition) keeps cycling through every partition.
                let sticky = topic.sticky.get_or_insert(0);
                // Compared first: a division per record costs more than the rest of
                // choosing the partition.
                if *sticky >= partitions {
                    *sticky %= partitions;
                }
                *sticky
            }
        };
        let p = partition as usize;
        if topic.batches.len() <= p {
            topic.batches.resize_with(p + 1, PartitionBatch::new);
        }
        let batch = topic
            .batches
            .get_mut(p)
            .ok_or_else(|| Error::InvalidArgument("internal error: partition slot".into()))?;
        let timestamp = record.timestamp;
        let offset_delta = batch.builder.len() as i64;
        let opens = batch.builder.is_empty();
        batch.builder.push(
            timestamp,
            record.key,
            record.value,
            record.headers,
            batch.capacity_hint,
        )?;
        if opens {
            batch.opened = now;
            state.oldest = Some(state.oldest.map_or(now, |o| o.min(now)));
        }
        let delivery = if delivery {
            let outcome = batch
                .outcome
                .get_or_insert_with(|| BatchOutcome::new(&topic.name, partition));
            Some(Delivery::new(outcome.clone(), offset_delta, timestamp))
        } else {
            batch.unacked = true;
            None
        };
        let full = batch.builder.len() >= self.config.batch_records
            || batch.builder.size() >= self.config.batch_bytes;
        if full {
            let opened = batch.opened;
            self.ship(state, t, p);
            if state.oldest == Some(opened) {
                state.recompute_oldest();
            }
        }
        Ok(delivery)
    }

    /// Ships every batch that has waited `linger` or longer.
    fn ship_lingered(&self, state: &mut State, now: Instant) {
        let linger = self.config.linger;
        if state
            .oldest
            .is_none_or(|o| now.saturating_duration_since(o) < linger)
        {
            return;
        }
        for t in 0..state.topics.len() {
            let len = state.topics.get(t).map_or(0, |topic| topic.batches.len());
            for p in 0..len {
                let due = state
                    .topics
                    .get(t)
                    .and_then(|topic| topic.batches.get(p))
                    .is_some_and(|b| {
                        !b.builder.is_empty() && now.saturating_duration_since(b.opened) >= linger
                    });
                if due {
                    self.ship(state, t, p);
                }
            }
        }
        state.recompute_oldest();
    }

    /// Sends one record and waits for its offset.
    pub fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let delivery = self.send(record)?;
        self.flush()?;
        match delivery.result() {
            Some(Ok(meta)) => Ok(meta),
            Some(Err(e)) => Err(Error::InvalidArgument(format!("send failed: {e}"))),
            None => Err(Error::InvalidArgument(
                "record was not delivered by flush".into(),
            )),
        }
    }

    /// Appends every buffered batch; returns the first failure of a batch holding records
    /// sent by [`send_all`](Self::send_all) since the last flush, or else the first error of
    /// this flush, if any (each record's [`Delivery`] has its own outcome).
    pub fn flush(&self) -> Result<()> {
        let mut state = self.state.lock();
        let failed = self.ship_all(&mut state);
        match state.unacked_failure.take().or(failed) {
            None => Ok(()),
            Some(e) => Err(Error::InvalidArgument(format!("flush failed: {e}"))),
        }
    }

    /// Encodes and appends the batch of partition `p` of topic `t`, settling its
    /// deliveries; the error if it failed. Leaves `state.oldest` to the caller.
    fn ship(&self, state: &mut State, t: usize, p: usize) -> Option<Arc<Error>> {
        let State {
            producer_id,
            topics,
            txn,
            unacked_failure,
            ..
        } = state;
        let topic = topics.get_mut(t)?;
        let batch = topic.batches.get_mut(p)?;
        if batch.builder.is_empty() {
            return None;
        }
        let partition = p as i32;
        let records = batch.builder.len();
        // The partition count is read again at the next send: partitions may be added.
        topic.partitions = None;
        // Unkeyed records move on to the next partition once a batch is sent.
        if let Some(sticky) = &mut topic.sticky
            && *sticky == partition
        {
            *sticky = sticky.wrapping_add(1).max(0);
        }
        let sequence = batch.sequence;
        let stamp = match *producer_id {
            Some((id, epoch)) => ProducerStamp {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: sequence,
                transactional: txn.is_some(),
            },
            None => ProducerStamp::default(),
        };
        let result = batch
            .finish(self.config.compression, stamp)
            .and_then(|mut bytes| match txn {
                Some(txn) => {
                    let tp = TopicPartition::new(topic.name.clone(), partition);
                    txn.append(&self.log, &stamp, &tp, &mut bytes)
                }
                None => self.log.append_built(&topic.name, partition, &mut bytes),
            });
        match result {
            Ok(info) => {
                if producer_id.is_some() {
                    let next = (i64::from(sequence) + records as i64) % (i64::from(i32::MAX) + 1);
                    batch.sequence = next as i32;
                }
                batch.settle(Ok(Appended {
                    base_offset: info.base_offset,
                    log_append_time: info.log_append_time,
                }));
                None
            }
            Err(e) => {
                let e = Arc::new(e);
                if batch.unacked {
                    unacked_failure.get_or_insert_with(|| e.clone());
                }
                batch.settle(Err(e.clone()));
                Some(e)
            }
        }
    }

    /// Fails every buffered record with `error` without sending it (an aborted
    /// transaction's records), and forgets the failures waiting for a flush.
    pub(super) fn discard_pending(state: &mut State, error: &Arc<Error>) {
        for topic in &mut state.topics {
            for batch in &mut topic.batches {
                if !batch.builder.is_empty() {
                    batch.settle(Err(error.clone()));
                }
            }
        }
        state.oldest = None;
        state.unacked_failure = None;
    }

    /// Ships every buffered batch; the first error, if any.
    pub(super) fn ship_all(&self, state: &mut State) -> Option<Arc<Error>> {
        let mut first_error = None;
        for t in 0..state.topics.len() {
            let len = state.topics.get(t).map_or(0, |topic| topic.batches.len());
            for p in 0..len {
                if let Some(e) = self.ship(state, t, p) {
                    first_error.get_or_insert(e);
                }
            }
        }
        state.oldest = None;
        first_error
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.drop_transaction() {
            return;
        }
        if let Err(e) = self.flush() {
            tracing::error!("producer dropped with unsent records: {e}");
        }
    }
}
