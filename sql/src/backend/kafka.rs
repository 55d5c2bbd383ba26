//! [`Backend::Kafka`](super::Backend::Kafka): topic tables on a Kafka-compatible cluster
//! (a `sluice serve` broker or any Kafka), through librdkafka.
//!
//! - Topics are looked up through metadata and created with the admin API (replication
//!   factor: the cluster's default).
//! - A scan's ranges come from ListOffsets: the low watermark and, asked as a
//!   read_committed client, the last stable offset; a `_timestamp` lower bound from
//!   ListOffsets by timestamp (the cluster's time index).
//! - Each range is read by its own consumer, assigned (no group membership, no commits) at
//!   the range's start with `isolation.level = read_committed`, so aborted and open
//!   transactions never show.
//! - Writes go through an idempotent producer (`acks = all`) with librdkafka's
//!   `murmur2_random` partitioner, so a keyed row lands in the partition the Java client and
//!   the embedded producer would pick.
//!
//! Every request is bounded by [`REQUEST_TIMEOUT`] and a read that receives nothing for
//! [`STALL_TIMEOUT`] fails, so an unreachable broker ends a statement with an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KHeader, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_core::ProducerRecord;
use sluice_core::record::{Header, RecordRef};

use super::PartitionRange;
use crate::provider::pushdown::ScanBounds;
use crate::{Error, Result};

/// Longest one metadata, admin or offset request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a read may go without receiving anything before it fails.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a write may wait for the cluster to accept everything.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Records one [`KafkaReader::visit_next`] hands out at most.
const CHUNK_RECORDS: usize = 10_000;

