//! The PostgreSQL sink and source against the real server (SLUICE_TEST_POSTGRES_URL).

#![allow(clippy::unwrap_used)] // tests fail loudly on the first unexpected error

mod common;

use std::sync::Arc;

use arrow::array::{
    BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use sluice_connectors::schema::parse_schema;
use sluice_connectors::{Offsets, Poll, Settings, SinkBatch, SinkContext, SinkOp, registry};
use tokio_postgres::NoTls;

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

fn settings(kind: &str, name: &str, toml_text: &str) -> Settings {
    Settings::from_table(name, kind, toml::from_str(toml_text).unwrap())
}

fn context(schema: &str, key: &[&str], sink: &str) -> SinkContext {
    SinkContext {
        pipeline: "p".into(),
        sink: sink.into(),
        schema: parse_schema(schema).unwrap(),
        key: key.iter().map(|k| k.to_string()).collect(),
    }
}

fn people(ids: &[i64], names: &[Option<&str>]) -> RecordBatch {
    RecordBatch::try_new(
        parse_schema("id BIGINT NOT NULL, name VARCHAR").unwrap(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(names.to_vec())),
        ],
    )
    .unwrap()
}

fn keys(ids: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        parse_schema("id BIGINT NOT NULL").unwrap(),
        vec![Arc::new(Int64Array::from(ids.to_vec()))],
    )
    .unwrap()
}

fn offsets(next: i64) -> Offsets {
    [(("people".to_string(), 0), next)].into_iter().collect()
}

async fn names(client: &tokio_postgres::Client, table: &str) -> Vec<(i64, Option<String>)> {
    client
        .query(&format!("SELECT id, name FROM {table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn insert_mode_copies_rows_and_stores_offsets_exactly_once() {
    // Proves insert mode writes every row through COPY, and that a new sink instance's
    // open() returns the offsets committed with them.
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = client(&url).await;
    let table = common::unique("pg_insert");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id BIGINT NOT NULL, name TEXT)"
    ))
    .await
    .unwrap();
    let cfg = format!("url = \"{url}\"\ntable = \"{table}\"");
    let ctx = context("id BIGINT NOT NULL, name VARCHAR", &[], &table);
    let mut sink = registry::sink(&settings("postgres", &table, &cfg)).unwrap();
    assert!(sink.check().await.is_empty());
    assert_eq!(sink.open(&ctx).await.unwrap(), None);
    let batch = SinkBatch {
        topic: "people".into(),
        ops: vec![SinkOp::Upsert(people(&[1, 2], &[Some("a"), None]))],
        bytes: 0,
    };
    sink.write(batch).await.unwrap();
    assert!(sink.commit(&offsets(2), false).await.unwrap());
    assert_eq!(
        names(&db, &table).await,
        vec![(1, Some("a".into())), (2, None)]
    );
    let mut again = registry::sink(&settings("postgres", &table, &cfg)).unwrap();
    assert_eq!(again.open(&ctx).await.unwrap(), Some(offsets(2)));
}

#[tokio::test]
async fn upsert_applies_updates_and_deletes_in_order() {
    // Proves one commit holding upserts (with a key repeated), a delete and a re-insert
    // leaves exactly what applying them in order would, and create_table makes the table.
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = client(&url).await;
    let table = common::unique("pg_upsert");
    let cfg =
        format!("url = \"{url}\"\ntable = \"{table}\"\nmode = \"upsert\"\ncreate_table = true");
    let ctx = context("id BIGINT NOT NULL, name VARCHAR", &["id"], &table);
    let mut sink = registry::sink(&settings("postgres", &table, &cfg)).unwrap();
    sink.open(&ctx).await.unwrap();
    let ops = vec![
        SinkOp::Upsert(people(
            &[1, 2, 3, 1],
            &[Some("a"), Some("b"), Some("c"), Some("a2")],
        )),
        SinkOp::Delete(keys(&[2, 3])),
        SinkOp::Upsert(people(&[3], &[Some("c2")])),
    ];
    sink.write(SinkBatch {
        topic: "people".into(),
        ops,
        bytes: 0,
    })
    .await
    .unwrap();
    sink.commit(&offsets(6), false).await.unwrap();
    assert_eq!(
        names(&db, &table).await,
        vec![(1, Some("a2".into())), (3, Some("c2".into()))]
    );
    sink.write(SinkBatch {
        topic: "people".into(),
        ops: vec![SinkOp::Upsert(people(&[1], &[Some("a3")]))],
        bytes: 0,
    })
    .await
    .unwrap();
    sink.commit(&offsets(7), true).await.unwrap();
    assert_eq!(
        names(&db, &table).await,
        vec![(1, Some("a3".into())), (3, Some("c2".into()))]
    );
}

