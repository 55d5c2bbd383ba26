//! Rust-level tests of `SqlEngine` that an .slt file cannot express: results compared with
//! the same data read from a file, plans whose literals depend on the clock, and the
//! catalog surviving a reopen of the data directory.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice_core::{Log, NewTopic, ProducerConfig, ProducerRecord};
use sluice_sql::SqlEngine;

async fn query(engine: &SqlEngine, sql: &str) -> Vec<RecordBatch> {
    let mut outputs = engine.execute(sql).await.expect("query");
    outputs.pop().expect("one statement").batches
}

async fn text(engine: &SqlEngine, sql: &str) -> String {
    pretty_format_batches(&query(engine, sql).await)
        .expect("format")
        .to_string()
}

/// A small deterministic generator, so the data set is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// Guards the decoding path end to end: the same aggregate over a topic (4 partitions,
// read in parallel, through the JSON decoder) and over a JSON-lines file holding the same
// values (through DataFusion's own JSON reader) must give identical answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_over_topic_equals_aggregate_over_json_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    log.create_topic(NewTopic::new("sales", 4)).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let mut rng = XorShift(0x5eed);
    let mut lines = String::new();
    let customers = ["ada", "bea", "cid", "dee", "eve", "fay", "gus"];
    for i in 0..5_000_u64 {
        let customer = customers[(rng.next() % customers.len() as u64) as usize];
        let cents = rng.next() % 100_000;
        let quantity = rng.next() % 20;
        // Some records leave a field out or set it null, so NULL handling is compared too.
        let line = match i % 50 {
            0 => format!(r#"{{"id": {i}, "customer": "{customer}", "quantity": null}}"#),
            1 => format!(r#"{{"id": {i}, "customer": "{customer}"}}"#),
            _ => format!(
                r#"{{"id": {i}, "customer": "{customer}", "amount": {}.{:02}, "quantity": {quantity}}}"#,
                cents / 100,
                cents % 100
            ),
        };
        producer
            .send(
                ProducerRecord::to("sales")
                    .key(format!("k{}", rng.next() % 97))
                    .value(line.clone()),
            )
            .unwrap();
        lines.push_str(&line);
        lines.push('\n');
    }
    producer.flush().unwrap();
    let file = dir.path().join("sales.json");
    std::fs::write(&file, lines).unwrap();

    let engine = SqlEngine::open(log).unwrap();
    engine
        .execute(&format!(
            "CREATE TABLE sales (id BIGINT, customer VARCHAR, amount DOUBLE, quantity BIGINT) \
               WITH (topic = 'sales', format = 'json');
             CREATE EXTERNAL TABLE sales_file (id BIGINT, customer VARCHAR, amount DOUBLE, quantity BIGINT) \
               STORED AS JSON LOCATION '{}';",
            file.display()
        ))
        .await
        .unwrap();
    let aggregate = |table: &str| {
        format!(
            "SELECT customer, count(*) AS n, count(amount) AS priced, \
                    round(sum(amount), 2) AS total, min(amount) AS lo, max(amount) AS hi, \
                    sum(quantity) AS qty, sum(id) AS ids \
             FROM {table} GROUP BY customer ORDER BY customer"
        )
    };
    let from_topic = text(&engine, &aggregate("sales")).await;
    let from_file = text(&engine, &aggregate("sales_file")).await;
    assert_eq!(from_topic, from_file);
    // Not vacuous: every customer appears, and all 5000 records were counted.
    assert_eq!(from_topic.lines().count(), 4 + customers.len());
    let total = text(&engine, "SELECT count(*) AS n FROM sales").await;
    assert!(total.contains("| 5000 |"), "{total}");
}

// Guards the time pushdown of `now() - interval`: DataFusion folds now() into a literal
// before the filter reaches the scan, and the scan starts each partition at the first
// record inside the window (found through the time index), so only the tail is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_time_window_reads_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    log.create_topic(NewTopic::new("ticks", 2)).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let now = sluice_core::now_ms();
    for partition in 0..2 {
        for i in 0..100_i64 {
            // Records an hour old, then the last 3 in the last minute.
            let age_ms = if i < 97 { 3_600_000 - i } else { 60_000 - i };
            producer
                .send(
                    ProducerRecord::to("ticks")
                        .partition(partition)
                        .timestamp(now - age_ms)
                        .value(format!("{i}")),
                )
                .unwrap();
        }
    }
    producer.flush().unwrap();
    let engine = SqlEngine::open(log).unwrap();
    engine
        .execute("CREATE TABLE ticks (value VARCHAR) WITH (topic = 'ticks', format = 'raw')")
        .await
        .unwrap();
    let window = "_timestamp > now() - interval '5 minutes'";
    let plan = text(
        &engine,
        &format!("EXPLAIN SELECT value FROM ticks WHERE {window}"),
    )
    .await;
    assert!(
        plan.contains("partitions=[0:[97, 100), 1:[97, 100)]"),
        "the scan should read offsets 97..100 only:\n{plan}"
    );
    let rows = text(
        &engine,
        &format!("SELECT count(*) AS n FROM ticks WHERE {window}"),
    )
    .await;
    assert!(rows.contains("| 6 |"), "{rows}");
}

