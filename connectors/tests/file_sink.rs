//! The `file` sink writing real files: each format read back (by DuckDB for CSV and JSON
//! lines), rolling, deletes skipped, and exactly-once recovery.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use sluice_connectors::file::FileSink;
use sluice_connectors::file::commit::CrashPoint;
use sluice_connectors::schema::parse_schema;
use sluice_connectors::{Offsets, Settings, Sink, SinkBatch, SinkContext, SinkOp};

fn rows(from: i64, to: i64) -> RecordBatch {
    let schema = parse_schema("id BIGINT, name VARCHAR").unwrap();
    let ids: Vec<i64> = (from..to).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("n,{i}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

fn sink(table: &str) -> FileSink {
    FileSink::new(&Settings::from_table(
        "out",
        "file",
        toml::from_str(table).unwrap(),
    ))
    .unwrap()
}

fn context(rows: &RecordBatch) -> SinkContext {
    SinkContext {
        pipeline: "p".into(),
        sink: "out".into(),
        schema: rows.schema(),
        key: vec!["id".into()],
    }
}

fn offsets(next: i64) -> Offsets {
    [(("orders".to_string(), 0), next)].into_iter().collect()
}

fn upserts(rows: RecordBatch) -> SinkBatch {
    SinkBatch {
        topic: "orders".into(),
        ops: vec![SinkOp::Upsert(rows)],
        bytes: 0,
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn duckdb(query: &str) -> String {
    let script = format!(
        "import duckdb\nprint(','.join(str(v) for v in duckdb.sql({query:?}).fetchall()[0]))"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn csv_and_jsonl_files_roll_and_read_back_in_duckdb() {
    // Proves CSV (a header per file, quoted commas) and JSON lines files roll at roll_rows,
    // deletes are skipped, and DuckDB reads back every row with its values.
    for (format, ext, reader) in [("csv", "csv", "read_csv"), ("jsonl", "jsonl", "read_json")] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(&format!(
            "path = {:?}\nformat = \"{format}\"\nroll_rows = 40",
            dir.path().to_str().unwrap()
        ));
        assert_eq!(s.open(&context(&rows(0, 1))).await.unwrap(), None);
        let batch = SinkBatch {
            topic: "orders".into(),
            ops: vec![
                SinkOp::Upsert(rows(0, 70)),
                SinkOp::Delete(rows(0, 3).project(&[0]).unwrap()),
                SinkOp::Upsert(rows(70, 100)),
            ],
            bytes: 0,
        };
        s.write(batch).await.unwrap();
        assert!(s.commit(&offsets(103), false).await.unwrap());
        let written = files(dir.path(), ext);
        assert_eq!(written.len(), 3, "{format}");
        assert!(
            written[0]
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("orders-out-")
        );
        let glob = format!("{}/*.{ext}", dir.path().display());
        assert_eq!(
            duckdb(&format!(
                "select count(*), sum(id), min(name), max(name) from {reader}('{glob}')"
            )),
            "100,4950,\"n,0\",\"n,99\"".replace('"', ""),
            "{format}"
        );
    }
}

#[tokio::test]
async fn lines_format_writes_one_column() {
    // Proves `lines` writes the single column's values one per line, and refuses rows with
    // more than one column at open.
    let dir = tempfile::tempdir().unwrap();
    let one = rows(0, 3).project(&[1]).unwrap();
    let mut s = sink(&format!(
        "path = {:?}\nformat = \"lines\"",
        dir.path().to_str().unwrap()
    ));
    s.open(&context(&one)).await.unwrap();
    s.write(upserts(one)).await.unwrap();
    assert!(s.commit(&offsets(3), true).await.unwrap());
    let written = files(dir.path(), "txt");
    assert_eq!(
        std::fs::read_to_string(&written[0]).unwrap(),
        "n,0\nn,1\nn,2\n"
    );

    let mut s = sink(&format!(
        "path = {:?}\nformat = \"lines\"",
        dir.path().to_str().unwrap()
    ));
    assert!(
        s.open(&context(&rows(0, 1)))
            .await
            .unwrap_err()
            .to_string()
            .contains("one column")
    );
}

#[tokio::test]
async fn recovery_keeps_exactly_the_committed_rows() {
    // Proves the file sink's exactly-once: a crash before the manifest drops the staged file
    // and returns the old offsets; a crash after it rolls the rename forward and returns the
    // new ones.
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "path = {:?}\nformat = \"jsonl\"",
        dir.path().to_str().unwrap()
    );
    let mut s = sink(&table);
    s.open(&context(&rows(0, 1))).await.unwrap();
    s.write(upserts(rows(0, 10))).await.unwrap();
    assert!(s.commit(&offsets(10), true).await.unwrap());
    s.write(upserts(rows(10, 20))).await.unwrap();
    s.parts()
        .unwrap()
        .committer()
        .crash_at(Some(CrashPoint::BeforeManifest));
    assert!(s.commit(&offsets(20), true).await.is_err());

    let mut s = sink(&table);
    assert_eq!(
        s.open(&context(&rows(0, 1))).await.unwrap(),
        Some(offsets(10))
    );
    let glob = format!("{}/*.jsonl", dir.path().display());
    assert_eq!(
        duckdb(&format!("select count(*) from read_json('{glob}')")),
        "10"
    );
    s.write(upserts(rows(10, 20))).await.unwrap();
    s.parts()
        .unwrap()
        .committer()
        .crash_at(Some(CrashPoint::AfterManifest));
    assert!(s.commit(&offsets(20), true).await.is_err());

    let mut s = sink(&table);
    assert_eq!(
        s.open(&context(&rows(0, 1))).await.unwrap(),
        Some(offsets(20))
    );
    assert_eq!(
        duckdb(&format!(
            "select count(*), count(distinct id) from read_json('{glob}')"
        )),
        "20,20"
    );
}
