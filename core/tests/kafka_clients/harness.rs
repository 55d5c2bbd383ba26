//! A broker on an ephemeral loopback port over a log in a temporary directory, librdkafka
//! client configs pointed at it, and bounded helpers to produce and consume.
//!
//! The broker runs on its own multi-thread tokio runtime in a background thread, so a test
//! may block in librdkafka calls without starving it. Every wait here has a deadline: a
//! broker that never answers fails the test instead of hanging the suite.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use sluice_core::broker::{Broker, BrokerConfig};
use sluice_core::record::BatchIter;
use sluice_core::{Log, LogOptions, NewTopic};
use tempfile::TempDir;

/// Longest a broker may take to bind, or to stop after its shutdown signal.
const BROKER_START_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest any single client call (metadata, delivery, commit, admin) may take.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Partitions of topics the broker auto-creates; not 1, so a test notices if it is ignored.
pub(crate) const AUTO_CREATE_PARTITIONS: i32 = 2;
/// The broker's node id; not 0, so a test notices a hard-coded leader.
pub(crate) const NODE_ID: i32 = 1;

/// A running broker over its own data directory. Stops (bounded) when dropped.
pub(crate) struct TestBroker {
    /// The data directory; outlives restarts so a restarted broker sees the same log.
    dir: TempDir,
    running: Option<Running>,
}

struct Running {
    addr: SocketAddr,
    /// A clone of the broker's log, for tests to set up topics and inspect stored batches.
    log: Log,
    /// Dropping or firing it resolves the broker's shutdown future.
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<sluice_core::Result<()>>,
}

impl TestBroker {
    /// A broker over a fresh log.
    pub(crate) fn start() -> TestBroker {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let running = Some(Running::spawn(dir.path()));
        TestBroker { dir, running }
    }

    /// Stops the broker (it must shut down cleanly) and starts a new one on the same data
    /// directory, as after a process restart. The new broker listens on a new port.
    pub(crate) fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().unwrap();
        }
        self.running = Some(Running::spawn(self.dir.path()));
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("broker is running")
    }

    /// The address the broker listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.running().addr
    }

    /// The log behind the broker.
    pub(crate) fn log(&self) -> &Log {
        &self.running().log
    }

    /// Creates a topic directly in the log, as an operator would before starting clients.
    pub(crate) fn create_topic(&self, name: &str, partitions: i32) {
        self.log()
            .create_topic(NewTopic::new(name, partitions))
            .unwrap();
    }

    /// The header of every batch stored in a partition, read straight from the log.
    pub(crate) fn stored_batches(&self, topic: &str, partition: i32) -> Vec<StoredBatch> {
        let read = self.log().read(topic, partition, 0, 64 << 20).unwrap();
        BatchIter::new(&read.records)
            .map(|item| {
                let (_, header) = item.unwrap();
                StoredBatch {
                    base_offset: header.base_offset(),
                    producer_id: header.producer_id(),
                    base_sequence: header.base_sequence(),
                    record_count: header.record_count(),
                    compression_id: header.attributes().compression_id(),
                }
            })
            .collect()
    }

    /// Settings every client shares: this broker, IPv4 and short timeouts, plus librdkafka
    /// debug contexts from `SLUICE_RDKAFKA_DEBUG` (e.g. `protocol,broker`).
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.addr().to_string())
            .set("broker.address.family", "v4")
            .set("socket.timeout.ms", "10000");
        if let Ok(debug) = std::env::var("SLUICE_RDKAFKA_DEBUG") {
            config.set("debug", debug);
        }
        config
    }

    /// A producer config: Kafka's (Java) murmur2 partitioner rather than librdkafka's
    /// default CRC32 one, and deliveries that fail within the test's time budget.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "10000")
            .set("linger.ms", "5");
        config
    }

    /// A FutureProducer with `acks=all` and the given extra settings.
    pub(crate) fn producer(&self, extra: &[(&str, &str)]) -> FutureProducer {
        let mut config = self.producer_config();
        config.set("acks", "all");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        config.create().unwrap()
    }

    /// A consumer config in group `group` that never commits on its own and fetches with
    /// short long-polls (tests override `fetch.wait.max.ms` where it matters).
    pub(crate) fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100");
        config
    }

    /// A BaseConsumer in group `group` (assign-only: it never joins the group).
    pub(crate) fn consumer(&self, group: &str) -> BaseConsumer {
        self.consumer_config(group).create().unwrap()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let result = running.stop();
            // A second panic while unwinding would abort and hide the first one.
            if !std::thread::panicking() {
                result.unwrap();
            }
        }
    }
}