/// A connection to a Kafka-compatible cluster: see the module docs.
pub struct Kafka {
    bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
    /// Metadata and offset lookups, as a read_committed client.
    lookups: BaseConsumer,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

/// The error of a failed request, saying what was being done.
fn kafka_error(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Error {
    let context = context.into();
    move |source| Error::Kafka { context, source }
}

impl Kafka {
    /// Connects to `bootstrap` and checks that a broker answers.
    pub(crate) fn connect(bootstrap: &str) -> Result<Self> {
        let kafka = Self {
            bootstrap: bootstrap.to_string(),
            admin: client_config(bootstrap)
                .create()
                .map_err(kafka_error(format!(
                    "creating an admin client for {bootstrap}"
                )))?,
            lookups: client_config(bootstrap)
                .set("isolation.level", "read_committed")
                .create()
                .map_err(kafka_error(format!("creating a client for {bootstrap}")))?,
        };
        kafka
            .lookups
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(kafka_error(format!(
                "connecting to {bootstrap} (is the broker up and reachable?)"
            )))?;
        Ok(kafka)
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// How many partitions `topic` has, `None` if it does not exist.
    pub(crate) fn partition_count(&self, topic: &str) -> Result<Option<i32>> {
        let metadata = self
            .lookups
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(kafka_error(format!("fetching metadata of topic {topic}")))?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match t.error() {
            None => Ok(Some(t.partitions().len() as i32)),
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
                Ok(None)
            }
            Some(e) => Err(Error::Kafka {
                context: format!("fetching metadata of topic {topic}"),
                source: KafkaError::MetadataFetch(e.into()),
            }),
        }
    }

    /// Creates `topic` unless it exists.
    pub(crate) fn ensure_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        if self.partition_count(topic)?.is_some() {
            return Ok(());
        }
        // -1: the cluster's default replication factor.
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
        for (key, value) in configs {
            new = new.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let context = format!("creating topic {topic}");
        // The admin client completes its futures from its own thread, so waiting here
        // needs no runtime (and works inside one).
        let results = futures::executor::block_on(self.admin.create_topics([&new], &options))
            .map_err(kafka_error(context.clone()))?;
        for result in results {
            match result {
                Ok(_) => {}
                // Created meanwhile by someone else: what was wanted.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(Error::Kafka {
                        context,
                        source: KafkaError::AdminOp(code),
                    });
                }
            }
        }
        // Metadata reaches every broker shortly after creation: wait until it shows.
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        while self.partition_count(topic)?.is_none() {
            if Instant::now() > deadline {
                return Err(Error::Stalled(format!(
                    "topic {topic} was created but does not show in {}'s metadata",
                    self.bootstrap
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Each partition's range under `bounds`: see the module docs.
    pub(crate) fn plan_ranges(
        &self,
        topic: &str,
        bounds: &ScanBounds,
    ) -> Result<Vec<PartitionRange>> {
        let count = self.partition_count(topic)?.ok_or_else(|| {
            Error::Log(sluice_core::Error::UnknownTopic {
                topic: topic.to_string(),
            })
        })?;
        let mut ranges = Vec::new();
        for id in (0..count).filter(|id| bounds.includes_partition(*id)) {
            let (low, stable) = self
                .lookups
                .fetch_watermarks(topic, id, REQUEST_TIMEOUT)
                .map_err(kafka_error(format!("listing offsets of {topic}/{id}")))?;
            let (start, end) = bounds.offset_range(low, stable);
            ranges.push(PartitionRange {
                partition: id,
                start,
                end,
            });
        }
        if let Some(ms) = bounds.timestamp_min_ms {
            let mut times = TopicPartitionList::new();
            for range in &ranges {
                times
                    .add_partition_offset(topic, range.partition, Offset::Offset(ms))
                    .map_err(kafka_error("listing offsets by time"))?;
            }
            let found = self
                .lookups
                .offsets_for_times(times, REQUEST_TIMEOUT)
                .map_err(kafka_error(format!("listing offsets of {topic} by time")))?;
            for range in &mut ranges {
                let offset = found
                    .find_partition(topic, range.partition)
                    .map_or(Offset::End, |p| p.offset());
                range.start = match offset {
                    // The first record at or after `ms`: those before are older.
                    Offset::Offset(o) => range.start.max(o),
                    // No record that recent.
                    _ => range.end,
                };
            }
        }
        for range in &mut ranges {
            range.start = range.start.min(range.end);
        }
        Ok(ranges)
    }

    /// A reader of one range.
    pub(crate) fn reader(&self, topic: &str, range: PartitionRange) -> Result<KafkaReader> {
        let context = || format!("reading {topic}/{}", range.partition);
        let consumer: BaseConsumer = client_config(&self.bootstrap)
            // librdkafka wants a group id even for assigned partitions; nothing is
            // committed to it.
            .set("group.id", "sluice-sql")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            // Retention moved the start past the range's start: read from the new start.
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(kafka_error(context()))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, range.partition, Offset::Offset(range.start))
            .map_err(kafka_error(context()))?;
        consumer
            .assign(&assignment)
            .map_err(kafka_error(context()))?;
        Ok(KafkaReader {
            consumer,
            topic: topic.to_string(),
            range,
            done: range.start >= range.end,
        })
    }

    /// A writer of records.
    pub(crate) fn writer(&self) -> Result<KafkaWriter> {
        let failure = Arc::new(Mutex::new(None));
        let producer = client_config(&self.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", FLUSH_TIMEOUT.as_millis().to_string())
            .create_with_context(Deliveries {
                failure: Arc::clone(&failure),
            })
            .map_err(kafka_error(format!(
                "creating a producer for {}",
                self.bootstrap
            )))?;
        Ok(KafkaWriter { producer, failure })
    }
}

/// Settings every client starts from.
fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-sql")
        // A typo must fail, not create a topic on brokers that allow that.
        .set("allow.auto.create.topics", "false")
        .set("socket.timeout.ms", REQUEST_TIMEOUT.as_millis().to_string());
    if let Ok(debug) = std::env::var("SLUICE_RDKAFKA_DEBUG") {
        config.set("debug", debug);
    }
    config
}

/// Reads one partition's range through an assigned consumer.
pub(crate) struct KafkaReader {
    consumer: BaseConsumer,
    topic: String,
    range: PartitionRange,
    done: bool,
}

impl KafkaReader {
    /// As [`PartitionReader::visit_next`](super::PartitionReader::visit_next).
    pub(crate) fn visit_next(
        &mut self,
        mut visit: impl FnMut(&RecordRef<'_>) -> Result<bool>,
    ) -> Result<bool> {
        let mut handed = 0;
        let mut last_progress = Instant::now();
        while !self.done {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    last_progress = Instant::now();
                    let offset = message.offset();
                    if offset >= self.range.end {
                        self.done = true;
                        break;
                    }
                    let headers = message
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| Header {
                                    key: h.key.to_string(),
                                    value: h.value.map(bytes::Bytes::copy_from_slice),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let record = RecordRef {
                        offset,
                        timestamp: message.timestamp().to_millis().unwrap_or(-1),
                        key: message.key(),
                        value: message.payload(),
                        headers,
                    };
                    if !visit(&record)? || offset + 1 >= self.range.end {
                        self.done = true;
                        break;
                    }
                    handed += 1;
                    if handed >= CHUNK_RECORDS {
                        return Ok(true);
                    }
                }
                // The end of what the partition had when fetched: at or past the range's
                // end, which was planned from an earlier look.
                Some(Err(KafkaError::PartitionEOF(_))) => self.done = true,
                Some(Err(e)) => {
                    return Err(Error::Kafka {
                        context: format!("reading {}/{}", self.topic, self.range.partition),
                        source: e,
                    });
                }
                None => {
                    // Transaction markers and aborted records take offsets but are never
                    // handed out: the position tells whether the range is done.
                    if self.position()? >= self.range.end {
                        self.done = true;
                    } else if handed > 0 {
                        return Ok(true);
                    } else if last_progress.elapsed() > STALL_TIMEOUT {
                        return Err(Error::Stalled(format!(
                            "reading {}/{}: nothing received for {} s at offset {} \
                             (the range ends at {}); is the broker still up?",
                            self.topic,
                            self.range.partition,
                            STALL_TIMEOUT.as_secs(),
                            self.position()?,
                            self.range.end
                        )));
                    }
                }
            }
        }
        Ok(false)
    }

    /// The offset the consumer reads next.
    fn position(&self) -> Result<i64> {
        let position = self.consumer.position().map_err(kafka_error(format!(
            "reading {}/{}",
            self.topic, self.range.partition
        )))?;
        Ok(position
            .find_partition(&self.topic, self.range.partition)
            .and_then(|p| p.offset().to_raw())
            .filter(|o| *o >= 0)
            .unwrap_or(self.range.start))
    }
}

/// Records the first failed delivery, for [`KafkaWriter::flush`].
struct Deliveries {
    failure: Arc<Mutex<Option<KafkaError>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failure.lock().get_or_insert_with(|| e.clone());
        }
    }
}

/// Writes records through an idempotent librdkafka producer.
pub(crate) struct KafkaWriter {
    producer: ThreadedProducer<Deliveries>,
    failure: Arc<Mutex<Option<KafkaError>>>,
}

impl KafkaWriter {
    /// Queues `records`, waiting while librdkafka's queue is full.
    pub(crate) fn send_all(&self, records: Vec<ProducerRecord>) -> Result<()> {
        for record in records {
            let headers = (!record.headers.is_empty()).then(|| {
                record
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |headers, h| {
                        headers.insert(KHeader {
                            key: &h.key,
                            value: h.value.as_deref(),
                        })
                    })
            });
            let mut out: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&record.topic);
            if let Some(key) = record.key.as_deref() {
                out = out.key(key);
            }
            if let Some(value) = record.value.as_deref() {
                out = out.payload(value);
            }
            if let Some(partition) = record.partition {
                out = out.partition(partition);
            }
            if let Some(timestamp) = record.timestamp {
                out = out.timestamp(timestamp);
            }
            if let Some(headers) = headers {
                out = out.headers(headers);
            }
            loop {
                match self.producer.send(out) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        out = back;
                        // The producer's own thread drains the queue.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => {
                        return Err(Error::Kafka {
                            context: format!("writing to topic {}", record.topic),
                            source: e,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until the cluster has accepted everything sent; the first failure, if any.
    pub(crate) fn flush(&self) -> Result<()> {
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(kafka_error("waiting for the broker to accept the records"))?;
        match self.failure.lock().take() {
            Some(e) => Err(Error::Kafka {
                context: "writing records".into(),
                source: e,
            }),
            None => Ok(()),
        }
    }
}
