//! The `postgres-cdc` source against the real PostgreSQL (wal_level = logical): snapshot,
//! streamed changes, positions and resuming, big transactions, several tables,
//! tombstones and check(). Every test drops the slot, publication and tables it made.

// Test code: a failed setup step should stop the test where it happened.
#![allow(clippy::unwrap_used)]

mod common;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::DataType;
use arrow::util::display::array_value_to_string;
use futures::FutureExt;
use sluice_connectors::pgcdc::PostgresCdcSource;
use sluice_connectors::{Poll, Position, Settings, Source, SourceBatch};
use tokio_postgres::{Client, NoTls};

/// A test's database objects, dropped at the end whatever happened.
struct Fixture {
    client: Client,
    url: String,
    slot: String,
    publication: String,
    tables: Vec<String>,
}

impl Fixture {
    /// Connects and creates `tables` (name -> column list); `None` when PostgreSQL is
    /// not there (the test is skipped loudly by `common`).
    async fn new(tables: &[&str]) -> Option<(Fixture, Vec<String>)> {
        let url = common::postgres_url()?;
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let mut names = Vec::new();
        for columns in tables {
            let name = common::unique("cdc_t");
            client
                .batch_execute(&format!("CREATE TABLE {name} ({columns})"))
                .await
                .unwrap();
            names.push(name);
        }
        let fixture = Fixture {
            client,
            url,
            slot: common::unique("cdc_slot"),
            publication: common::unique("cdc_pub"),
            tables: names.clone(),
        };
        Some((fixture, names))
    }

    /// The source's settings: these tables, this slot and publication, plus `extra`.
    fn settings(&self, extra: &str) -> Settings {
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| format!("\"public.{t}\""))
            .collect();
        let text = format!(
            "url = \"{}\"\ntables = [{}]\nslot = \"{}\"\npublication = \"{}\"\n\
             poll_interval_ms = 20\n{extra}",
            self.url,
            tables.join(", "),
            self.slot,
            self.publication
        );
        Settings::from_table("cdc-test", "postgres-cdc", toml::from_str(&text).unwrap())
    }

    async fn source(&self, extra: &str, position: Option<Position>) -> PostgresCdcSource {
        let mut source = PostgresCdcSource::new(&self.settings(extra)).unwrap();
        source.open(position).await.unwrap();
        source
    }

    async fn sql(&self, sql: &str) {
        self.client.batch_execute(sql).await.unwrap();
    }

    /// Runs `body`, then drops the slot, publication and tables even if it panicked.
    async fn run(self, body: impl AsyncFnOnce(&Fixture)) {
        let outcome = AssertUnwindSafe(body(&self)).catch_unwind().await;
        // The sources are gone with the body; a slot still marked active is released
        // within moments, so retry the drop briefly.
        for _ in 0..50 {
            let dropped = self
                .client
                .batch_execute(&format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = '{}'",
                    self.slot
                ))
                .await;
            if dropped.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut cleanup = format!("DROP PUBLICATION IF EXISTS {};", self.publication);
        for table in &self.tables {
            cleanup.push_str(&format!("DROP TABLE IF EXISTS {table};"));
        }
        self.client.batch_execute(&cleanup).await.unwrap();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Polls until `rows` rows arrived (failing after 20 s), then checks nothing more comes.
async fn collect(source: &mut PostgresCdcSource, max_rows: usize, rows: usize) -> Vec<SourceBatch> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut batches = Vec::new();
    let mut got = 0;
    while got < rows {
        assert!(
            Instant::now() < deadline,
            "only {got} of {rows} rows arrived"
        );
        match source.poll(max_rows).await.unwrap() {
            Poll::Batch(batch) => {
                got += batch.rows.num_rows();
                batches.push(batch);
            }
            Poll::Idle => {}
            Poll::Done => panic!("a CDC source is never done"),
        }
    }
    for _ in 0..3 {
        if let Poll::Batch(batch) = source.poll(max_rows).await.unwrap() {
            assert_eq!(
                batch.rows.num_rows(),
                0,
                "unexpected rows: {:?}",
                batch.rows
            );
            batches.push(batch);
        }
    }
    batches
}

