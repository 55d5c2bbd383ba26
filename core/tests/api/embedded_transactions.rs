//! Transactions of the embedded producer and read_committed of the embedded consumer, on a
//! real log: what commits is seen, what aborts never is, the last stable offset holds
//! readers back, offsets move only on commit, a newer producer fences an older one, the
//! background thread aborts a transaction past its timeout, and a transaction left open
//! when the log was last open is aborted when it is reopened.

use std::time::{Duration, Instant};

use sluice_core::{
    ConsumerConfig, Error, IsolationLevel, Log, NewTopic, Producer, ProducerConfig, ProducerRecord,
    Seek, TopicPartition,
};

use crate::common::open;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn open_with_topic(dir: &std::path::Path) -> Log {
    let log = open(dir);
    log.ensure_topic(NewTopic::new("t", 1)).unwrap();
    log
}

fn txn_producer(log: &Log, id: &str) -> Producer {
    let producer = log
        .producer(ProducerConfig::default().transactional_id(id))
        .unwrap();
    producer.init_transactions().unwrap();
    producer
}

/// Sends `values` to t-0 and flushes, so they are in the log (inside any open
/// transaction).
fn send(producer: &Producer, values: &[&str]) {
    for v in values {
        producer
            .send(ProducerRecord::to("t").partition(0).value(v.to_string()))
            .unwrap();
    }
    producer.flush().unwrap();
}

/// Every value a fresh consumer at `level` reads from t-0 (polls until a short poll
/// comes back empty).
fn values(log: &Log, level: IsolationLevel) -> Vec<String> {
    let mut consumer = log.consumer(ConsumerConfig::default().isolation_level(level));
    consumer.assign(vec![tp()]).unwrap();
    let mut out = Vec::new();
    loop {
        let records = consumer.poll(Duration::from_millis(50)).unwrap();
        if records.is_empty() {
            return out;
        }
        out.extend(
            records
                .into_iter()
                .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()),
        );
    }
}

fn committed(log: &Log) -> Vec<String> {
    values(log, IsolationLevel::ReadCommitted)
}

fn uncommitted(log: &Log) -> Vec<String> {
    values(log, IsolationLevel::ReadUncommitted)
}

#[test]
fn a_committed_transaction_is_seen_by_read_committed() {
    // Proves commit makes a transaction's records visible to a read_committed consumer,
    // in order, with the COMMIT marker never returned as a record.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with_topic(dir.path());
    let producer = txn_producer(&log, "app");
    producer.begin_transaction().unwrap();
    send(&producer, &["a", "b"]);
    send(&producer, &["c"]);
    producer.commit_transaction().unwrap();
    assert_eq!(committed(&log), ["a", "b", "c"]);
    assert_eq!(uncommitted(&log), ["a", "b", "c"]);
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    // Three records and one marker.
    assert_eq!(p.log_end_offset(), 4);
}

#[test]
fn an_aborted_transaction_is_never_seen_by_read_committed() {
    // Proves an aborted transaction's records are dropped by read_committed (but not the
    // same producer's committed ones around it, nor plain records written meanwhile),
    // while read_uncommitted returns them; buffered records of an aborted transaction are
    // never written at all.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with_topic(dir.path());
    let producer = txn_producer(&log, "app");
    let plain = log.producer(ProducerConfig::default()).unwrap();

    producer.begin_transaction().unwrap();
    send(&producer, &["c1"]);
    producer.commit_transaction().unwrap();

    producer.begin_transaction().unwrap();
    send(&producer, &["x1", "x2"]);
    plain
        .send_and_wait(ProducerRecord::to("t").partition(0).value("plain"))
        .unwrap();
    send(&producer, &["x3"]);
    let never_sent = producer
        .send(ProducerRecord::to("t").partition(0).value("buffered"))
        .unwrap();
    producer.abort_transaction().unwrap();
    assert!(matches!(never_sent.result(), Some(Err(_))));

    producer.begin_transaction().unwrap();
    send(&producer, &["c2"]);
    producer.commit_transaction().unwrap();

    assert_eq!(committed(&log), ["c1", "plain", "c2"]);
    assert_eq!(uncommitted(&log), ["c1", "x1", "x2", "plain", "x3", "c2"]);
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.aborted_transactions_full(0, p.log_end_offset()).len(), 1);
}