#[tokio::test]
async fn a_failed_commit_leaves_neither_rows_nor_offsets() {
    // Proves a NOT NULL violation, and a connection killed mid-transaction by
    // pg_terminate_backend, both roll back rows and offsets together.
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = client(&url).await;
    let table = common::unique("pg_fail");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT NOT NULL)"
    ))
    .await
    .unwrap();
    let ctx = context("id BIGINT NOT NULL, name VARCHAR", &["id"], &table);
    let cfg = format!("url = \"{url}\"\ntable = \"{table}\"");
    let mut sink = registry::sink(&settings("postgres", &table, &cfg)).unwrap();
    sink.open(&ctx).await.unwrap();
    sink.write(SinkBatch {
        topic: "people".into(),
        ops: vec![SinkOp::Upsert(people(&[1, 2], &[Some("a"), None]))],
        bytes: 0,
    })
    .await
    .unwrap();
    let err = sink
        .commit(&offsets(2), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("null value"), "{err}");
    assert!(names(&db, &table).await.is_empty());
    let mut fresh = registry::sink(&settings("postgres", &table, &cfg)).unwrap();
    assert_eq!(fresh.open(&ctx).await.unwrap(), None);

    // Rows written ahead (buffer_rows_max = 1), then the server kills the session.
    let cfg = format!("url = \"{url}\"\ntable = \"{table}\"\nbuffer_rows_max = 1");
    let mut sink = registry::sink(&settings("postgres", &table, &cfg)).unwrap();
    sink.open(&ctx).await.unwrap();
    sink.write(SinkBatch {
        topic: "people".into(),
        ops: vec![SinkOp::Upsert(people(&[5, 6], &[Some("e"), Some("f")]))],
        bytes: 0,
    })
    .await
    .unwrap();
    let killed = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("sluice/{table}")],
        )
        .await
        .unwrap();
    assert!(!killed.is_empty());
    assert!(sink.commit(&offsets(8), false).await.is_err());
    assert!(
        sink.commit(&offsets(8), false).await.is_err(),
        "a poisoned sink must not commit"
    );
    assert!(names(&db, &table).await.is_empty());
    assert_eq!(sink.open(&ctx).await.unwrap(), None);
    sink.write(SinkBatch {
        topic: "people".into(),
        ops: vec![SinkOp::Upsert(people(&[5], &[Some("e")]))],
        bytes: 0,
    })
    .await
    .unwrap();
    sink.commit(&offsets(8), false).await.unwrap();
    assert_eq!(names(&db, &table).await, vec![(5, Some("e".into()))]);
}

fn every_type() -> RecordBatch {
    let schema = parse_schema(
        "id BIGINT NOT NULL, b BOOLEAN, s SMALLINT, i INT, r REAL, d DOUBLE, n DECIMAL(20,4), \
         t VARCHAR, y BYTEA, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ",
    )
    .unwrap();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            Arc::new(Int16Array::from(vec![Some(-7), Some(i16::MAX), None])),
            Arc::new(Int32Array::from(vec![Some(i32::MIN), Some(0), None])),
            Arc::new(Float32Array::from(vec![Some(1.5), Some(-0.25), None])),
            Arc::new(Float64Array::from(vec![Some(1e300), Some(-2.5), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(1_234_567_890_123), Some(-5), None])
                    .with_precision_and_scale(20, 4)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec![
                Some("héllo, \"x\"\n"),
                Some(""),
                None,
            ])),
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\xff"[..]),
                Some(b""),
                None,
            ])),
            Arc::new(Date32Array::from(vec![Some(19_000), Some(-1), None])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_123_456),
                Some(-1),
                None,
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_700_000_000_654_321), Some(0), None])
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn every_type_round_trips_through_sink_and_source() {
    // Proves each Sluice type written by the sink is read back by the source as equal
    // Arrow arrays, and bulk mode ends with Done.
    let Some(url) = common::postgres_url() else {
        return;
    };
    let table = common::unique("pg_types");
    let rows = every_type();
    let ctx = SinkContext {
        pipeline: "p".into(),
        sink: "s".into(),
        schema: rows.schema(),
        key: vec!["id".into()],
    };
    let cfg =
        format!("url = \"{url}\"\ntable = \"{table}\"\nmode = \"upsert\"\ncreate_table = true");
    let mut sink = registry::sink(&settings("postgres", "s", &cfg)).unwrap();
    sink.open(&ctx).await.unwrap();
    sink.write(SinkBatch {
        topic: "t".into(),
        ops: vec![SinkOp::Upsert(rows.clone())],
        bytes: 0,
    })
    .await
    .unwrap();
    sink.commit(&Offsets::new(), true).await.unwrap();

    let mut source = registry::source(&settings(
        "postgres",
        "src",
        &format!("url = \"{url}\"\ntable = \"{table}\""),
    ))
    .unwrap();
    assert!(source.check().await.is_empty());
    source.open(None).await.unwrap();
    let Poll::Batch(batch) = source.poll(100).await.unwrap() else {
        panic!("expected rows")
    };
    assert_eq!(batch.rows, rows);
    assert_eq!(batch.default_key, vec!["id".to_string()]);
    assert_eq!(batch.stream.as_deref(), Some(table.as_str()));
    assert!(matches!(source.poll(100).await.unwrap(), Poll::Done));
}

