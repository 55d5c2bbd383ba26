//! Kafka transactions against the broker with librdkafka's transactional producer and
//! read_committed / read_uncommitted consumers: commit and abort visibility across
//! partitions, offsets committed with a transaction, fencing by transactional id, a broker
//! restart in the middle, and the coordinator's timeout abort. Every wait is bounded.

// Tests fail loudly on the first unexpected error.
#![allow(clippy::unwrap_used)]

#[path = "kafka_clients/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use harness::{CLIENT_TIMEOUT, TestBroker, assert_nothing_more, consume, delivered};

const TOPIC: &str = "txn";
/// How long a consumer may take to see what it should.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(15);

/// A transactional producer for `id`, initialised.
fn txn_producer(broker: &TestBroker, id: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut settings = vec![("transactional.id", id)];
    settings.extend_from_slice(extra);
    let producer = broker.producer(&settings);
    producer.init_transactions(CLIENT_TIMEOUT).unwrap();
    producer
}

/// Sends `values` alternately to partitions 0 and 1 and waits for every delivery.
async fn send_all(producer: &FutureProducer, values: &[&str]) {
    for (i, value) in values.iter().enumerate() {
        let record = FutureRecord::<(), _>::to(TOPIC)
            .partition((i % 2) as i32)
            .payload(*value);
        delivered(producer.send(record, CLIENT_TIMEOUT)).await;
    }
}

