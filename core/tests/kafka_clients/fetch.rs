//! Fetch long polls: a consumer waiting on an empty partition is woken by a produce
//! instead of sleeping out its `max_wait_ms`.

use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::harness::{TestBroker, delivered};

/// Longer than the test's whole poll timeout, so only a woken fetch can deliver in time.
const FETCH_MAX_WAIT_MS: &str = "5000";
/// How long the consumer waits for the record after it was produced.
const POLL_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn long_poll_wakes_on_produce() {
    // Proves a Fetch parked on an empty partition returns as soon as a record is appended:
    // the consumer asks to wait up to 5 s, a record is produced 200 ms into its poll, and it
    // must arrive within the 3 s poll timeout (a broker that ignored the append until
    // max_wait_ms ran out would miss it).
    const TOPIC: &str = "quiet";
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 1);
    let mut config = broker.consumer_config("long-poll");
    config.set("fetch.wait.max.ms", FETCH_MAX_WAIT_MS);
    let consumer: StreamConsumer = config.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(0))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let producer = broker.producer(&[("acks", "1")]);

    // Let the consumer connect and park its first fetch; nothing may arrive yet.
    let early = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await;
    assert!(early.is_err(), "a record arrived from an empty partition");

    let started = Instant::now();
    let receive = tokio::time::timeout(POLL_TIMEOUT, consumer.recv());
    let produce = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let record = FutureRecord::<(), _>::to(TOPIC)
            .partition(0)
            .payload("wake up");
        delivered(producer.send(record, Duration::from_secs(1))).await;
        started.elapsed()
    };
    let (received, produced_after) = tokio::join!(receive, produce);
    let message = received
        .unwrap_or_else(|_| {
            panic!("no record within {POLL_TIMEOUT:?} (produced {produced_after:?} into the poll)")
        })
        .unwrap();
    assert_eq!(message.payload(), Some(&b"wake up"[..]));
    assert_eq!(message.offset(), 0);
}
