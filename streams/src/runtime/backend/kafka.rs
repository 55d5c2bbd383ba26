//! The Kafka backend: any Kafka-compatible cluster (a `sluice serve` broker or another)
//! through librdkafka.
//!
//! Consumers use the eager `range` assignor, so topics with equal partition counts are
//! assigned partition by partition to the same member: co-partitioned inputs meet in one
//! task. Admin calls run on a small private tokio runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header as KHeader, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{Backend, ChangelogEntry, GroupConsumer, GroupMeta, OutputProducer};
use crate::error::{Result, StreamsError};
use crate::record::{Header, InputRecord, OutputRecord};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest closing a group consumer may take before it is left behind (see
/// [`close_within`]).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Kafka {
    servers: String,
    admin: AdminClient<DefaultClientContext>,
    metadata: BaseConsumer,
    runtime: tokio::runtime::Runtime,
}

impl Kafka {
    pub fn connect(servers: &str, application_id: &str) -> Result<Kafka> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", servers)
            .set("client.id", format!("{application_id}-admin"));
        let admin = config.create()?;
        let metadata = config.create()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StreamsError::Kafka(KafkaError::ClientCreation(e.to_string())))?;
        Ok(Kafka {
            servers: servers.to_string(),
            admin,
            metadata,
            runtime,
        })
    }

    fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.servers);
        if let Ok(debug) = std::env::var("SLUICE_RDKAFKA_DEBUG") {
            c.set("debug", debug);
        }
        c
    }
}

impl Backend for Kafka {
    fn partitions(&self, topic: &str) -> Result<Option<i32>> {
        let md = self.metadata.fetch_metadata(Some(topic), ADMIN_TIMEOUT)?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        if t.error().is_some() || t.partitions().is_empty() {
            return Ok(None);
        }
        Ok(Some(t.partitions().len() as i32))
    }

    fn ensure_topic(&self, topic: &str, partitions: i32, compacted: bool) -> Result<()> {
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        if compacted {
            new = new.set("cleanup.policy", "compact");
        }
        let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        let results = self
            .runtime
            .block_on(self.admin.create_topics([&new], &opts))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(StreamsError::Kafka(KafkaError::AdminOp(code)).context_topic(&t));
                }
            }
        }
        Ok(())
    }

    fn group_consumer(
        &self,
        group: &str,
        topics: &[String],
        read_committed: bool,
    ) -> Result<Box<dyn GroupConsumer>> {
        let consumer: BaseConsumer = self
            .base_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "10000")
            .set(
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .create()?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Box::new(KafkaConsumer { consumer }))
    }

    fn producer(&self, transactional_id: Option<&str>) -> Result<Box<dyn OutputProducer>> {
        let failure = Arc::new(Mutex::new(None));
        let mut config = self.base_config();
        // Kafka's (Java) murmur2 partitioner, not librdkafka's CRC32 default: records keyed
        // alike land in the same partition whichever client wrote them, as co-partitioned
        // topics need.
        config
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4");
        if let Some(id) = transactional_id {
            config
                .set("transactional.id", id)
                .set("transaction.timeout.ms", "10000");
        }
        let producer: ThreadedProducer<Delivery> = config.create_with_context(Delivery {
            failure: failure.clone(),
        })?;
        if transactional_id.is_some() {
            producer.init_transactions(ADMIN_TIMEOUT)?;
        }
        Ok(Box::new(KafkaProducer { producer, failure }))
    }

    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        Ok(self
            .metadata
            .fetch_watermarks(topic, partition, ADMIN_TIMEOUT)?
            .1)
    }

    fn purge(&self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        let result = self
            .runtime
            .block_on(self.admin.delete_records(&tpl, &opts))?;
        for e in result.elements() {
            if let Err(e) = e.error() {
                return Err(StreamsError::Kafka(e));
            }
        }
        Ok(())
    }

    fn read_changelog(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        read_committed: bool,
        apply: &mut dyn FnMut(Vec<ChangelogEntry>) -> Result<()>,
    ) -> Result<i64> {
        let (low, high) = self
            .metadata
            .fetch_watermarks(topic, partition, ADMIN_TIMEOUT)?;
        let start = from.max(low);
        if start >= high {
            return Ok(high);
        }
        let consumer: BaseConsumer = self
            .base_config()
            .set("enable.auto.commit", "false")
            .set("group.id", "sluice-streams-restore")
            .set(
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
        consumer.assign(&tpl)?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut batch = Vec::new();
        loop {
            let position = consumer
                .position()?
                .find_partition(topic, partition)
                .and_then(|p| p.offset().to_raw())
                .unwrap_or(start);
            if position >= high {
                break;
            }
            if Instant::now() > deadline {
                return Err(StreamsError::state(
                    topic,
                    partition,
                    "changelog restore made no progress",
                ));
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if m.offset() < high
                        && let Some(k) = m.key()
                    {
                        batch.push((k.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    }
                    if batch.len() >= 10_000 {
                        apply(std::mem::take(&mut batch))?;
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => {
                    if !batch.is_empty() {
                        apply(std::mem::take(&mut batch))?;
                    }
                }
            }
        }
        apply(batch)?;
        Ok(high)
    }
}

impl StreamsError {
    fn context_topic(self, topic: &str) -> StreamsError {
        StreamsError::Topology(format!("cannot create topic '{topic}': {self}"))
    }
}

struct KafkaConsumer {
    consumer: BaseConsumer,
}

fn input(m: &BorrowedMessage<'_>) -> InputRecord {
    let headers = m
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
    InputRecord {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        key: m.key().map(bytes::Bytes::copy_from_slice),
        value: m.payload().map(bytes::Bytes::copy_from_slice),
        headers,
    }
}

impl GroupConsumer for KafkaConsumer {
    fn poll(&mut self, timeout: Duration) -> Result<Vec<InputRecord>> {
        let mut out = Vec::new();
        let mut wait = timeout;
        while out.len() < 1000 {
            match self.consumer.poll(wait) {
                Some(Ok(m)) => out.push(input(&m)),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            }
            wait = Duration::ZERO;
        }
        Ok(out)
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.consumer
            .assignment()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn lag(&mut self, _topic: &str, _partition: i32, _next: Option<i64>) -> Option<i64> {
        // librdkafka's cached watermarks are not exposed by the rdkafka crate, and asking
        // the broker per loop would cost a round trip.
        None
    }

    fn rewind(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let committed = self.consumer.committed_offsets(tpl, ADMIN_TIMEOUT)?;
        for e in committed.elements() {
            let to = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            self.consumer
                .seek(e.topic(), e.partition(), to, ADMIN_TIMEOUT)?;
        }
        Ok(())
    }

    fn group_metadata(&self) -> GroupMeta {
        match self.consumer.group_metadata() {
            Some(m) => GroupMeta::Kafka(m),
            None => GroupMeta::Id(String::new()),
        }
    }

    fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        let tpl = offsets_list(offsets)?;
        self.consumer.commit(&tpl, CommitMode::Sync)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.consumer.unsubscribe();
        close_within(self.consumer, CLOSE_TIMEOUT);
        Ok(())
    }
}

/// Closes (drops) a group consumer on a thread of its own, waiting at most `limit`.
///
/// librdkafka 2.12 can block a closing consumer for ever in `rd_kafka_assign`, when a
/// rebalance event reaches its queue after its group handler has stopped
/// (confluentinc/librdkafka#4884), and rust-rdkafka's `Drop` serves such events. A close
/// that takes longer than `limit` is left behind with a warning instead of hanging the
/// caller; the group then expires the member after its session timeout.
fn close_within<C: ConsumerContext + 'static>(consumer: BaseConsumer<C>, limit: Duration) {
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = closed_tx.send(());
        });
    // Had the thread not started, the consumer was closed here, with the closure.
    if closing.is_ok() && closed_rx.recv_timeout(limit).is_err() {
        tracing::warn!(
            "a Kafka consumer did not close within {limit:?} (librdkafka#4884); left behind, \
             the group expires it after its session timeout"
        );
    }
}