#[test]
fn an_open_transaction_holds_read_committed_at_the_last_stable_offset() {
    // Proves the LSO: while a transaction is open, read_committed sees neither its records
    // nor anything appended after its first one (even committed-by-nature plain records),
    // seeks to the end land on the LSO, and all of it is seen once the transaction commits.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with_topic(dir.path());
    let plain = log.producer(ProducerConfig::default()).unwrap();
    plain
        .send_and_wait(ProducerRecord::to("t").partition(0).value("before"))
        .unwrap();
    let producer = txn_producer(&log, "app");
    producer.begin_transaction().unwrap();
    send(&producer, &["t1"]);
    plain
        .send_and_wait(ProducerRecord::to("t").partition(0).value("after"))
        .unwrap();

    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), 1);
    let mut reader =
        log.consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted));
    reader.assign(vec![tp()]).unwrap();
    let first = reader.poll(Duration::from_millis(100)).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].value.as_deref(), Some(&b"before"[..]));
    assert!(reader.poll(Duration::from_millis(100)).unwrap().is_empty());
    assert_eq!(reader.position(&tp()).unwrap(), 1);
    // "The end" of a read_committed consumer is the LSO, as Kafka's ListOffsets says.
    let mut at_end =
        log.consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted));
    at_end.assign(vec![tp()]).unwrap();
    at_end.seek(&tp(), Seek::End).unwrap();
    assert_eq!(at_end.position(&tp()).unwrap(), 1);
    assert_eq!(uncommitted(&log), ["before", "t1", "after"]);

    producer.commit_transaction().unwrap();
    let rest: Vec<_> = reader
        .poll(Duration::from_secs(1))
        .unwrap()
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    assert_eq!(rest, [&b"t1"[..], &b"after"[..]]);
}

#[test]
fn offsets_sent_to_a_transaction_are_committed_only_with_it() {
    // Proves send_offsets_to_transaction stages offsets: the group's committed offset is
    // unchanged while the transaction is open and after an abort, and moves on commit.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with_topic(dir.path());
    let producer = txn_producer(&log, "app");
    let group_offset = |log: &Log| log.committed_offset("g", "t", 0).map(|c| c.offset);

    producer.begin_transaction().unwrap();
    send(&producer, &["out"]);
    producer
        .send_offsets_to_transaction(&[(tp(), 5)], "g")
        .unwrap();
    assert_eq!(group_offset(&log), None);
    producer.commit_transaction().unwrap();
    assert_eq!(group_offset(&log), Some(5));

    producer.begin_transaction().unwrap();
    producer
        .send_offsets_to_transaction(&[(tp(), 9)], "g")
        .unwrap();
    producer.abort_transaction().unwrap();
    assert_eq!(group_offset(&log), Some(5));

    // Offsets outside a transaction are refused with a message saying what to do.
    let err = producer
        .send_offsets_to_transaction(&[(tp(), 9)], "g")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTxnState { .. }), "{err}");
    assert!(err.to_string().contains("begin_transaction"), "{err}");
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first() {
    // Proves init_transactions of a newer producer aborts the older one's open
    // transaction and fences it: its next send and its commit fail with
    // TransactionalIdFenced, and nothing it wrote becomes visible to read_committed.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with_topic(dir.path());
    let old = txn_producer(&log, "app");
    old.begin_transaction().unwrap();
    send(&old, &["old"]);

    let new = txn_producer(&log, "app");
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());

    let err = old
        .send(ProducerRecord::to("t").partition(0).value("late"))
        .unwrap_err();
    assert!(matches!(err, Error::TransactionalIdFenced { .. }), "{err}");
    let err = old.commit_transaction().unwrap_err();
    assert!(matches!(err, Error::TransactionalIdFenced { .. }), "{err}");
    assert!(err.to_string().contains("drop this producer"), "{err}");

    new.begin_transaction().unwrap();
    send(&new, &["new"]);
    new.commit_transaction().unwrap();
    drop(old);
    assert_eq!(committed(&log), ["new"]);
}

