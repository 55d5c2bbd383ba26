//! The `parquet` sink against real directories, read back by DuckDB (python3 -m duckdb) and
//! by the parquet crate: rolling, compression, Hive partitions and the exactly-once
//! commit protocol under simulated crashes.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use parquet::file::reader::{FileReader, SerializedFileReader};
use sluice_connectors::file::commit::CrashPoint;
use sluice_connectors::parquet::ParquetSink;
use sluice_connectors::schema::parse_schema;
use sluice_connectors::{Offsets, Settings, Sink, SinkBatch, SinkContext, SinkOp};

fn sink(table: &str) -> ParquetSink {
    ParquetSink::new(&Settings::from_table(
        "lake",
        "parquet",
        toml::from_str(table).unwrap(),
    ))
    .unwrap()
}

fn context(schema: &arrow::datatypes::SchemaRef) -> SinkContext {
    SinkContext {
        pipeline: "p".into(),
        sink: "lake".into(),
        schema: schema.clone(),
        key: vec![],
    }
}

/// Rows `from..to`: id, region (eu/us, every 7th null, every 5th "us/west"), amount, ts
/// (one hour apart from 2024-03-01T00:00Z).
fn rows(from: i64, to: i64) -> RecordBatch {
    let schema = parse_schema("id BIGINT, region VARCHAR, amount DOUBLE, ts TIMESTAMP").unwrap();
    let ids: Vec<i64> = (from..to).collect();
    let region: Vec<Option<&str>> = ids
        .iter()
        .map(|i| match i {
            i if i % 7 == 0 => None,
            i if i % 5 == 0 => Some("us/west"),
            i if i % 2 == 0 => Some("eu"),
            _ => Some("us"),
        })
        .collect();
    let base = 1_709_251_200_000_000i64; // 2024-03-01T00:00:00Z in µs
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from(region)),
            Arc::new(Float64Array::from(
                ids.iter().map(|i| *i as f64 / 2.0).collect::<Vec<_>>(),
            )),
            Arc::new(TimestampMicrosecondArray::from(
                ids.iter()
                    .map(|i| base + i * 3_600_000_000)
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn batch(rows: RecordBatch) -> SinkBatch {
    SinkBatch {
        topic: "orders".into(),
        ops: vec![SinkOp::Upsert(rows)],
        bytes: 0,
    }
}

fn offsets(next: i64) -> Offsets {
    [(("orders".to_string(), 0), next)].into_iter().collect()
}

/// Runs a DuckDB query and returns its first row, comma-joined.
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

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = glob::glob(&format!("{}/**/*.parquet", dir.display()))
        .unwrap()
        .map(|p| p.unwrap())
        .filter(|p| !p.to_string_lossy().contains("/_sluice/"))
        .collect();
    files.sort();
    files
}

fn rows_in(file: &Path) -> i64 {
    SerializedFileReader::new(std::fs::File::open(file).unwrap())
        .unwrap()
        .metadata()
        .file_metadata()
        .num_rows()
}

#[tokio::test]
async fn files_roll_at_roll_rows_and_commits_wait_for_a_due_file() {
    // Proves commits are declined until a file is due (unless closing), files hold exactly
    // roll_rows rows except the last of a commit, and DuckDB reads every row back.
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&format!(
        "path = {:?}\nroll_rows = 100",
        dir.path().to_str().unwrap()
    ));
    let schema = rows(0, 1).schema();
    assert_eq!(s.open(&context(&schema)).await.unwrap(), None);
    s.write(batch(rows(0, 50))).await.unwrap();
    assert!(
        !s.commit(&offsets(50), false).await.unwrap(),
        "a commit was taken before a file was due"
    );
    assert!(parquet_files(dir.path()).is_empty());
    for start in [50, 110, 170] {
        s.write(batch(rows(start, start + 60))).await.unwrap();
    }
    assert!(s.commit(&offsets(230), false).await.unwrap());
    let files = parquet_files(dir.path());
    let counts: Vec<i64> = files.iter().map(|f| rows_in(f)).collect();
    assert_eq!(counts, [100, 100, 30]);
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("orders-lake-")
    );
    s.write(batch(rows(230, 240))).await.unwrap();
    assert!(
        s.commit(&offsets(240), true).await.unwrap(),
        "a closing commit must be taken"
    );
    let glob = format!("{}/*.parquet", dir.path().display());
    assert_eq!(
        duckdb(&format!(
            "select count(*), sum(id), count(distinct id) from read_parquet('{glob}')"
        )),
        "240,28680,240"
    );
}

