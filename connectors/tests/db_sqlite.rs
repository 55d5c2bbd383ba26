//! The SQLite sink and source against real database files in temporary directories.

#![allow(clippy::unwrap_used)] // tests fail loudly on the first unexpected error

use std::sync::Arc;

use arrow::array::{
    BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use sluice_connectors::schema::parse_schema;
use sluice_connectors::{Offsets, Poll, Settings, SinkBatch, SinkContext, SinkOp, registry};

fn settings(kind: &str, name: &str, toml_text: &str) -> Settings {
    Settings::from_table(name, kind, toml::from_str(toml_text).unwrap())
}

fn context(key: &[&str]) -> SinkContext {
    SinkContext {
        pipeline: "p".into(),
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

fn names(path: &std::path::Path, table: &str) -> Vec<(i64, Option<String>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT id, name FROM {table} ORDER BY id"))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
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
    // Proves insert mode writes every row, the file is in WAL mode, and a new sink
    // instance's open() returns the offsets committed with the rows.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE people (id BIGINT NOT NULL, name TEXT)")
        .unwrap();
    let cfg = format!("path = \"{}\"\ntable = \"people\"", path.display());
    let mut sink = registry::sink(&settings("sqlite", "s", &cfg)).unwrap();
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
        names(&path, "people"),
        vec![(1, Some("a".into())), (2, None)]
    );
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut again = registry::sink(&settings("sqlite", "s", &cfg)).unwrap();
    assert_eq!(again.open(&context(&[])).await.unwrap(), Some(offsets(2)));
}

#[tokio::test]
async fn upsert_applies_updates_and_deletes_in_order() {
    // Proves upserts, a repeated key, deletes and a re-insert in one commit apply in
    // order, on a table made by create_table.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let cfg = format!(
        "path = \"{}\"\ntable = \"people\"\nmode = \"upsert\"\ncreate_table = true",
        path.display()
    );
    let mut sink = registry::sink(&settings("sqlite", "s", &cfg)).unwrap();
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
        names(&path, "people"),
        vec![(1, Some("a2".into())), (3, Some("c2".into()))]
    );
}

#[tokio::test]
async fn a_failed_commit_leaves_neither_rows_nor_offsets() {
    // Proves a NOT NULL violation rolls back the commit's rows and offsets together, and
    // the kept buffer is not half-applied.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
        .unwrap();
    let cfg = format!("path = \"{}\"\ntable = \"people\"", path.display());
    let mut sink = registry::sink(&settings("sqlite", "s", &cfg)).unwrap();
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
    assert!(err.contains("NOT NULL"), "{err}");
    assert!(names(&path, "people").is_empty());
    let mut fresh = registry::sink(&settings("sqlite", "s", &cfg)).unwrap();
    assert_eq!(fresh.open(&context(&["id"])).await.unwrap(), None);
}

#[tokio::test]
async fn every_type_round_trips_through_sink_and_source() {
    // Proves each Sluice type written by the sink reads back as equal Arrow arrays
    // (decimals within SQLite's 15 significant digits), and bulk ends with Done.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
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
                TimestampMicrosecondArray::from(vec![Some(1_700_000_000_654_321), Some(0), None])
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
    let cfg = format!(
        "path = \"{}\"\ntable = \"types\"\nmode = \"upsert\"\ncreate_table = true",
        path.display()
    );
    let mut sink = registry::sink(&settings("sqlite", "s", &cfg)).unwrap();
    sink.open(&ctx).await.unwrap();
    sink.write(batch(vec![SinkOp::Upsert(rows.clone())]))
        .await
        .unwrap();
    sink.commit(&Offsets::new(), true).await.unwrap();

    let mut source = registry::source(&settings(
        "sqlite",
        "src",
        &format!("path = \"{}\"\ntable = \"types\"", path.display()),
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
    // position, reading rows added meanwhile and none twice (timestamps as text).
    for mode in [
        "bulk",
        "incrementing",
        "timestamp",
        "timestamp+incrementing",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE src (id INTEGER PRIMARY KEY, ts TIMESTAMP NOT NULL, v TEXT)",
        )
        .unwrap();
        for id in 1..=5 {
            conn.execute(
                "INSERT INTO src VALUES (?1, ?2, 'v')",
                rusqlite::params![id, format!("2024-01-01 00:00:{:02}", id / 2)],
            )
            .unwrap();
        }
        let cfg = format!(
            "path = \"{}\"\ntable = \"src\"\nmode = \"{mode}\"\nincrementing_column = \"id\"\ntimestamp_column = \"ts\"\npoll_interval_ms = 1",
            path.display()
        );
        let ids = |b: &RecordBatch| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        let mut source = registry::source(&settings("sqlite", "src", &cfg)).unwrap();
        source.open(None).await.unwrap();
        let mut seen = Vec::new();
        let mut position = None;
        for _ in 0..2 {
            if let Poll::Batch(b) = source.poll(2).await.unwrap() {
                seen.extend(ids(&b.rows));
                position = Some(b.position);
            }
        }
        conn.execute("INSERT INTO src VALUES (6, '2024-01-01 00:00:10', 'v')", [])
            .unwrap();
        let mut resumed = registry::source(&settings("sqlite", "src", &cfg)).unwrap();
        resumed.open(position).await.unwrap();
        while let Poll::Batch(b) = resumed.poll(2).await.unwrap() {
            seen.extend(ids(&b.rows));
        }
        seen.sort();
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6], "mode {mode}");
    }
}

#[tokio::test]
async fn check_reports_a_missing_table_and_a_missing_file() {
    // Proves check() names a missing table, and a source's missing database file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut sink = registry::sink(&settings(
        "sqlite",
        "s",
        &format!("path = \"{}\"\ntable = \"nope\"", path.display()),
    ))
    .unwrap();
    let problems = sink.check().await;
    assert!(
        problems.len() == 1 && problems[0].contains("does not exist"),
        "{problems:?}"
    );
    let missing = dir.path().join("missing.db");
    let mut source = registry::source(&settings(
        "sqlite",
        "s",
        &format!("path = \"{}\"\ntable = \"t\"", missing.display()),
    ))
    .unwrap();
    let problems = source.check().await;
    assert!(
        problems.len() == 1 && problems[0].contains("missing.db"),
        "{problems:?}"
    );
}