impl Running {
    fn spawn(dir: &Path) -> Running {
        let log = LogOptions::new().background(true).open(dir).unwrap();
        let broker_log = log.clone();
        let config = BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            auto_create_topics: true,
            default_partitions: AUTO_CREATE_PARTITIONS,
            node_id: NODE_ID,
            metrics_listen: None,
            ..BrokerConfig::default()
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sluice-broker".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let broker = match Broker::bind(broker_log, config).await {
                        Ok(broker) => broker,
                        Err(e) => {
                            let _ = addr_tx.send(Err(e.to_string()));
                            return Err(e);
                        }
                    };
                    let _ = addr_tx.send(Ok(broker.local_addr()));
                    broker
                        .run(async move {
                            // A dropped sender (the test panicked) also means stop.
                            let _ = shutdown_rx.await;
                        })
                        .await
                })
                // The runtime drops here, taking every connection task and its log
                // clone with it, so the data directory is free for a restart.
            })
            .unwrap();
        let addr = addr_rx
            .recv_timeout(BROKER_START_STOP_TIMEOUT)
            .expect("broker did not bind in time")
            .expect("broker failed to bind");
        Running {
            addr,
            log,
            shutdown,
            thread,
        }
    }

    /// Signals shutdown and waits (bounded) for `Broker::run` to return.
    fn stop(self) -> Result<(), String> {
        let _ = self.shutdown.send(());
        let deadline = Instant::now() + BROKER_START_STOP_TIMEOUT;
        while !self.thread.is_finished() {
            if Instant::now() > deadline {
                return Err(format!(
                    "broker on {} did not stop within {BROKER_START_STOP_TIMEOUT:?} of shutdown",
                    self.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("Broker::run returned an error: {e}")),
            Err(_) => return Err("the broker thread panicked".into()),
        }
        self.log
            .close()
            .map_err(|e| format!("closing the log: {e}"))
    }
}

/// One stored batch's header fields the tests check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredBatch {
    pub base_offset: i64,
    pub producer_id: i64,
    pub base_sequence: i32,
    pub record_count: i32,
    pub compression_id: i16,
}

/// A record as the tests write and expect it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Sent {
    /// What a consumed message carries, in the same shape.
    pub(crate) fn of(message: &OwnedMessage) -> Sent {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Sent {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// Awaits a delivery report, failing the test if it takes longer than `CLIENT_TIMEOUT`.
pub(crate) async fn delivered(
    report: impl Future<Output = OwnedDeliveryResult>,
) -> rdkafka::producer::future_producer::Delivery {
    match tokio::time::timeout(CLIENT_TIMEOUT, report).await {
        Ok(Ok(delivery)) => delivery,
        Ok(Err((e, message))) => panic!(
            "delivery to {}/{} failed: {e}",
            message.topic(),
            message.partition()
        ),
        Err(_) => panic!("no delivery report within {CLIENT_TIMEOUT:?}"),
    }
}

/// Polls until `count` messages arrived or `timeout` passed; fails the test on a consumer
/// error or a short count.
pub(crate) fn consume(
    consumer: &BaseConsumer,
    count: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "consumed {} of {count} messages within {timeout:?}",
            messages.len()
        );
        match consumer.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(message)) => messages.push(message.detach()),
            Some(Err(e)) => panic!("consumer error after {} messages: {e}", messages.len()),
            None => {}
        }
    }
    messages
}

/// Polls for `window` and fails the test if any message (or error) arrives.
pub(crate) fn assert_nothing_more(consumer: &BaseConsumer, window: Duration) {
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            match result {
                Ok(m) => panic!(
                    "unexpected extra message at {}/{}@{}",
                    m.topic(),
                    m.partition(),
                    m.offset()
                ),
                Err(e) => panic!("unexpected consumer error: {e}"),
            }
        }
    }
}

/// Partition counts by topic name, from a metadata request for all topics.
pub(crate) fn topic_partitions(
    consumer: &BaseConsumer,
) -> std::collections::BTreeMap<String, usize> {
    let metadata = consumer.fetch_metadata(None, CLIENT_TIMEOUT).unwrap();
    metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect()
}

/// Installs a `RUST_LOG`-filtered subscriber once; librdkafka's log lines (target
/// `librdkafka`) reach it through the `log` bridge.
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    });
}
