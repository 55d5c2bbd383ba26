//! `SqlEngine::connect`: topic tables on a Kafka-protocol broker (`sluice serve`'s broker,
//! in-process on an ephemeral port) read and written through librdkafka, checked against
//! an embedded engine over the broker's own log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice_core::broker::{BrokerConfig, BrokerThread};
use sluice_core::{Log, LogOptions, NewTopic, ProducerConfig, ProducerRecord};
use sluice_sql::SqlEngine;

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

    fn bootstrap(&self) -> String {
        self.running.local_addr().to_string()
    }
}

async fn text(engine: &SqlEngine, sql: &str) -> String {
    let mut outputs = engine.execute(sql).await.expect(sql);
    let batches = outputs.pop().expect("one statement").batches;
    pretty_format_batches(&batches).expect("format").to_string()
}

/// `SqlEngine::connect` on a blocking thread (it waits for the broker).
async fn connect(bootstrap: String) -> SqlEngine {
    tokio::task::spawn_blocking(move || SqlEngine::connect(&bootstrap))
        .await
        .expect("join")
        .expect("connect")
}

// Guards the whole round trip through the broker: CREATE TABLE creates the topic with
// its partitions, INSERT produces through librdkafka (keyed rows land where the embedded
// producer's murmur2 partitioner puts them), SELECT reads every partition back with its
// metadata columns, and the catalog is the broker's: a second client and an embedded
// engine over the broker's log see the same table and rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_on_a_broker_are_shared_with_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path());
    let engine = connect(broker.bootstrap()).await;
    engine
        .execute(
            "CREATE TABLE orders (id BIGINT, customer VARCHAR, amount DOUBLE) \
                 WITH (topic = 'orders', format = 'json', partitions = 3);
             INSERT INTO orders (id, customer, amount, _key)
                 VALUES (1, 'ada', 10.5, 'ada'), (2, 'bea', 1.0, 'bea'), (3, 'ada', 4.5, 'ada'),
                        (4, 'cid', 2.0, 'cid'), (5, 'bea', 3.0, 'bea');",
        )
        .await
        .unwrap();
    assert_eq!(broker.log.partition_count("orders").unwrap(), 3);

    let by_customer = "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders \
                       GROUP BY customer ORDER BY customer";
    let expected = text(&engine, by_customer).await;
    assert!(expected.contains("| ada      | 2 | 15.0  |"), "{expected}");
    assert!(expected.contains("| bea      | 2 | 4.0   |"), "{expected}");
    assert!(expected.contains("| cid      | 1 | 2.0   |"), "{expected}");

    // Each customer's rows share a partition: the key chose it.
    let spread = text(
        &engine,
        "SELECT count(*) AS n FROM (SELECT customer FROM orders GROUP BY customer \
         HAVING count(DISTINCT _partition) > 1)",
    )
    .await;
    assert!(spread.contains("| 0 |"), "{spread}");

    // Another client sees the table through the broker's catalog.
    let other = connect(broker.bootstrap()).await;
    assert_eq!(text(&other, by_customer).await, expected);

    // So does an engine on the broker's own log, with the same rows in the same places.
    let embedded = SqlEngine::open(broker.log.clone()).unwrap();
    assert_eq!(text(&embedded, by_customer).await, expected);
    let placed = "SELECT id, _partition, _offset, _key FROM orders ORDER BY id";
    assert_eq!(text(&embedded, placed).await, text(&engine, placed).await);

    // Keyed rows land where the embedded producer puts the same keys (both murmur2).
    embedded
        .execute(
            "CREATE TABLE local_orders (id BIGINT, customer VARCHAR, amount DOUBLE) \
                 WITH (topic = 'local_orders', format = 'json', partitions = 3);
             INSERT INTO local_orders (id, customer, amount, _key)
                 VALUES (1, 'ada', 10.5, 'ada'), (2, 'bea', 1.0, 'bea'), (4, 'cid', 2.0, 'cid');",
        )
        .await
        .unwrap();
    let keys = |table: &str| format!("SELECT DISTINCT _key, _partition FROM {table} ORDER BY _key");
    assert_eq!(
        text(&embedded, &keys("local_orders")).await,
        text(&engine, &keys("orders")).await
    );

    // And the other way round: a table created on the log is visible to a new client.
    embedded
        .execute("CREATE TABLE notes WITH (topic = 'notes', format = 'raw'); INSERT INTO notes VALUES ('hello');")
        .await
        .unwrap();
    let fresh = connect(broker.bootstrap()).await;
    let notes = text(&fresh, "SELECT value FROM notes").await;
    assert!(notes.contains("| hello |"), "{notes}");

    // DROP TABLE through the broker removes the table from the shared catalog.
    fresh.execute("DROP TABLE notes").await.unwrap();
    let after = connect(broker.bootstrap()).await;
    assert!(after.execute("SELECT * FROM notes").await.is_err());
}

