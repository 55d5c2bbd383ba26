//! Offset look-ups and committed offsets: ListOffsets by timestamp and for the
//! watermarks, OffsetCommit / OffsetFetch for an assign-only consumer, and commits that
//! outlive the broker process.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::harness::{CLIENT_TIMEOUT, TestBroker, consume, delivered};

/// Produces `count` records to partition 0 of `topic`, record `i` with value `v{i}` and
/// create time `first_timestamp_ms + i * step_ms`.
async fn produce_timed(
    broker: &TestBroker,
    topic: &str,
    count: usize,
    first_timestamp_ms: i64,
    step_ms: i64,
) {
    let producer = broker.producer(&[]);
    for i in 0..count {
        let value = format!("v{i}");
        let record = FutureRecord::<(), _>::to(topic)
            .partition(0)
            .payload(&value)
            .timestamp(first_timestamp_ms + i as i64 * step_ms);
        delivered(producer.send(record, CLIENT_TIMEOUT)).await;
    }
}

#[tokio::test]
async fn offsets_for_times_seeks_by_timestamp() {
    // Proves ListOffsets by timestamp: the answer is the first offset whose timestamp is at
    // or after the one asked for (END past the last record), and seeking there yields that
    // record with its producer-set create time. Consumers use this to replay "since 10:00".
    const TOPIC: &str = "timed";
    const STEP_MS: i64 = 1_000;
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 1);
    let first_ms = sluice_core::now_ms() - 60_000;
    produce_timed(&broker, TOPIC, 10, first_ms, STEP_MS).await;

    let consumer = broker.consumer("by-time");
    let cases = [
        (first_ms - 5_000, Offset::Offset(0)),
        (first_ms, Offset::Offset(0)),
        (first_ms + 3 * STEP_MS + 500, Offset::Offset(4)),
        (first_ms + 9 * STEP_MS, Offset::Offset(9)),
        (first_ms + 9 * STEP_MS + 1, Offset::End),
    ];
    for (timestamp, expected) in cases {
        let mut query = TopicPartitionList::new();
        query
            .add_partition_offset(TOPIC, 0, Offset::Offset(timestamp))
            .unwrap();
        let answer = consumer.offsets_for_times(query, CLIENT_TIMEOUT).unwrap();
        let found = answer.find_partition(TOPIC, 0).unwrap();
        assert_eq!(found.error(), Ok(()));
        assert_eq!(
            found.offset(),
            expected,
            "timestamp {} ms after the first record",
            timestamp - first_ms
        );
    }

    let mut seek = TopicPartitionList::new();
    seek.add_partition_offset(TOPIC, 0, Offset::Offset(4))
        .unwrap();
    consumer.assign(&seek).unwrap();
    let messages = consume(&consumer, 1, CLIENT_TIMEOUT);
    assert_eq!(messages[0].offset(), 4);
    assert_eq!(messages[0].payload(), Some(&b"v4"[..]));
    assert_eq!(
        messages[0].timestamp(),
        Timestamp::CreateTime(first_ms + 4 * STEP_MS)
    );
}

#[tokio::test]
async fn watermarks_report_log_start_and_end() {
    // Proves ListOffsets EARLIEST / LATEST: an empty partition reports (0, 0) and one
    // with ten records (0, 10), which is how consumers measure lag.
    const TOPIC: &str = "marks";
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 2);
    let consumer = broker.consumer("watermarks");
    assert_eq!(
        consumer.fetch_watermarks(TOPIC, 0, CLIENT_TIMEOUT).unwrap(),
        (0, 0)
    );
    produce_timed(&broker, TOPIC, 10, sluice_core::now_ms(), 1).await;
    assert_eq!(
        consumer.fetch_watermarks(TOPIC, 0, CLIENT_TIMEOUT).unwrap(),
        (0, 10)
    );
    assert_eq!(
        consumer.fetch_watermarks(TOPIC, 1, CLIENT_TIMEOUT).unwrap(),
        (0, 0)
    );
}

/// The committed offsets of partitions 0 and 1 of `topic` for the consumer's group.
fn committed(consumer: &rdkafka::consumer::BaseConsumer, topic: &str) -> (Offset, Offset) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    tpl.add_partition(topic, 1);
    let answer = consumer.committed_offsets(tpl, CLIENT_TIMEOUT).unwrap();
    let offset = |p| answer.find_partition(topic, p).unwrap().offset();
    (offset(0), offset(1))
}

#[tokio::test]
async fn committed_offsets_survive_broker_restart() {
    // Proves OffsetCommit / OffsetFetch for a group whose consumer uses `assign`: a commit
    // is read back (partitions never committed report none), is private to its group, and
    // is still there after the broker restarts on the same data directory, where a
    // consumer assigned at its stored offset resumes from the commit.
    const TOPIC: &str = "resumable";
    const GROUP: &str = "billing";
    let mut broker = TestBroker::start();
    broker.create_topic(TOPIC, 2);
    produce_timed(&broker, TOPIC, 10, sluice_core::now_ms(), 1).await;

    {
        let consumer = broker.consumer(GROUP);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let messages = consume(&consumer, 5, CLIENT_TIMEOUT);
        assert_eq!(messages[4].offset(), 4);

        let mut commit = TopicPartitionList::new();
        commit
            .add_partition_offset(TOPIC, 0, Offset::Offset(5))
            .unwrap();
        consumer.commit(&commit, CommitMode::Sync).unwrap();
        assert_eq!(
            committed(&consumer, TOPIC),
            (Offset::Offset(5), Offset::Invalid)
        );
    }
    let stranger = broker.consumer("someone-else");
    assert_eq!(
        committed(&stranger, TOPIC),
        (Offset::Invalid, Offset::Invalid)
    );
    drop(stranger);

    broker.restart();
    let consumer = broker.consumer(GROUP);
    assert_eq!(
        committed(&consumer, TOPIC),
        (Offset::Offset(5), Offset::Invalid)
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Stored).unwrap();
    consumer.assign(&tpl).unwrap();
    let messages = consume(&consumer, 5, CLIENT_TIMEOUT);
    let offsets: Vec<i64> = messages.iter().map(|m| m.offset()).collect();
    assert_eq!(offsets, vec![5, 6, 7, 8, 9]);
    crate::harness::assert_nothing_more(&consumer, Duration::from_millis(300));
}