/// A column's values as text (`null` for nulls; TIMESTAMPTZ as Unix microseconds, which
/// Arrow cannot display without chrono-tz).
fn column(rows: &RecordBatch, name: &str) -> Vec<String> {
    let array = rows
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let zoned = array.as_any().downcast_ref::<TimestampMicrosecondArray>();
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                "null".to_string()
            } else if let Some(zoned) =
                zoned.filter(|_| matches!(array.data_type(), DataType::Timestamp(_, Some(_))))
            {
                zoned.value(i).to_string()
            } else {
                array_value_to_string(array, i).unwrap()
            }
        })
        .collect()
}

/// `(id, _op)` of every row of the batches, in order.
fn ids_and_ops(batches: &[SourceBatch]) -> Vec<(String, String)> {
    batches
        .iter()
        .filter(|b| b.rows.num_rows() > 0)
        .flat_map(|b| {
            column(&b.rows, "id")
                .into_iter()
                .zip(column(&b.rows, "_op"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn last_position(batches: &[SourceBatch]) -> Position {
    batches.last().expect("no batch").position.clone()
}

fn pairs(list: &[(i32, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(id, op)| (id.to_string(), op.to_string()))
        .collect()
}

const EVERY_TYPE: &str = "id int PRIMARY KEY, s smallint, b bigint, r real, d double precision, \
    n numeric(12,2), nu numeric, flag boolean, t text, vc varchar(10), bc char(3), nm name, \
    by bytea, dt date, ts timestamp, tz timestamptz, j jsonb, u uuid";

const EVERY_VALUE: &str = "-3, 9000000000, 1.5, 2.25, 1234.50, 3.14159265358979323846, true, \
    'héllo', 'v', 'ab', 'nm', '\\x00ff', '2024-02-29', '2024-01-02 03:04:05.123456', \
    '2024-01-02 03:04:05+02', '{\"a\": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'";

#[tokio::test]
async fn snapshot_then_changes_stream_in_commit_order_with_every_type() {
    // Proves existing rows come first as `_op = 'r'`, then inserts, updates and deletes
    // in commit order as c/u/d, every supported type converted to its Arrow type.
    let Some((fixture, tables)) = Fixture::new(&[EVERY_TYPE]).await else {
        return;
    };
    fixture
        .run(async move |f| {
            let t = &tables[0];
            f.sql(&format!("INSERT INTO {t} VALUES (1, {EVERY_VALUE}), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")).await;
            let mut source = f.source("", None).await;
            let snapshot = collect(&mut source, 100, 2).await;
            assert_eq!(ids_and_ops(&snapshot), pairs(&[(1, "r"), (2, "r")]));
            let rows = &snapshot[0].rows;
            assert_eq!(snapshot[0].stream.as_deref(), Some(format!("public.{t}").as_str()));
            assert_eq!(snapshot[0].default_key, vec!["id".to_string()]);
            let schema = rows.schema();
            let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
            assert_eq!(types[1], &DataType::Int16);
            assert_eq!(types[2], &DataType::Int64);
            assert_eq!(types[3], &DataType::Float32);
            assert_eq!(types[5], &DataType::Decimal128(12, 2));
            assert_eq!(types[6], &DataType::Utf8);
            assert_eq!(types[12], &DataType::Binary);
            assert_eq!(types[13], &DataType::Date32);
            assert!(matches!(types[15], DataType::Timestamp(_, Some(_))));
            assert_eq!(column(rows, "_commit_ts"), vec!["null", "null"]);
            let first = |name: &str| column(rows, name)[0].clone();
            assert_eq!(first("s"), "-3");
            assert_eq!(first("b"), "9000000000");
            assert_eq!(first("n"), "1234.50");
            assert_eq!(first("nu"), "3.14159265358979323846");
            assert_eq!(first("flag"), "true");
            assert_eq!(first("t"), "héllo");
            assert_eq!(first("bc"), "ab ");
            assert_eq!(first("by"), "00ff");
            assert_eq!(first("dt"), "2024-02-29");
            assert_eq!(first("ts"), "2024-01-02T03:04:05.123456");
            assert_eq!(first("tz"), "1704157445000000"); // 2024-01-02 01:04:05 UTC
            assert_eq!(first("j"), "{\"a\": 1}");
            assert_eq!(first("u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");

            f.sql(&format!("INSERT INTO {t} VALUES (3, {EVERY_VALUE})")).await;
            f.sql(&format!("UPDATE {t} SET t = 'changed', n = -0.01 WHERE id = 1")).await;
            f.sql(&format!("DELETE FROM {t} WHERE id = 2")).await;
            f.sql(&format!("INSERT INTO {t} (id) VALUES (4)")).await;
            let changes = collect(&mut source, 100, 4).await;
            assert_eq!(
                ids_and_ops(&changes),
                pairs(&[(3, "c"), (1, "u"), (2, "d"), (4, "c")])
            );
            let rows = &changes[0].rows;
            assert_eq!(column(rows, "t"), vec!["héllo", "changed", "null", "null"]);
            assert_eq!(column(rows, "n"), vec!["1234.50", "-0.01", "null", "null"]);
            assert_eq!(column(rows, "tz")[0], first("tz"));
            let lsns: Vec<i64> = column(rows, "_lsn").iter().map(|l| l.parse().unwrap()).collect();
            assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{lsns:?}");
            assert!(column(rows, "_commit_ts").iter().all(|ts| ts != "null"));
            assert!(changes[0].tombstones.is_none());
        })
        .await;
}

#[tokio::test]
async fn resuming_from_a_committed_position_misses_and_repeats_nothing() {
    // Proves a source reopened at a position it returned (and had committed) streams
    // exactly the changes made after it, and that committed() advanced the slot.
    let Some((fixture, tables)) = Fixture::new(&["id int PRIMARY KEY, v text"]).await else {
        return;
    };
    fixture
        .run(async move |f| {
            let t = &tables[0];
            let mut source = f.source("snapshot = \"never\"", None).await;
            for id in 1..=3 {
                f.sql(&format!("INSERT INTO {t} VALUES ({id}, 'a')")).await;
            }
            let batches = collect(&mut source, 100, 3).await;
            assert_eq!(ids_and_ops(&batches), pairs(&[(1, "c"), (2, "c"), (3, "c")]));
            let position = last_position(&batches);
            source.committed(&position).await.unwrap();
            let confirmed: String = f
                .client
                .query_one(
                    "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                    &[&f.slot],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(Some(confirmed.as_str()), position["lsn"].as_str());
            drop(source);

            f.sql(&format!("UPDATE {t} SET v = 'b' WHERE id = 2")).await;
            f.sql(&format!("INSERT INTO {t} VALUES (4, 'a')")).await;
            let mut source = f.source("snapshot = \"never\"", Some(position)).await;
            let batches = collect(&mut source, 100, 2).await;
            assert_eq!(ids_and_ops(&batches), pairs(&[(2, "u"), (4, "c")]));
        })
        .await;
}

#[tokio::test]
async fn a_crash_before_committed_replays_the_same_changes() {
    // Proves peeking does not consume: a source that dies after returning a batch but
    // before committed() is reopened at the previous position and gets the same changes.
    let Some((fixture, tables)) = Fixture::new(&["id int PRIMARY KEY, v text"]).await else {
        return;
    };
    fixture
        .run(async move |f| {
            let t = &tables[0];
            let mut source = f.source("snapshot = \"never\"", None).await;
            f.sql(&format!("INSERT INTO {t} VALUES (1, 'a')")).await;
            let first = collect(&mut source, 100, 1).await;
            let committed = last_position(&first);
            source.committed(&committed).await.unwrap();
            f.sql(&format!("INSERT INTO {t} VALUES (2, 'b'), (3, 'c')"))
                .await;
            f.sql(&format!("DELETE FROM {t} WHERE id = 1")).await;
            let lost = collect(&mut source, 100, 3).await;
            drop(source); // the crash: committed() never called for `lost`

            let mut source = f.source("snapshot = \"never\"", Some(committed)).await;
            let replayed = collect(&mut source, 100, 3).await;
            assert_eq!(
                ids_and_ops(&replayed),
                pairs(&[(2, "c"), (3, "c"), (1, "d")])
            );
            assert_eq!(ids_and_ops(&replayed), ids_and_ops(&lost));
            assert_eq!(
                column(&replayed[0].rows, "_lsn"),
                column(&lost[0].rows, "_lsn")
            );
        })
        .await;
}

#[tokio::test]
async fn a_big_transaction_splits_into_batches_and_resumes_inside_it_exactly() {
    // Proves a transaction bigger than a batch is emitted in bounded batches whose
    // positions point inside it, and that resuming from one skips exactly what was
    // emitted: no row lost, none repeated.
    let Some((fixture, tables)) = Fixture::new(&["id int PRIMARY KEY, v text"]).await else {
        return;
    };
    fixture
        .run(async move |f| {
            let t = &tables[0];
            let extra = "snapshot = \"never\"\nmax_changes_per_poll = 250";
            let mut source = f.source(extra, None).await;
            f.sql(&format!(
                "INSERT INTO {t} SELECT g, 'x' FROM generate_series(1, 1000) g"
            ))
            .await;
            let mut batches = Vec::new();
            while batches
                .iter()
                .map(|b: &SourceBatch| b.rows.num_rows())
                .sum::<usize>()
                < 600
            {
                if let Poll::Batch(batch) = source.poll(300).await.unwrap() {
                    assert!(
                        batch.rows.num_rows() <= 250,
                        "{} rows",
                        batch.rows.num_rows()
                    );
                    batches.push(batch);
                }
            }
            let position = last_position(&batches);
            assert!(
                position.get("txn").is_some(),
                "position {position} is not inside the transaction"
            );
            let seen = ids_and_ops(&batches).len();
            drop(source);

            let mut source = f.source(extra, Some(position)).await;
            let rest = collect(&mut source, 300, 1000 - seen).await;
            let ids: Vec<i32> = ids_and_ops(&rest)
                .iter()
                .map(|(id, _)| id.parse().unwrap())
                .collect();
            let expected: Vec<i32> = ((seen as i32 + 1)..=1000).collect();
            assert_eq!(ids, expected);
        })
        .await;
}

#[tokio::test]
async fn two_tables_give_one_table_per_batch_in_commit_order() {
    // Proves changes to several tables in one transaction come out as batches of a single
    // table each, named by table, keyed by primary key, in commit order overall.
    let Some((fixture, tables)) = Fixture::new(&[
        "id int PRIMARY KEY, v text",
        "k text, id int, PRIMARY KEY (k, id)",
    ])
    .await
    else {
        return;
    };
    fixture
        .run(async move |f| {
            let (a, b) = (&tables[0], &tables[1]);
            let mut source = f.source("snapshot = \"never\"", None).await;
            f.sql(&format!(
                "BEGIN; INSERT INTO {a} VALUES (1, 'x'); INSERT INTO {b} VALUES ('k', 2); \
                 INSERT INTO {b} VALUES ('k', 3); INSERT INTO {a} VALUES (4, 'y'); COMMIT"
            ))
            .await;
            let batches: Vec<SourceBatch> = collect(&mut source, 100, 4)
                .await
                .into_iter()
                .filter(|b| b.rows.num_rows() > 0)
                .collect();
            let streams: Vec<String> = batches.iter().map(|b| b.stream.clone().unwrap()).collect();
            assert_eq!(
                streams,
                vec![
                    format!("public.{a}"),
                    format!("public.{b}"),
                    format!("public.{a}")
                ]
            );
            assert_eq!(
                ids_and_ops(&batches),
                pairs(&[(1, "c"), (2, "c"), (3, "c"), (4, "c")])
            );
            assert_eq!(
                batches[1].default_key,
                vec!["k".to_string(), "id".to_string()]
            );
        })
        .await;
}

#[tokio::test]
async fn tombstone_mode_marks_deletes_with_their_keys() {
    // Proves `deletes = "tombstone"` flags exactly the delete rows, which carry the key
    // and null for the other columns (replica identity default).
    let Some((fixture, tables)) = Fixture::new(&["id int PRIMARY KEY, v text"]).await else {
        return;
    };
    fixture
        .run(async move |f| {
            let t = &tables[0];
            f.sql(&format!("INSERT INTO {t} VALUES (1, 'a'), (2, 'b')"))
                .await;
            let extra = "deletes = \"tombstone\"";
            let mut source = f.source(extra, None).await;
            let snapshot = collect(&mut source, 100, 2).await;
            assert_eq!(
                snapshot[0].tombstones.as_ref().map(|t| t.true_count()),
                Some(0)
            );
            f.sql(&format!(
                "DELETE FROM {t} WHERE id = 1; INSERT INTO {t} VALUES (3, 'c')"
            ))
            .await;
            let changes = collect(&mut source, 100, 2).await;
            let batch = &changes[0];
            assert_eq!(ids_and_ops(&changes), pairs(&[(1, "d"), (3, "c")]));
            let tombstones = batch.tombstones.as_ref().expect("tombstones");
            assert_eq!((tombstones.value(0), tombstones.value(1)), (true, false));
            assert_eq!(column(&batch.rows, "v"), vec!["null", "c"]);
        })
        .await;
}

#[tokio::test]
async fn a_value_that_does_not_fit_is_a_reject_with_its_position() {
    // Proves a value the Arrow type cannot hold (NaN in numeric(12,2)) becomes a reject
    // naming the table and LSN, while the other rows go on.
    let Some((fixture, tables)) = Fixture::new(&["id int PRIMARY KEY, n numeric(12,2)"]).await
    else {
        return;
    };
    fixture
        .run(async move |f| {
            let t = &tables[0];
            let mut source = f.source("snapshot = \"never\"", None).await;
            f.sql(&format!("INSERT INTO {t} VALUES (1, 'NaN'), (2, 5)"))
                .await;
            let batches = collect(&mut source, 100, 1).await;
            assert_eq!(ids_and_ops(&batches), pairs(&[(2, "c")]));
            let rejects: Vec<_> = batches.iter().flat_map(|b| b.rejects.clone()).collect();
            assert_eq!(rejects.len(), 1);
            assert!(
                rejects[0].position.starts_with(&format!("public.{t}@")),
                "{:?}",
                rejects[0]
            );
            assert!(rejects[0].error.contains("NaN"), "{}", rejects[0].error);
        })
        .await;
}

#[tokio::test]
async fn check_reports_a_table_without_primary_key_and_a_bad_url() {
    // Proves check() names a keyless table (with the fix) and an unreachable server,
    // without creating anything.
    let Some((fixture, _tables)) = Fixture::new(&["id int, v text"]).await else {
        return;
    };
    fixture
        .run(async move |f| {
            let mut source = PostgresCdcSource::new(&f.settings("")).unwrap();
            let problems = source.check().await;
            assert!(
                problems.iter().any(|p| p.contains("no primary key")),
                "{problems:?}"
            );
            assert!(
                problems.iter().any(|p| p.contains("REPLICA IDENTITY FULL")),
                "{problems:?}"
            );

            let mut table = f.settings("").table().clone();
            table.insert("url".into(), "postgres://postgres@127.0.0.1:1/test".into());
            let settings = Settings::from_table("cdc-test", "postgres-cdc", table);
            let mut source = PostgresCdcSource::new(&settings).unwrap();
            let problems = source.check().await;
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("cannot connect"), "{problems:?}");
            assert!(source.open(None).await.unwrap_err().is_retriable());
        })
        .await;
}

#[tokio::test]
async fn a_crash_mid_snapshot_resumes_after_the_last_key_copied() {
    // Proves the snapshot position (table, last key) makes a reopened source copy the
    // remaining rows only, then stream changes made meanwhile.
    let Some((fixture, tables)) = Fixture::new(&["id int PRIMARY KEY, v text"]).await else {
        return;
    };
    fixture
        .run(async move |f| {
            let t = &tables[0];
            f.sql(&format!(
                "INSERT INTO {t} SELECT g, 'x' FROM generate_series(1, 5) g"
            ))
            .await;
            let mut source = f.source("", None).await;
            let Poll::Batch(first) = source.poll(2).await.unwrap() else {
                panic!("no snapshot page")
            };
            assert_eq!(
                ids_and_ops(std::slice::from_ref(&first)),
                pairs(&[(1, "r"), (2, "r")])
            );
            assert_eq!(first.position["phase"], "snapshot");
            drop(source);

            f.sql(&format!("INSERT INTO {t} VALUES (6, 'new')")).await;
            let mut source = f.source("", Some(first.position.clone())).await;
            // Row 6 was committed after the slot's creation and before the (resumed) copy:
            // it is both copied and streamed, the documented at-least-once overlap.
            let rest = collect(&mut source, 2, 5).await;
            assert_eq!(
                ids_and_ops(&rest),
                pairs(&[(3, "r"), (4, "r"), (5, "r"), (6, "r"), (6, "c")])
            );
        })
        .await;
}