/// A consumer assigned to both partitions from the start, at `isolation`.
fn consumer(broker: &TestBroker, group: &str, isolation: &str) -> BaseConsumer {
    let consumer: BaseConsumer = broker
        .consumer_config(group)
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Payloads of `count` messages, grouped per partition (order within a partition kept).
fn consume_values(consumer: &BaseConsumer, count: usize) -> [Vec<String>; 2] {
    let mut out: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for m in consume(consumer, count, CONSUME_TIMEOUT) {
        let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
        out[m.partition() as usize].push(value);
    }
    out
}

fn split(values: &[&str]) -> [Vec<String>; 2] {
    let mut out: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for (i, v) in values.iter().enumerate() {
        out[i % 2].push(v.to_string());
    }
    out
}

/// Waits (bounded) until no transaction is open in either partition.
fn wait_stable(broker: &TestBroker, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let open = (0..2).any(|p| {
            let partition = broker.log().partition(TOPIC, p).unwrap();
            partition.last_stable_offset() < partition.log_end_offset()
        });
        if !open {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "transactions still open after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_sees_only_committed_records_in_order() {
    // Proves commit and abort across two partitions: a read_committed consumer gets the
    // committed records in order and none of the aborted ones, and nothing of a transaction
    // still open; a read_uncommitted consumer gets every record.
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 2);
    let producer = txn_producer(&broker, "vis", &[]);

    producer.begin_transaction().unwrap();
    send_all(&producer, &["a0", "a1", "a2", "a3"]).await;
    producer.commit_transaction(CLIENT_TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    send_all(&producer, &["b0", "b1", "b2", "b3"]).await;
    producer.abort_transaction(CLIENT_TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    send_all(&producer, &["c0", "c1", "c2", "c3"]).await;
    producer.commit_transaction(CLIENT_TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    send_all(&producer, &["d0", "d1"]).await;

    let committed = consumer(&broker, "rc", "read_committed");
    let expected = split(&["a0", "a1", "a2", "a3", "c0", "c1", "c2", "c3"]);
    assert_eq!(consume_values(&committed, 8), expected);
    assert_nothing_more(&committed, Duration::from_secs(1));

    let uncommitted = consumer(&broker, "ru", "read_uncommitted");
    let all = split(&[
        "a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "c0", "c1", "c2", "c3", "d0", "d1",
    ]);
    assert_eq!(consume_values(&uncommitted, 14), all);

    producer.commit_transaction(CLIENT_TIMEOUT).unwrap();
    assert_eq!(consume_values(&committed, 2), split(&["d0", "d1"]));
    assert_nothing_more(&committed, Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_move_only_on_commit() {
    // Proves TxnOffsetCommit stages offsets: an aborted transaction leaves the group's
    // committed offsets where they were, a committed one moves them.
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 2);
    let producer = txn_producer(&broker, "offsets", &[]);
    let group = broker.consumer("txn-group");
    let metadata = group.group_metadata().unwrap();
    let offsets = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(offset))
            .unwrap();
        tpl
    };
    let committed = || {
        broker
            .log()
            .group_offsets("txn-group")
            .get(&(TOPIC.to_string(), 0))
            .map(|c| c.offset)
    };

    producer.begin_transaction().unwrap();
    send_all(&producer, &["x"]).await;
    producer
        .send_offsets_to_transaction(&offsets(5), &metadata, CLIENT_TIMEOUT)
        .unwrap();
    assert_eq!(committed(), None, "staged offsets are not committed yet");
    producer.abort_transaction(CLIENT_TIMEOUT).unwrap();
    assert_eq!(committed(), None);

    producer.begin_transaction().unwrap();
    send_all(&producer, &["y"]).await;
    producer
        .send_offsets_to_transaction(&offsets(7), &metadata, CLIENT_TIMEOUT)
        .unwrap();
    assert_eq!(committed(), None);
    producer.commit_transaction(CLIENT_TIMEOUT).unwrap();
    assert_eq!(committed(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    // Proves fencing: InitProducerId from a new producer with the same transactional.id
    // aborts the old one's open transaction and bumps the epoch, so the old producer can no
    // longer commit; only the new producer's committed records are visible.
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 2);
    let old = txn_producer(&broker, "fence", &[]);
    old.begin_transaction().unwrap();
    send_all(&old, &["zombie0", "zombie1"]).await;

    let new = txn_producer(&broker, "fence", &[]);
    let err = old.commit_transaction(CLIENT_TIMEOUT).unwrap_err();
    let text = err.to_string().to_lowercase();
    assert!(
        text.contains("fenced") || text.contains("epoch"),
        "expected a fencing error, got {err}"
    );

    new.begin_transaction().unwrap();
    send_all(&new, &["n0", "n1"]).await;
    new.commit_transaction(CLIENT_TIMEOUT).unwrap();

    let committed = consumer(&broker, "rc", "read_committed");
    assert_eq!(consume_values(&committed, 2), split(&["n0", "n1"]));
    assert_nothing_more(&committed, Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_committed_data_and_transaction_state() {
    // Proves the coordinator's state survives a restart: committed records stay visible,
    // the transaction open at the restart is aborted when the same transactional.id
    // initialises again (same producer id, next epoch), and nothing of it is ever read
    // committed.
    let mut broker = TestBroker::start();
    broker.create_topic(TOPIC, 2);
    let first_pid;
    {
        let producer = txn_producer(&broker, "restart", &[]);
        producer.begin_transaction().unwrap();
        send_all(&producer, &["kept0", "kept1"]).await;
        producer.commit_transaction(CLIENT_TIMEOUT).unwrap();
        producer.begin_transaction().unwrap();
        send_all(&producer, &["lost0", "lost1"]).await;
        first_pid = broker.stored_batches(TOPIC, 0)[0].producer_id;
        // Dropped without ending the transaction; the broker restarts under it.
    }
    broker.restart();

    let producer = txn_producer(&broker, "restart", &[]);
    producer.begin_transaction().unwrap();
    send_all(&producer, &["after0", "after1"]).await;
    producer.commit_transaction(CLIENT_TIMEOUT).unwrap();
    let batches = broker.stored_batches(TOPIC, 0);
    assert!(
        batches.iter().all(|b| b.producer_id == first_pid),
        "the transactional id kept its producer id: {batches:?}"
    );

    let committed = consumer(&broker, "rc", "read_committed");
    assert_eq!(
        consume_values(&committed, 4),
        split(&["kept0", "kept1", "after0", "after1"])
    );
    assert_nothing_more(&committed, Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_past_its_timeout_is_aborted() {
    // Proves the timeout: a transaction left open longer than transaction.timeout.ms is
    // aborted by the coordinator, so the last stable offset moves past it, read_committed
    // consumers get later records but none of it, and its producer is fenced.
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 2);
    let producer = txn_producer(
        &broker,
        "slow",
        &[
            ("transaction.timeout.ms", "2000"),
            ("message.timeout.ms", "2000"),
            ("socket.timeout.ms", "2000"),
        ],
    );
    producer.begin_transaction().unwrap();
    send_all(&producer, &["late0", "late1"]).await;
    wait_stable(&broker, Duration::from_secs(10));
    for p in 0..2 {
        let partition = broker.log().partition(TOPIC, p).unwrap();
        assert_eq!(partition.aborted_transactions(0, i64::MAX).len(), 1);
    }

    let plain = broker.producer(&[]);
    for p in 0..2 {
        let record = FutureRecord::<(), _>::to(TOPIC)
            .partition(p)
            .payload("plain");
        delivered(plain.send(record, CLIENT_TIMEOUT)).await;
    }
    let committed = consumer(&broker, "rc", "read_committed");
    assert_eq!(consume_values(&committed, 2), split(&["plain", "plain"]));
    assert_nothing_more(&committed, Duration::from_secs(1));
    assert!(producer.commit_transaction(CLIENT_TIMEOUT).is_err());
}