// Guards pushdown on a broker: `_partition` limits which partitions are read and a
// `_timestamp` lower bound starts each partition at the offset ListOffsets finds for it,
// both visible in EXPLAIN, with the same rows as a full scan filtered afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_and_time_bounds_are_pushed_to_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path());
    broker.log.create_topic(NewTopic::new("ticks", 2)).unwrap();
    let producer = broker.log.producer(ProducerConfig::default()).unwrap();
    let base = 1_700_000_000_000_i64;
    for partition in 0..2 {
        for i in 0..100_i64 {
            producer
                .send(
                    ProducerRecord::to("ticks")
                        .partition(partition)
                        .timestamp(base + i * 1_000)
                        .value(format!("{i}")),
                )
                .unwrap();
        }
    }
    producer.flush().unwrap();

    let engine = connect(broker.bootstrap()).await;
    engine
        .execute("CREATE TABLE ticks (value VARCHAR) WITH (topic = 'ticks', format = 'raw')")
        .await
        .unwrap();
    // 1_700_000_090_000 ms = 2023-11-14T22:14:50Z: the last 10 records of each partition.
    let recent = "_timestamp >= TIMESTAMP '2023-11-14T22:14:50Z'";
    let plan = text(
        &engine,
        &format!("EXPLAIN SELECT value FROM ticks WHERE {recent}"),
    )
    .await;
    assert!(
        plan.contains("partitions=[0:[90, 100), 1:[90, 100)]"),
        "the scan should read offsets 90..100 only:\n{plan}"
    );
    let count = text(
        &engine,
        &format!("SELECT count(*) AS n FROM ticks WHERE {recent}"),
    )
    .await;
    assert!(count.contains("| 20 |"), "{count}");

    let plan = text(
        &engine,
        "EXPLAIN SELECT value FROM ticks WHERE _partition = 1",
    )
    .await;
    assert!(plan.contains("partitions=[1:[0, 100)]"), "{plan}");
    let one = text(
        &engine,
        "SELECT count(*) AS n, min(_offset) AS lo, max(_offset) AS hi FROM ticks \
         WHERE _partition = 1 AND _offset BETWEEN 10 AND 19",
    )
    .await;
    assert!(one.contains("| 10 | 10 | 19 |"), "{one}");
}

// Guards read_committed reads through librdkafka: an aborted transaction's records never
// show, an open transaction's records do not show (and do not hold the scan up: it ends
// at the last stable offset), and they show once it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_through_a_broker_see_only_committed_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path());
    broker
        .log
        .create_topic(NewTopic::new("payments", 1))
        .unwrap();
    let txn = broker
        .log
        .producer(ProducerConfig::default().transactional_id("payer"))
        .unwrap();
    txn.init_transactions().unwrap();
    txn.begin_transaction().unwrap();
    txn.send(ProducerRecord::to("payments").value("aborted"))
        .unwrap();
    txn.abort_transaction().unwrap();
    txn.begin_transaction().unwrap();
    txn.send(ProducerRecord::to("payments").value("committed"))
        .unwrap();
    txn.commit_transaction().unwrap();
    txn.begin_transaction().unwrap();
    txn.send(ProducerRecord::to("payments").value("open"))
        .unwrap();
    txn.flush().unwrap();

    let engine = connect(broker.bootstrap()).await;
    engine
        .execute("CREATE TABLE payments WITH (topic = 'payments', format = 'raw')")
        .await
        .unwrap();
    let select = "SELECT value FROM payments ORDER BY _offset";
    let started = Instant::now();
    let before = text(&engine, select).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the open transaction held the scan up"
    );
    assert!(before.contains("| committed |"), "{before}");
    assert!(
        !before.contains("aborted") && !before.contains("open"),
        "{before}"
    );

    txn.commit_transaction().unwrap();
    let after = text(&engine, select).await;
    assert!(after.contains("| open "), "{after}");
    assert!(!after.contains("aborted"), "{after}");
}

// Guards the error a user sees when the broker is not there: it names the address and
// says what to check, instead of hanging.
#[test]
fn an_unreachable_broker_is_a_clear_error() {
    // Bind and drop a listener: nothing is listening on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bootstrap = format!("127.0.0.1:{port}");
    let err = SqlEngine::connect(&bootstrap).unwrap_err().to_string();
    assert!(err.contains(&bootstrap), "{err}");
    assert!(err.contains("is the broker up"), "{err}");
}
