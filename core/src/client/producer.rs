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

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::TopicPartition;
use super::transactions::TxnProducer;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::record::{Compression, Header, ProducerStamp, Record, encode_batch, partition_for_key};

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

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp as stored (log-append time on LogAppendTime topics).
    pub timestamp: i64,
}

type Slot = Arc<OnceLock<std::result::Result<RecordMetadata, Arc<Error>>>>;

/// The outcome of one `send`, filled in when its batch is appended.
#[derive(Debug, Clone)]
pub struct Delivery {
    slot: Slot,
}

impl Delivery {
    /// The record's metadata, or the error that failed its batch; `None` while the batch
    /// is still buffered (call [`Producer::flush`]).
    pub fn result(&self) -> Option<std::result::Result<RecordMetadata, Arc<Error>>> {
        self.slot.get().cloned()
    }
}

struct PendingBatch {
    records: Vec<Record>,
    slots: Vec<Slot>,
    bytes: usize,
    opened: Instant,
}

pub(super) struct State {
    pub(super) producer_id: Option<(i64, i16)>,
    pub(super) sequences: HashMap<TopicPartition, i32>,
    pending: HashMap<TopicPartition, PendingBatch>,
    sticky: HashMap<String, i32>,
    /// The transaction state of a transactional producer.
    pub(super) txn: Option<TxnProducer>,
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
                sequences: HashMap::new(),
                pending: HashMap::new(),
                sticky: HashMap::new(),
                txn,
            }),
        })
    }
}

impl Producer {
    /// Buffers a record. Its batch is appended when full, when it has lingered, or on
    /// [`flush`](Self::flush); the returned [`Delivery`] then holds the offset.
    pub fn send(&self, record: ProducerRecord) -> Result<Delivery> {
        let partitions = self.log.partition_count(&record.topic)?;
        let mut state = self.state.lock();
        let current = state.producer_id;
        if let Some(txn) = &mut state.txn {
            txn.check_send(current)?;
        }
        let partition = match (record.partition, &record.key) {
            (Some(p), _) => {
                if !(0..partitions).contains(&p) {
                    return Err(Error::UnknownPartition {
                        topic: record.topic,
                        partition: p,
                        partitions,
                    });
                }
                p
            }
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => *state.sticky.entry(record.topic.clone()).or_insert(0) % partitions,
        };
        let tp = TopicPartition::new(record.topic, partition);
        let size = record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + 16;
        let slot: Slot = Arc::new(OnceLock::new());
        let batch = state
            .pending
            .entry(tp.clone())
            .or_insert_with(|| PendingBatch {
                records: Vec::new(),
                slots: Vec::new(),
                bytes: 0,
                opened: Instant::now(),
            });
        batch.records.push(Record {
            offset: batch.records.len() as i64,
            timestamp: record.timestamp.unwrap_or_else(crate::now_ms),
            key: record.key,
            value: record.value,
            headers: record.headers,
        });
        batch.slots.push(slot.clone());
        batch.bytes += size;
        let full = batch.records.len() >= self.config.batch_records
            || batch.bytes >= self.config.batch_bytes;
        if full {
            self.ship(&mut state, &tp);
        }
        // Ship anything that has lingered long enough.
        let due: Vec<TopicPartition> = state
            .pending
            .iter()
            .filter(|(_, b)| b.opened.elapsed() >= self.config.linger)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            self.ship(&mut state, &tp);
        }
        Ok(Delivery { slot })
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

    /// Appends every buffered batch; returns the first error, if any (each record's
    /// [`Delivery`] has its own outcome).
    pub fn flush(&self) -> Result<()> {
        let mut state = self.state.lock();
        match self.ship_all(&mut state) {
            None => Ok(()),
            Some(e) => Err(Error::InvalidArgument(format!("flush failed: {e}"))),
        }
    }

    /// Encodes and appends one partition's batch, filling its deliveries.
    pub(super) fn ship(&self, state: &mut State, tp: &TopicPartition) -> Option<Arc<Error>> {
        let batch = state.pending.remove(tp)?;
        // Unkeyed records move on to the next partition once a batch is sent.
        if let Some(sticky) = state.sticky.get_mut(&tp.topic)
            && *sticky == tp.partition
        {
            *sticky = sticky.wrapping_add(1).max(0);
        }
        let sequence = state.sequences.get(tp).copied().unwrap_or(0);
        let stamp = match state.producer_id {
            Some((id, epoch)) => ProducerStamp {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: sequence,
                transactional: state.txn.is_some(),
            },
            None => ProducerStamp::default(),
        };
        let result =
            encode_batch(&batch.records, self.config.compression, stamp).and_then(|mut bytes| {
                match &mut state.txn {
                    Some(txn) => txn.append(&self.log, &stamp, tp, &mut bytes),
                    None => self.log.append(&tp.topic, tp.partition, &mut bytes),
                }
            });
        match result {
            Ok(info) => {
                if state.producer_id.is_some() {
                    let next = (i64::from(sequence) + batch.records.len() as i64)
                        % (i64::from(i32::MAX) + 1);
                    state.sequences.insert(tp.clone(), next as i32);
                }
                for (record, slot) in batch.records.iter().zip(&batch.slots) {
                    let _ = slot.set(Ok(RecordMetadata {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset: info.base_offset + record.offset,
                        timestamp: info.log_append_time.unwrap_or(record.timestamp),
                    }));
                }
                None
            }
            Err(e) => {
                let e = Arc::new(e);
                for slot in &batch.slots {
                    let _ = slot.set(Err(e.clone()));
                }
                Some(e)
            }
        }
    }

    /// Fails every buffered record with `error` without sending it (an aborted
    /// transaction's records).
    pub(super) fn discard_pending(state: &mut State, error: &Arc<Error>) {
        for (_, batch) in state.pending.drain() {
            for slot in &batch.slots {
                let _ = slot.set(Err(error.clone()));
            }
        }
    }

    /// Ships every buffered batch; the first error, if any.
    pub(super) fn ship_all(&self, state: &mut State) -> Option<Arc<Error>> {
        let pending: Vec<TopicPartition> = state.pending.keys().cloned().collect();
        let mut first_error = None;
        for tp in pending {
            if let Some(e) = self.ship(state, &tp) {
                first_error.get_or_insert(e);
            }
        }
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
