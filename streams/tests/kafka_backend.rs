//! The same jobs against a Kafka-protocol broker (`sluice serve`'s broker, in-process)
//! through librdkafka: the runtime's Kafka backend, at-least-once and exactly-once.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use sluice_core::broker::{Broker, BrokerConfig};
use sluice_core::{Log, LogOptions};
use sluice_streams::prelude::*;

const WAIT: Duration = Duration::from_secs(60);

/// A broker on an ephemeral port over a log in `dir`, on its own runtime thread; stops
/// when dropped.
struct TestBroker {
    addr: SocketAddr,
    log: Log,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestBroker {
    fn start(dir: &std::path::Path) -> TestBroker {
        let log = LogOptions::new()
            .background(true)
            .open(dir)
            .expect("open log");
        let broker_log = log.clone();
        let config = BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            ..BrokerConfig::default()
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let broker = Broker::bind(broker_log, config).await.expect("bind");
                addr_tx.send(broker.local_addr()).expect("send addr");
                let _ = broker
                    .run(async move {
                        let _ = shutdown_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("broker bound");
        TestBroker {
            addr,
            log,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(guarantee: ProcessingGuarantee) {
    let dir = tempfile::tempdir().expect("run");
    let broker = TestBroker::start(&dir.path().join("data"));
    let log = broker.log.clone();
    create(&log, "text-input", 2);
    let input = lines(300, 11);
    produce_lines(&log, "text-input", &input);
    let config = StreamsConfig::new("remote-wc")
        .bootstrap(broker.addr.to_string())
        .state_dir(dir.path().join("state"))
        .processing_guarantee(guarantee)
        .commit_interval(Duration::from_millis(200))
        // Every update emitted, so the exactly-once check below sees each one.
        .cache_max_bytes(0)
        // Purge at every commit, through the broker's DeleteRecords.
        .repartition_purge_interval(Duration::ZERO);
    let mut job = KafkaStreams::new(wordcount(false), config).expect("run");
    job.start().expect("run");
    let want = expected_counts(&input);
    let committed = guarantee == ProcessingGuarantee::ExactlyOnce;
    wait_for(WAIT, "counts through the broker", || {
        assert!(job.error().is_none(), "{:?}", job.error());
        latest(&read_counts(&log, "word-counts", committed)) == want
    });
    wait_for(
        WAIT,
        "the repartition topic purged through the broker",
        || {
            (0..2).all(|p| {
                log.partition("remote-wc-words-repartition", p)
                    .is_ok_and(|p| p.log_start_offset() > 0)
            })
        },
    );
    job.close().expect("run");
    if committed {
        assert_exactly_once(&read_counts(&log, "word-counts", true));
    }
    // The internal topics were created through the broker's admin API.
    assert_eq!(
        log.partition_count("remote-wc-words-repartition")
            .expect("run"),
        2
    );
    assert_eq!(
        log.partition_count("remote-wc-counts-changelog")
            .expect("run"),
        2
    );
}

// Word count through librdkafka against the broker, at least once.
#[test]
fn wordcount_through_a_broker_at_least_once() {
    run(ProcessingGuarantee::AtLeastOnce);
}

// Word count through librdkafka against the broker, exactly once (Kafka transactions with
// send_offsets_to_transaction), every update committed once.
#[test]
fn wordcount_through_a_broker_exactly_once() {
    run(ProcessingGuarantee::ExactlyOnce);
}
