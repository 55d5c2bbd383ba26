//! The `parquet` source reading what the `parquet` sink wrote: every row once, Hive
//! columns, exact resuming from positions, watch mode.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use sluice_connectors::parquet::{ParquetSink, ParquetSource};
use sluice_connectors::schema::parse_schema;
use sluice_connectors::{
    Offsets, Poll, Position, Settings, Sink, SinkBatch, SinkContext, SinkOp, Source,
};

fn rows(from: i64, to: i64) -> RecordBatch {
    let schema = parse_schema("id BIGINT, region VARCHAR").unwrap();
    let ids: Vec<i64> = (from..to).collect();
    let regions: Vec<&str> = ids
        .iter()
        .map(|i| if i % 2 == 0 { "eu" } else { "us" })
        .collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(regions)),
        ],
    )
    .unwrap()
}

/// Writes ids `0..n` with the sink, `per_commit` rows per commit.
async fn write_lake(dir: &std::path::Path, extra: &str, n: i64, per_commit: i64) {
    let table = format!("path = {:?}\n{extra}", dir.to_str().unwrap());
    let mut sink = ParquetSink::new(&Settings::from_table(
        "lake",
        "parquet",
        toml::from_str(&table).unwrap(),
    ))
    .unwrap();
    let schema = rows(0, 1).schema();
    let context = SinkContext {
        pipeline: "p".into(),
        sink: "lake".into(),
        schema,
        key: vec![],
    };
    sink.open(&context).await.unwrap();
    let mut at = 0;
    while at < n {
        let to = (at + per_commit).min(n);
        let batch = SinkBatch {
            topic: "orders".into(),
            ops: vec![SinkOp::Upsert(rows(at, to))],
            bytes: 0,
        };
        sink.write(batch).await.unwrap();
        let offsets: Offsets = [(("orders".to_string(), 0), to)].into_iter().collect();
        assert!(sink.commit(&offsets, true).await.unwrap());
        at = to;
    }
}

fn source(table: &str) -> ParquetSource {
    ParquetSource::new(&Settings::from_table(
        "read",
        "parquet",
        toml::from_str(table).unwrap(),
    ))
    .unwrap()
}

async fn drain(
    src: &mut ParquetSource,
    max_rows: usize,
) -> (Vec<(RecordBatch, Position)>, &'static str) {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        match src.poll(max_rows).await.unwrap() {
            Poll::Batch(b) => {
                assert!(b.rows.num_rows() <= max_rows);
                out.push((b.rows, b.position));
            }
            Poll::Idle => return (out, "idle"),
            Poll::Done => return (out, "done"),
        }
    }
    panic!("never stopped");
}

fn ids(batches: &[(RecordBatch, Position)]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|(r, _)| {
            r.column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn reads_back_every_row_the_sink_wrote_and_resumes_exactly() {
    // Proves the source reads the sink's files in order (a directory, recursively, skipping
    // _sluice), in batches of at most max_rows, and that from every position it returned a
    // new source reads exactly the rest.
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path(), "", 250, 70).await;
    let table = format!("path = {:?}", dir.path().to_str().unwrap());
    let mut src = source(&table);
    assert!(src.check().await.is_empty());
    src.open(None).await.unwrap();
    let (batches, ended) = drain(&mut src, 30).await;
    assert_eq!(ended, "done");
    let all = ids(&batches);
    assert_eq!(all, (0..250).collect::<Vec<_>>());
    let mut seen = 0;
    for (rows, position) in &batches {
        seen += rows.num_rows();
        let mut again = source(&table);
        again.open(Some(position.clone())).await.unwrap();
        assert_eq!(
            ids(&drain(&mut again, 45).await.0),
            all[seen..],
            "from {position}"
        );
    }
}

#[tokio::test]
async fn hive_directories_become_columns() {
    // Proves with hive_partitions = true the `region=..` directories the sink made come back
    // as a VARCHAR column with the right value on every row.
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path(), "partition_by = [\"region\"]", 20, 20).await;
    let mut src = source(&format!(
        "path = {:?}\nhive_partitions = true",
        dir.path().to_str().unwrap()
    ));
    src.open(None).await.unwrap();
    let (batches, _) = drain(&mut src, 100).await;
    let mut pairs = Vec::new();
    for (rows, _) in &batches {
        let id = rows
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let region = rows.column_by_name("region").unwrap().as_string::<i32>();
        for i in 0..rows.num_rows() {
            pairs.push((id.value(i), region.value(i).to_string()));
        }
    }
    assert_eq!(pairs.len(), 20);
    assert!(
        pairs
            .iter()
            .all(|(id, region)| region == if id % 2 == 0 { "eu" } else { "us" })
    );
    // Without the key there is no region column: the sink left it out of the files.
    let mut src = source(&format!("path = {:?}", dir.path().to_str().unwrap()));
    src.open(None).await.unwrap();
    let (batches, _) = drain(&mut src, 100).await;
    assert!(batches[0].0.column_by_name("region").is_none());
}

#[tokio::test]
async fn watch_mode_picks_up_new_files() {
    // Proves watch mode answers Idle at the end and reads files committed later, once.
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path(), "", 10, 10).await;
    let pattern = dir.path().join("*.parquet");
    let mut src = source(&format!(
        "path = {:?}\nmode = \"watch\"",
        pattern.to_str().unwrap()
    ));
    src.open(None).await.unwrap();
    let (batches, ended) = drain(&mut src, 100).await;
    assert_eq!((ids(&batches).len(), ended), (10, "idle"));
    // A second sink run continues the sequence: its files sort after the first's.
    write_lake(dir.path(), "", 5, 5).await;
    let (batches, ended) = drain(&mut src, 100).await;
    assert_eq!((ids(&batches), ended), ((0..5).collect::<Vec<_>>(), "idle"));
    assert!(batches.iter().all(|(r, _)| r.column(0).null_count() == 0));
}