// Guards the durability of the catalog: tables created in one process are there, with
// their options, after the data directory is closed and opened again, and a dropped
// table stays dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = SqlEngine::open(Log::open(dir.path()).unwrap()).unwrap();
        engine
            .execute(
                "CREATE TABLE a (x INT) WITH (topic = 'a', format = 'csv', on_error = 'skip');
                 CREATE TABLE b (x INT) WITH (topic = 'b', format = 'json');
                 CREATE TABLE c WITH (topic = 'c', format = 'raw');
                 INSERT INTO a VALUES (1), (2);
                 DROP TABLE b;",
            )
            .await
            .unwrap();
        engine.log().unwrap().close().unwrap();
    }
    let engine = SqlEngine::open(Log::open(dir.path()).unwrap()).unwrap();
    let names: Vec<String> = engine
        .catalog()
        .tables()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "c"]);
    let a = engine.catalog().get("a").unwrap();
    assert_eq!(a.on_error, sluice_sql::catalog::OnError::Skip);
    let sum = text(&engine, "SELECT sum(x) AS s FROM a").await;
    assert!(sum.contains("| 3 |"), "{sum}");
    assert!(engine.execute("SELECT * FROM b").await.is_err());
}

// Guards read_committed scans: records of an aborted transaction never appear, records of
// a transaction still open appear only once it commits, and control batches (the
// markers) are not rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_see_only_committed_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    log.create_topic(NewTopic::new("payments", 1)).unwrap();
    let plain = log.producer(ProducerConfig::default()).unwrap();
    plain
        .send_and_wait(ProducerRecord::to("payments").value("plain"))
        .unwrap();
    let txn = log
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

    let engine = SqlEngine::open(log).unwrap();
    engine
        .execute("CREATE TABLE payments WITH (topic = 'payments', format = 'raw')")
        .await
        .unwrap();
    let select = "SELECT value FROM payments ORDER BY _offset";
    let before = text(&engine, select).await;
    assert_eq!(before.matches("| ").count(), 3, "{before}"); // header + 2 rows
    assert!(
        before.contains("plain") && before.contains("committed"),
        "{before}"
    );
    assert!(
        !before.contains("aborted") && !before.contains("open"),
        "{before}"
    );

    txn.commit_transaction().unwrap();
    let after = text(&engine, select).await;
    assert!(after.contains("| open "), "{after}");
    assert!(!after.contains("aborted"), "{after}");
}

// Guards catalog refresh: an engine that is already open (the PostgreSQL endpoint's, a
// shell's) sees tables another engine on the same log creates, replaces and drops, at
// its next statement; a file table of its own keeps its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_session_sees_tables_created_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data")).unwrap();
    let serving = SqlEngine::open(log.clone()).unwrap();
    let other = SqlEngine::open(log.clone()).unwrap();

    let csv = dir.path().join("shared.csv");
    std::fs::write(&csv, "x\n41\n").unwrap();
    serving
        .execute(&format!(
            "CREATE EXTERNAL TABLE shared STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')",
            csv.display()
        ))
        .await
        .unwrap();

    other
        .execute(
            "CREATE TABLE t (n INT) WITH (topic = 't', format = 'json');
             INSERT INTO t VALUES (1), (2);
             CREATE TABLE shared (y INT) WITH (topic = 'shared', format = 'csv');",
        )
        .await
        .unwrap();
    let sum = text(&serving, "SELECT sum(n) AS s FROM t").await;
    assert!(sum.contains("| 3 |"), "{sum}");
    // The file table of this session was not replaced by the other's topic table.
    let shared = text(&serving, "SELECT x FROM shared").await;
    assert!(shared.contains("| 41 |"), "{shared}");

    other
        .execute("CREATE OR REPLACE TABLE t (n INT, m INT) WITH (topic = 't', format = 'json')")
        .await
        .unwrap();
    let columns = text(&serving, "SELECT count(m) AS c FROM t").await;
    assert!(columns.contains("| 0 |"), "{columns}");

    other.execute("DROP TABLE t").await.unwrap();
    let err = serving.execute("SELECT * FROM t").await.unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