#[test]
fn the_background_thread_aborts_a_transaction_past_its_timeout() {
    // Proves transaction timeouts hold for embedded producers: with the log's background
    // thread on, a transaction left open past its timeout is aborted (LSO released,
    // records never read_committed); the producer learns it on commit and can go on after
    // abort_transaction.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::options().open(dir.path()).unwrap();
    log.ensure_topic(NewTopic::new("t", 1)).unwrap();
    let producer = log
        .producer(
            ProducerConfig::default()
                .transactional_id("slow")
                .transaction_timeout(Duration::from_millis(300)),
        )
        .unwrap();
    producer.init_transactions().unwrap();
    producer.begin_transaction().unwrap();
    send(&producer, &["late"]);

    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.last_stable_offset() < p.log_end_offset() {
        assert!(Instant::now() < deadline, "transaction not expired in 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(p.aborted_transactions_full(0, p.log_end_offset()).len(), 1);

    let err = producer.commit_transaction().unwrap_err();
    assert!(matches!(err, Error::TransactionTimedOut { .. }), "{err}");
    producer.abort_transaction().unwrap();
    producer.begin_transaction().unwrap();
    send(&producer, &["on time"]);
    producer.commit_transaction().unwrap();
    assert_eq!(committed(&log), ["on time"]);
}

#[test]
fn dropping_a_producer_aborts_its_open_transaction() {
    // Proves drop of a producer mid-transaction aborts the transaction at once (no
    // waiting for the timeout) and sends none of its buffered records.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with_topic(dir.path());
    let producer = txn_producer(&log, "app");
    producer.begin_transaction().unwrap();
    send(&producer, &["sent"]);
    producer
        .send(ProducerRecord::to("t").partition(0).value("buffered"))
        .unwrap();
    drop(producer);
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert!(committed(&log).is_empty());
    assert!(!uncommitted(&log).contains(&"buffered".to_string()));
}

#[test]
fn a_transaction_left_open_is_aborted_when_the_log_reopens() {
    // Proves an embedded producer's transaction still open when the log closed (its
    // process gone: here the producer is leaked and the log closed under it) is aborted as
    // the log reopens, not left holding the LSO until its timeout.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open_with_topic(dir.path());
        let producer = txn_producer(&log, "app");
        producer.begin_transaction().unwrap();
        send(&producer, &["committed"]);
        producer.commit_transaction().unwrap();
        producer.begin_transaction().unwrap();
        send(&producer, &["orphan"]);
        std::mem::forget(producer);
        log.close().unwrap();
    }
    let log = open(dir.path());
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert_eq!(committed(&log), ["committed"]);
    // The id is usable again, at a newer epoch.
    let producer = txn_producer(&log, "app");
    producer.begin_transaction().unwrap();
    send(&producer, &["again"]);
    producer.commit_transaction().unwrap();
    assert_eq!(committed(&log), ["committed", "again"]);
}

#[test]
fn transactional_calls_in_the_wrong_state_say_what_to_do() {
    // Proves the state errors: sending before begin_transaction, committing without a
    // transaction, and transactional calls on a producer without a transactional id.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with_topic(dir.path());
    let producer = log
        .producer(ProducerConfig::default().transactional_id("app"))
        .unwrap();
    let err = producer.begin_transaction().unwrap_err();
    assert!(err.to_string().contains("init_transactions"), "{err}");
    producer.init_transactions().unwrap();
    let err = producer
        .send(ProducerRecord::to("t").partition(0).value("v"))
        .unwrap_err();
    assert!(err.to_string().contains("begin_transaction"), "{err}");
    let err = producer.commit_transaction().unwrap_err();
    assert!(matches!(err, Error::InvalidTxnState { .. }), "{err}");

    let plain = log.producer(ProducerConfig::default()).unwrap();
    let err = plain.begin_transaction().unwrap_err();
    assert!(err.to_string().contains("transactional_id"), "{err}");
    let err = log
        .producer(
            ProducerConfig::default()
                .transactional_id("x")
                .idempotence(false),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
}

#[test]
fn many_transactions_around_repeated_orphans_stay_committed() {
    // Proves that after several rounds of "commit a few transactions, leave one open,
    // reopen the log", read_committed still sees every committed record: the aborted
    // range of an orphaned transaction never covers the same producer id's committed
    // batches of a later epoch.
    let dir = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    for round in 0..4 {
        let log = open_with_topic(dir.path());
        let producer = txn_producer(&log, "app");
        for t in 0..3 {
            producer.begin_transaction().unwrap();
            let v = format!("r{round}t{t}");
            send(&producer, &[&v, &v]);
            producer.commit_transaction().unwrap();
            want.push(v.clone());
            want.push(v);
        }
        producer.begin_transaction().unwrap();
        send(&producer, &["orphan-a", "orphan-b"]);
        std::mem::forget(producer);
        log.close().unwrap();
    }
    let log = open(dir.path());
    assert_eq!(committed(&log), want);
}