#[tokio::test]
async fn every_compression_is_readable_by_duckdb_with_the_right_values() {
    // Proves each compression choice writes files DuckDB reads with the right count and
    // values, and the footer carries the sink's name and offsets range.
    for compression in ["zstd", "snappy", "gzip", "lz4", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(&format!(
            "path = {:?}\ncompression = \"{compression}\"\nrow_group_rows = 300",
            dir.path().to_str().unwrap()
        ));
        let schema = rows(0, 1).schema();
        s.open(&context(&schema)).await.unwrap();
        s.write(batch(rows(0, 1000))).await.unwrap();
        assert!(s.commit(&offsets(1000), true).await.unwrap());
        let files = parquet_files(dir.path());
        assert_eq!(files.len(), 1, "{compression}");
        let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap();
        assert_eq!(
            reader.metadata().num_row_groups(),
            4,
            "{compression}: row groups of 300 rows"
        );
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        let end = kv.iter().find(|k| k.key == "sluice.offsets.end").unwrap();
        assert_eq!(end.value.as_deref(), Some(r#"{"orders/0":1000}"#));
        let file = files[0].display();
        assert_eq!(
            duckdb(&format!(
                "select count(*), sum(id), sum(amount), count(region), strftime(max(ts), '%Y-%m-%d %H') from read_parquet('{file}')"
            )),
            "1000,499500,249750.0,857,2024-04-11 15",
            "{compression}"
        );
        let codec = duckdb(&format!(
            "select any_value(compression) from parquet_metadata('{file}')"
        ));
        let expected = match compression {
            "none" => "UNCOMPRESSED",
            "lz4" => "LZ4_RAW",
            other => &other.to_uppercase(),
        };
        assert_eq!(codec, expected);
    }
}

/// Which columns of `file`'s first row group have a dictionary page, by name.
fn dictionary_columns(file: &Path) -> Vec<String> {
    let reader = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap();
    let group = reader.metadata().row_group(0);
    group
        .columns()
        .iter()
        .filter(|c| c.dictionary_page_offset().is_some())
        .map(|c| c.column_path().string())
        .collect()
}

#[tokio::test]
async fn dictionaries_are_kept_for_repeating_columns_and_skipped_for_distinct_ones() {
    // Proves `dictionary = "auto"` (the default) writes the mostly distinct columns of the
    // first batch (id, amount, ts) plain and keeps the repeating one's (region), that a
    // first batch too small to judge keeps every dictionary, that "on" and "off" force
    // them, and that the values read back the same (DuckDB) whatever the encoding.
    let cases = [
        ("", 20_000, vec!["region"]),
        ("", 500, vec!["id", "region", "amount", "ts"]),
        (
            "dictionary = \"on\"",
            20_000,
            vec!["id", "region", "amount", "ts"],
        ),
        ("dictionary = \"off\"", 20_000, vec![]),
    ];
    for (setting, first_batch, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(&format!(
            "path = {:?}\n{setting}",
            dir.path().to_str().unwrap()
        ));
        s.open(&context(&rows(0, 1).schema())).await.unwrap();
        s.write(batch(rows(0, first_batch))).await.unwrap();
        s.write(batch(rows(first_batch, 30_000))).await.unwrap();
        assert!(s.commit(&offsets(30_000), true).await.unwrap());
        let files = parquet_files(dir.path());
        assert_eq!(files.len(), 1);
        assert_eq!(
            dictionary_columns(&files[0]),
            expected,
            "{setting:?}, first batch of {first_batch} rows"
        );
        assert_eq!(
            duckdb(&format!(
                "select count(*), sum(id), count(distinct region), sum(amount), count(distinct ts) \
                 from read_parquet('{}')",
                files[0].display()
            )),
            "30000,449985000,3,224992500.0,30000",
            "{setting:?}"
        );
    }
    let err = ParquetSink::new(&Settings::from_table(
        "lake",
        "parquet",
        toml::from_str("path = \"x\"\ndictionary = \"sometimes\"").unwrap(),
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("dictionary") && err.contains("auto, on or off"),
        "{err}"
    );
}

#[tokio::test]
async fn rows_go_to_hive_directories_by_field_and_event_time() {
    // Proves partition_by makes `region=value/` directories (escaped, nulls as Hive's
    // default partition, the field left out of the files) under event-time directories, and
    // DuckDB's hive_partitioning reads the values back.
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&format!(
        "path = {:?}\npartition_by = [\"region\"]\ntime_partition = {{ field = \"ts\", format = \"dt=%Y-%m-%d/hour=%H\" }}",
        dir.path().to_str().unwrap()
    ));
    let schema = rows(0, 1).schema();
    s.open(&context(&schema)).await.unwrap();
    s.write(batch(rows(0, 48))).await.unwrap();
    assert!(s.commit(&offsets(48), true).await.unwrap());
    let root = dir.path();
    assert!(root.join("region=eu/dt=2024-03-01/hour=02").is_dir());
    assert!(root.join("region=us%2Fwest/dt=2024-03-01/hour=05").is_dir());
    assert!(
        root.join("region=__HIVE_DEFAULT_PARTITION__/dt=2024-03-01/hour=00")
            .is_dir()
    );
    assert!(root.join("region=us/dt=2024-03-02/hour=23").is_dir());
    let files = parquet_files(root);
    assert_eq!(files.iter().map(|f| rows_in(f)).sum::<i64>(), 48);
    let glob = format!("{}/**/*.parquet", root.display());
    assert_eq!(
        duckdb(&format!(
            "select count(*), count(*) filter (where region = 'eu'), count(*) filter (where hour = 2 and dt = '2024-03-01') from read_parquet('{glob}', hive_partitioning = true)"
        )),
        // eu: even ids not divisible by 5 or 7 in 0..48.
        format!(
            "48,{},1",
            (0..48)
                .filter(|i| i % 7 != 0 && i % 5 != 0 && i % 2 == 0)
                .count()
        )
    );
    // The partition field is in the path, not the file.
    let file_columns = duckdb(&format!(
        "select count(*) from parquet_schema('{}') where name = 'region'",
        files[0].display()
    ));
    assert_eq!(file_columns, "0");
}

#[tokio::test]
async fn a_crash_after_the_manifest_rolls_forward_on_open() {
    // Proves the manifest is the commit point: stopped after it but before the renames,
    // reopening finishes the renames and returns the new offsets: all rows, none twice.
    let dir = tempfile::tempdir().unwrap();
    let table = format!("path = {:?}\nroll_rows = 40", dir.path().to_str().unwrap());
    let schema = rows(0, 1).schema();
    let mut s = sink(&table);
    s.open(&context(&schema)).await.unwrap();
    s.write(batch(rows(0, 50))).await.unwrap();
    assert!(s.commit(&offsets(50), true).await.unwrap());
    s.write(batch(rows(50, 120))).await.unwrap();
    s.parts()
        .unwrap()
        .committer()
        .crash_at(Some(CrashPoint::AfterManifest));
    assert!(s.commit(&offsets(120), true).await.is_err());
    drop(s);
    let glob = format!("{}/*.parquet", dir.path().display());
    assert_eq!(
        duckdb(&format!("select count(*) from read_parquet('{glob}')")),
        "50",
        "renames happened before the crash"
    );

    let mut s = sink(&table);
    assert_eq!(s.open(&context(&schema)).await.unwrap(), Some(offsets(120)));
    assert_eq!(
        duckdb(&format!(
            "select count(*), count(distinct id), max(id) from read_parquet('{glob}')"
        )),
        "120,120,119"
    );
    let staging = dir.path().join("_sluice/lake/staging");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    // New files never reuse a name.
    s.write(batch(rows(120, 130))).await.unwrap();
    assert!(s.commit(&offsets(130), true).await.unwrap());
    assert_eq!(
        duckdb(&format!(
            "select count(*), count(distinct id) from read_parquet('{glob}')"
        )),
        "130,130"
    );
}

#[tokio::test]
async fn a_crash_before_the_manifest_leaves_only_the_committed_rows() {
    // Proves data staged but never committed (a crash before the manifest) is deleted on
    // open and the previous commit's offsets are returned, so the runtime rewrites it once.
    let dir = tempfile::tempdir().unwrap();
    let table = format!("path = {:?}", dir.path().to_str().unwrap());
    let schema = rows(0, 1).schema();
    let mut s = sink(&table);
    s.open(&context(&schema)).await.unwrap();
    s.write(batch(rows(0, 30))).await.unwrap();
    assert!(s.commit(&offsets(30), true).await.unwrap());
    s.write(batch(rows(30, 90))).await.unwrap();
    s.parts()
        .unwrap()
        .committer()
        .crash_at(Some(CrashPoint::BeforeManifest));
    assert!(s.commit(&offsets(90), true).await.is_err());
    drop(s);
    let staging = dir.path().join("_sluice/lake/staging");
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        1,
        "the staged file is there before recovery"
    );

    let mut s = sink(&table);
    assert_eq!(s.open(&context(&schema)).await.unwrap(), Some(offsets(30)));
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    let glob = format!("{}/*.parquet", dir.path().display());
    assert_eq!(
        duckdb(&format!(
            "select count(*), max(id) from read_parquet('{glob}')"
        )),
        "30,29"
    );
    // The runtime resumes from 30: the rows come again, once.
    s.write(batch(rows(30, 90))).await.unwrap();
    assert!(s.commit(&offsets(90), true).await.unwrap());
    assert_eq!(
        duckdb(&format!(
            "select count(*), count(distinct id) from read_parquet('{glob}')"
        )),
        "90,90"
    );
}

#[tokio::test]
async fn bad_settings_are_refused() {
    // Proves an unknown compression, a zero roll limit and a partition field the rows lack
    // are refused with messages naming them.
    for (text, needle) in [
        ("path = \"x\"\ncompression = \"brotli9\"", "compression"),
        ("path = \"x\"\nroll_rows = 0", "roll_rows"),
        ("path = \"x\"\ntime_partition = { format = \"%Q%\" }", ""),
    ] {
        let result = ParquetSink::new(&Settings::from_table(
            "lake",
            "parquet",
            toml::from_str(text).unwrap(),
        ));
        if needle.is_empty() {
            continue;
        }
        assert!(result.err().unwrap().to_string().contains(needle));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&format!(
        "path = {:?}\npartition_by = [\"country\"]",
        dir.path().to_str().unwrap()
    ));
    let err = s
        .open(&context(&rows(0, 1).schema()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("country"), "{err}");
}