fn offsets_list(offsets: &[(String, i32, i64)]) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
    }
    Ok(tpl)
}

/// Remembers the first failed delivery, reported at the next flush or commit.
struct Delivery {
    failure: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            self.failure.lock().get_or_insert_with(|| {
                format!(
                    "a record for {}-{} was not written: {e}",
                    m.topic(),
                    m.partition()
                )
            });
        }
    }
}

struct KafkaProducer {
    producer: ThreadedProducer<Delivery>,
    failure: Arc<Mutex<Option<String>>>,
}

impl KafkaProducer {
    fn check(&self) -> Result<()> {
        match self.failure.lock().take() {
            Some(f) => Err(StreamsError::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::Fail,
            ))
            .with_reason(f)),
            None => Ok(()),
        }
    }
}

impl StreamsError {
    fn with_reason(self, reason: String) -> StreamsError {
        StreamsError::User {
            node: "producer".into(),
            reason: format!("{reason} ({self})"),
        }
    }
}

impl OutputProducer for KafkaProducer {
    fn send(&mut self, r: OutputRecord) -> Result<()> {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for h in &r.headers {
            headers = headers.insert(KHeader {
                key: &h.key,
                value: h.value.as_deref(),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&r.topic)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(k) = r.key.as_deref() {
            record = record.key(k);
        }
        if let Some(v) = r.value.as_deref() {
            record = record.payload(v);
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.producer.flush(ADMIN_TIMEOUT)?;
        self.check()
    }

    fn begin(&mut self) -> Result<()> {
        self.producer.begin_transaction()?;
        Ok(())
    }

    fn commit(&mut self, offsets: &[(String, i32, i64)], group: &GroupMeta) -> Result<()> {
        if !offsets.is_empty() {
            let GroupMeta::Kafka(meta) = group else {
                return Err(StreamsError::Topology(
                    "internal error: no consumer group metadata for a Kafka transaction".into(),
                ));
            };
            self.producer.send_offsets_to_transaction(
                &offsets_list(offsets)?,
                meta,
                ADMIN_TIMEOUT,
            )?;
        }
        self.producer.commit_transaction(ADMIN_TIMEOUT)?;
        self.check()
    }

    fn abort(&mut self) -> Result<()> {
        self.producer.abort_transaction(ADMIN_TIMEOUT)?;
        Ok(())
    }
}