#[tokio::test]
async fn sources_resume_after_their_position_in_every_mode() {
    // Proves each mode reads in pages, then resumes from a returned position in a new
    // source instance, reading rows added meanwhile and none twice.
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = client(&url).await;
    for mode in [
        "bulk",
        "incrementing",
        "timestamp",
        "timestamp+incrementing",
    ] {
        let table = common::unique("pg_src");
        db.batch_execute(&format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, ts TIMESTAMP NOT NULL, v TEXT); \
             INSERT INTO {table} SELECT g, TIMESTAMP '2024-01-01' + (g / 2) * INTERVAL '1 second', 'v' || g FROM generate_series(1, 5) g"
        ))
        .await
        .unwrap();
        let cfg = format!(
            "url = \"{url}\"\ntable = \"{table}\"\nmode = \"{mode}\"\nincrementing_column = \"id\"\ntimestamp_column = \"ts\"\npoll_interval_ms = 1"
        );
        let mut source = registry::source(&settings("postgres", "src", &cfg)).unwrap();
        source.open(None).await.unwrap();
        let mut seen = Vec::new();
        let mut position = None;
        for _ in 0..2 {
            if let Poll::Batch(b) = source.poll(2).await.unwrap() {
                let ids = b
                    .rows
                    .column_by_name("id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone();
                seen.extend(ids.values().iter().copied());
                position = Some(b.position);
            }
        }
        db.batch_execute(&format!(
            "INSERT INTO {table} VALUES (6, TIMESTAMP '2024-01-01 00:00:10', 'v6')"
        ))
        .await
        .unwrap();
        let mut resumed = registry::source(&settings("postgres", "src", &cfg)).unwrap();
        resumed.open(position).await.unwrap();
        while let Poll::Batch(b) = resumed.poll(2).await.unwrap() {
            let ids = b
                .rows
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            seen.extend(ids.values().iter().copied());
        }
        seen.sort();
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6], "mode {mode}");
    }
}

#[tokio::test]
async fn check_reports_a_missing_table_and_an_unreachable_server() {
    // Proves check() names a missing table, and an unreachable server with its address.
    let Some(url) = common::postgres_url() else {
        return;
    };
    let missing = common::unique("pg_missing");
    let mut sink = registry::sink(&settings(
        "postgres",
        "s",
        &format!("url = \"{url}\"\ntable = \"{missing}\""),
    ))
    .unwrap();
    let problems = sink.check().await;
    assert!(
        problems.len() == 1 && problems[0].contains("does not exist"),
        "{problems:?}"
    );
    let mut source = registry::source(&settings(
        "postgres",
        "s",
        &format!("url = \"{url}\"\ntable = \"{missing}\"\nmode = \"incrementing\""),
    ))
    .unwrap();
    let problems = source.check().await;
    assert!(problems[0].contains("does not exist"), "{problems:?}");
    let mut down = registry::sink(&settings(
        "postgres",
        "s",
        "url = \"postgres://postgres@127.0.0.1:1/test\"\ntable = \"t\"",
    ))
    .unwrap();
    let problems = down.check().await;
    assert!(
        problems.len() == 1 && problems[0].contains("127.0.0.1:1"),
        "{problems:?}"
    );
}