// Guards CREATE TABLE without columns: the table takes its columns and format from the
// schema entry a connector source left on __sluice_schemas, and an avro table decodes
// the records with the Avro schema the connectors' avro converter writes with (spelled
// out here as that converter builds it: record `row`, nullable columns as unions,
// TIMESTAMP as timestamp-micros). A topic without an entry is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_take_columns_from_the_topic_schema_entry() {
    use apache_avro::types::Value;

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    log.create_topic(NewTopic::new("__sluice_schemas", 1).config("cleanup.policy", "compact"))
        .unwrap();
    log.create_topic(NewTopic::new("events", 1)).unwrap();
    log.create_topic(NewTopic::new("people", 1)).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let entry = |topic: &str, value: &str| {
        ProducerRecord::to("__sluice_schemas")
            .key(topic.to_string())
            .value(value.to_string())
    };
    producer
        .send_and_wait(entry(
            "events",
            r#"{"columns": "id BIGINT NOT NULL, name VARCHAR, ts TIMESTAMP", "format": "avro", "key": ["id"]}"#,
        ))
        .unwrap();
    producer
        .send_and_wait(entry(
            "people",
            r#"{"columns": "id INT NOT NULL, name VARCHAR", "format": "json"}"#,
        ))
        .unwrap();

    let writer_schema = apache_avro::Schema::parse_str(
        r#"{"type": "record", "name": "row", "fields": [
            {"name": "id", "type": "long"},
            {"name": "name", "type": ["null", "string"]},
            {"name": "ts", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}]}
        ]}"#,
    )
    .unwrap();
    for (id, name) in [(1_i64, Some("ada")), (2, None)] {
        let name = match name {
            Some(n) => Value::Union(1, Box::new(Value::String(n.into()))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        let record = Value::Record(vec![
            ("id".into(), Value::Long(id)),
            ("name".into(), name),
            (
                "ts".into(),
                Value::Union(1, Box::new(Value::TimestampMicros(1_714_557_600_000_000))),
            ),
        ]);
        let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&writer_schema)
            .build()
            .and_then(|w| w.write_value_to_vec(record))
            .unwrap();
        producer
            .send_and_wait(ProducerRecord::to("events").value(datum))
            .unwrap();
    }
    producer
        .send_and_wait(ProducerRecord::to("people").value(r#"{"id": 7, "name": "eve"}"#))
        .unwrap();

    let engine = SqlEngine::open(log).unwrap();
    engine
        .execute("CREATE TABLE events WITH (topic = 'events'); CREATE TABLE people WITH (topic = 'people')")
        .await
        .expect("tables from schema entries");
    assert_eq!(
        text(&engine, "SELECT id, name, ts FROM events ORDER BY id").await,
        "+----+------+---------------------+\n\
         | id | name | ts                  |\n\
         +----+------+---------------------+\n\
         | 1  | ada  | 2024-05-01T10:00:00 |\n\
         | 2  |      | 2024-05-01T10:00:00 |\n\
         +----+------+---------------------+"
    );
    assert_eq!(
        text(&engine, "SELECT id, name FROM people").await,
        "+----+------+\n\
         | id | name |\n\
         +----+------+\n\
         | 7  | eve  |\n\
         +----+------+"
    );
    let def = engine.catalog().get("events").unwrap();
    assert!(!def.columns[0].nullable, "NOT NULL comes from the entry");

    // INSERT writes what a connector's avro sink would read: the same schema.
    engine
        .execute("INSERT INTO events (id, name) VALUES (3, 'bob')")
        .await
        .expect("insert");
    assert_eq!(
        text(&engine, "SELECT count(*) AS n FROM events").await,
        "+---+\n| n |\n+---+\n| 3 |\n+---+"
    );

    // No entry: say so, and what to do.
    let error = engine
        .execute("CREATE TABLE lonely WITH (topic = 'lonely', format = 'json')")
        .await
        .expect_err("no entry")
        .to_string();
    assert!(
        error.contains("topic lonely has no schema entry: declare the columns"),
        "{error}"
    );
    let error = engine
        .execute("CREATE TABLE lonely WITH (topic = 'lonely')")
        .await
        .expect_err("no entry, no format")
        .to_string();
    assert!(
        error.contains("topic lonely has no schema entry"),
        "{error}"
    );
    let error = engine
        .execute("CREATE TABLE events_json WITH (topic = 'events', format = 'json')")
        .await
        .expect_err("the entry is for avro")
        .to_string();
    assert!(
        error.contains("the schema entry of topic events is for format 'avro'"),
        "{error}"
    );
}
