//! The MySQL / MariaDB sink and source against the real server (SLUICE_TEST_MYSQL_URL).

#![allow(clippy::unwrap_used)] // tests fail loudly on the first unexpected error

mod common;

use std::sync::Arc;

use arrow::array::{
    BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use mysql_async::prelude::Queryable;
use sluice_connectors::schema::parse_schema;
use sluice_connectors::{Offsets, Poll, Settings, SinkBatch, SinkContext, SinkOp, registry};

fn settings(kind: &str, name: &str, toml_text: &str) -> Settings {
    Settings::from_table(name, kind, toml::from_str(toml_text).unwrap())
}

/// A sink context; the pipeline name is the same across calls within one test (tests
/// share the database's offsets table, so each test runs its own pipeline).
fn context(key: &[&str]) -> SinkContext {
    thread_local!(static PIPELINE: String = common::unique("p"));
    SinkContext {
        pipeline: PIPELINE.with(Clone::clone),
        sink: "s".into(),
        schema: parse_schema("id BIGINT NOT NULL, name VARCHAR").unwrap(),
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

async fn db(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(url).unwrap())
        .await
        .unwrap()
}

async fn names(url: &str, table: &str) -> Vec<(i64, Option<String>)> {
    db(url)
        .await
        .query(format!("SELECT id, name FROM {table} ORDER BY id"))
        .await
        .unwrap()
}

fn batch(ops: Vec<SinkOp>) -> SinkBatch {
    SinkBatch {
        topic: "people".into(),
        ops,
        bytes: 0,
    }
}

#[tokio::test]
async fn insert_mode_writes_rows_and_stores_offsets_exactly_once() {
    // Proves insert mode writes every row with multi-row statements, and a new sink
    // instance's open() returns the offsets committed with the rows.
    let Some(url) = common::mysql_url() else {
        return;
    };
    let table = common::unique("my_insert");
    db(&url)
        .await
        .query_drop(format!(
            "CREATE TABLE {table} (id BIGINT NOT NULL, name TEXT)"
        ))
        .await
        .unwrap();
    let cfg = format!("url = \"{url}\"\ntable = \"{table}\"");
    let mut sink = registry::sink(&settings("mysql", "s", &cfg)).unwrap();
    assert!(sink.check().await.is_empty());
    assert_eq!(sink.open(&context(&[])).await.unwrap(), None);
    sink.write(batch(vec![SinkOp::Upsert(people(
        &[1, 2],
        &[Some("a"), None],
    ))]))
    .await
    .unwrap();
    assert!(sink.commit(&offsets(2), false).await.unwrap());
    assert_eq!(
        names(&url, &table).await,
        vec![(1, Some("a".into())), (2, None)]
    );
    let mut again = registry::sink(&settings("mysql", "s", &cfg)).unwrap();
    assert_eq!(again.open(&context(&[])).await.unwrap(), Some(offsets(2)));
}

#[tokio::test]
async fn upsert_applies_updates_and_deletes_in_order() {
    // Proves upserts, a repeated key, deletes and a re-insert in one commit apply in
    // order, on a table made by create_table.
    let Some(url) = common::mysql_url() else {
        return;
    };
    let table = common::unique("my_upsert");
    let cfg =
        format!("url = \"{url}\"\ntable = \"{table}\"\nmode = \"upsert\"\ncreate_table = true");
    let mut sink = registry::sink(&settings("mysql", "s", &cfg)).unwrap();
    sink.open(&context(&["id"])).await.unwrap();
    sink.write(batch(vec![
        SinkOp::Upsert(people(
            &[1, 2, 3, 1],
            &[Some("a"), Some("b"), Some("c"), Some("a2")],
        )),
        SinkOp::Delete(keys(&[2, 3])),
        SinkOp::Upsert(people(&[3], &[Some("c2")])),
    ]))
    .await
    .unwrap();
    sink.commit(&offsets(6), true).await.unwrap();
    assert_eq!(
        names(&url, &table).await,
        vec![(1, Some("a2".into())), (3, Some("c2".into()))]
    );
}

#[tokio::test]
async fn a_failed_commit_leaves_neither_rows_nor_offsets() {
    // Proves a NOT NULL violation rolls back the commit's rows and offsets together, and
    // the kept buffer is not half-applied.
    let Some(url) = common::mysql_url() else {
        return;
    };
    let table = common::unique("my_fail");
    db(&url)
        .await
        .query_drop(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT NOT NULL)"
        ))
        .await
        .unwrap();
    let cfg = format!("url = \"{url}\"\ntable = \"{table}\"");
    let mut sink = registry::sink(&settings("mysql", "s", &cfg)).unwrap();
    sink.open(&context(&["id"])).await.unwrap();
    sink.write(batch(vec![SinkOp::Upsert(people(
        &[1, 2],
        &[Some("a"), None],
    ))]))
    .await
    .unwrap();
    let err = sink
        .commit(&offsets(2), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be null"), "{err}");
    assert!(names(&url, &table).await.is_empty());
    let mut fresh = registry::sink(&settings("mysql", "s", &cfg)).unwrap();
    assert_eq!(fresh.open(&context(&["id"])).await.unwrap(), None);
}

#[tokio::test]
async fn every_type_round_trips_through_sink_and_source() {
    // Proves each Sluice type written by the sink reads back as equal Arrow arrays
    // and bulk ends with Done. TIMESTAMPTZ
    // is MySQL's TIMESTAMP, which starts at 1970-01-01 00:00:01 UTC.
    let Some(url) = common::mysql_url() else {
        return;
    };
    let table = common::unique("my_types");
    let schema = parse_schema(
        "id BIGINT NOT NULL, b BOOLEAN, s SMALLINT, i INT, r REAL, d DOUBLE, n DECIMAL(20,4), \
         t VARCHAR, y BYTEA, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ",
    )
    .unwrap();
    let rows = RecordBatch::try_new(
        schema.clone(),
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
                TimestampMicrosecondArray::from(vec![
                    Some(1_700_000_000_654_321),
                    Some(1_000_000),
                    None,
                ])
                .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    let ctx = SinkContext {
        pipeline: "p".into(),
        sink: "s".into(),
        schema,
        key: vec!["id".into()],
    };
    let cfg =
        format!("url = \"{url}\"\ntable = \"{table}\"\nmode = \"upsert\"\ncreate_table = true");
    let mut sink = registry::sink(&settings("mysql", "s", &cfg)).unwrap();
    sink.open(&ctx).await.unwrap();
    sink.write(batch(vec![SinkOp::Upsert(rows.clone())]))
        .await
        .unwrap();
    sink.commit(&Offsets::new(), true).await.unwrap();

    let mut source = registry::source(&settings(
        "mysql",
        "src",
        &format!("url = \"{url}\"\ntable = \"{table}\""),
    ))
    .unwrap();
    assert!(source.check().await.is_empty());
    source.open(None).await.unwrap();
    let Poll::Batch(got) = source.poll(100).await.unwrap() else {
        panic!("expected rows")
    };
    assert_eq!(got.rows, rows);
    assert_eq!(got.default_key, vec!["id".to_string()]);
    assert!(matches!(source.poll(100).await.unwrap(), Poll::Done));
}

#[tokio::test]
async fn sources_resume_after_their_position_in_every_mode() {
    // Proves each mode reads in pages and a new instance resumes from a returned
    // position, reading rows added meanwhile and none twice .
    let Some(url) = common::mysql_url() else {
        return;
    };
    for mode in [
        "bulk",
        "incrementing",
        "timestamp",
        "timestamp+incrementing",
    ] {
        let table = common::unique("my_src");
        let mut conn = db(&url).await;
        conn.query_drop(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, ts DATETIME(6) NOT NULL, v TEXT)"
        ))
        .await
        .unwrap();
        for id in 1..=5 {
            conn.exec_drop(
                format!("INSERT INTO {table} VALUES (?, ?, 'v')"),
                (id, format!("2024-01-01 00:00:{:02}", id / 2)),
            )
            .await
            .unwrap();
        }
        let cfg = format!(
            "url = \"{url}\"\ntable = \"{table}\"\nmode = \"{mode}\"\nincrementing_column = \"id\"\ntimestamp_column = \"ts\"\npoll_interval_ms = 1"
        );
        let ids = |b: &RecordBatch| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        let mut source = registry::source(&settings("mysql", "src", &cfg)).unwrap();
        source.open(None).await.unwrap();
        let mut seen = Vec::new();
        let mut position = None;
        for _ in 0..2 {
            if let Poll::Batch(b) = source.poll(2).await.unwrap() {
                seen.extend(ids(&b.rows));
                position = Some(b.position);
            }
        }
        conn.query_drop(format!(
            "INSERT INTO {table} VALUES (6, '2024-01-01 00:00:10', 'v')"
        ))
        .await
        .unwrap();
        let mut resumed = registry::source(&settings("mysql", "src", &cfg)).unwrap();
        resumed.open(position).await.unwrap();
        while let Poll::Batch(b) = resumed.poll(2).await.unwrap() {
            seen.extend(ids(&b.rows));
        }
        seen.sort();
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6], "mode {mode}");
    }
}

#[tokio::test]
async fn check_reports_a_missing_table_and_an_unreachable_server() {
    // Proves check() names a missing table, and an unreachable server with its address.
    let Some(url) = common::mysql_url() else {
        return;
    };
    let missing = common::unique("my_missing");
    let mut sink = registry::sink(&settings(
        "mysql",
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
        "mysql",
        "s",
        &format!("url = \"{url}\"\ntable = \"{missing}\""),
    ))
    .unwrap();
    assert!(source.check().await[0].contains("does not exist"));
    let mut down = registry::source(&settings(
        "mysql",
        "s",
        "url = \"mysql://root@127.0.0.1:1/test\"\ntable = \"t\"",
    ))
    .unwrap();
    let problems = down.check().await;
    assert!(
        problems.len() == 1 && problems[0].contains("127.0.0.1:1"),
        "{problems:?}"
    );
}
