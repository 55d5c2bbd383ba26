//! The same jobs against a Kafka-protocol broker (`sluice serve`'s broker, in-process)
//! through librdkafka: the runtime's Kafka backend, at-least-once and exactly-once.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use sluice_core::broker::{BrokerConfig, BrokerThread};
use sluice_core::{Log, LogOptions};
use sluice_streams::prelude::*;

const WAIT: Duration = Duration::from_secs(60);

/// A broker on an ephemeral port over a log in `dir`; stops when dropped.
struct TestBroker {
    log: Log,
    running: BrokerThread,
}

impl TestBroker {
    fn start(dir: &std::path::Path) -> TestBroker {
        let log = LogOptions::new()
            .background(true)
            .open(dir)
            .expect("open log");
        let config = BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            ..BrokerConfig::default()
        };
        let running = BrokerThread::start(log.clone(), config).expect("start broker");
        TestBroker { log, running }
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
        .bootstrap(broker.running.local_addr().to_string())
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
