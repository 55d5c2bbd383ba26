//! Runs the sqllogictest files in `tests/slt/` against `SqlEngine` on a fresh data
//! directory each. Guards the SQL behaviour of topic tables (formats, metadata columns,
//! pushdown in EXPLAIN, INSERT, on_error, joins with files) against regressions: each
//! `.slt` block is one statement and its exact expected answer.
//!
//! Besides SQL, a block may hold a harness directive that sets up fixtures with
//! sluice-core's own clients, so records reach the topic exactly as a producer wrote them:
//!
//! ```text
//! statement ok
//! create topic orders 3
//!
//! statement ok
//! produce orders
//! @partition=1 timestamp=1000 key=k1 header:src=web | {"order_id": 1}
//! {"order_id": 2}
//! <null>
//! ```
//!
//! `produce TOPIC` sends each following line as one record value (`<null>`: no value,
//! `<empty>`: an empty one, `<hex:0a0b>`: those bytes),
//! optionally prefixed by `@attributes |` (`timestamp=now-MS`: MS milliseconds ago). Every value of a `__FILES__` token in SQL is
//! replaced by a directory for files the test writes and reads (COPY, external tables).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_core::{NewTopic, ProducerConfig, ProducerRecord};
use sluice_sql::SqlEngine;
use sqllogictest::{DBOutput, DefaultColumnType};

/// One `.slt` file's database: the engine and its fixture directory.
struct SltDb {
    engine: Arc<SqlEngine>,
    files: PathBuf,
}

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

fn err(e: impl std::fmt::Display) -> SltError {
    SltError(e.to_string())
}

impl SltDb {
    fn create_topic(&self, args: &str) -> Result<(), SltError> {
        let mut words = args.split_whitespace();
        let name = words
            .next()
            .ok_or_else(|| err("create topic NAME [PARTITIONS]"))?;
        let partitions = words.next().map_or(Ok(1), str::parse).map_err(err)?;
        self.engine
            .log()
            .expect("an embedded log")
            .create_topic(NewTopic::new(name, partitions))
            .map_err(err)
    }

    fn produce(&self, topic: &str, lines: &[&str]) -> Result<u64, SltError> {
        let producer = self
            .engine
            .log()
            .expect("an embedded log")
            .producer(ProducerConfig::default())
            .map_err(err)?;
        for line in lines {
            let (attributes, value) = match line.strip_prefix('@') {
                Some(rest) => rest
                    .split_once(" | ")
                    .ok_or_else(|| err("@attributes | value"))?,
                None => ("", *line),
            };
            let mut record = ProducerRecord::to(topic.trim());
            match value {
                "<null>" => {}
                "<empty>" => record = record.value(""),
                v if v.starts_with("<hex:") => {
                    let hex = v.trim_start_matches("<hex:").trim_end_matches('>');
                    record = record.value(decode_hex(hex)?);
                }
                v => record = record.value(v.to_string()),
            }
            for attribute in attributes.split_whitespace() {
                let (name, v) = attribute.split_once('=').ok_or_else(|| err(attribute))?;
                record = match name {
                    "partition" => record.partition(v.parse().map_err(err)?),
                    "timestamp" => record.timestamp(match v.strip_prefix("now-") {
                        Some(ago) => sluice_core::now_ms() - ago.parse::<i64>().map_err(err)?,
                        None => v.parse().map_err(err)?,
                    }),
                    "key" => record.key(v.to_string()),
                    h if h.starts_with("header:") => {
                        record.header(h.trim_start_matches("header:"), v.to_string())
                    }
                    other => return Err(err(format!("unknown attribute {other}"))),
                };
            }
            producer.send(record).map_err(err)?;
        }
        producer.flush().map_err(err)?;
        Ok(lines.len() as u64)
    }
}

/// `0a0b` as bytes (spaces allowed between pairs).
fn decode_hex(hex: &str) -> Result<Vec<u8>, SltError> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(err)?;
            u8::from_str_radix(text, 16).map_err(err)
        })
        .collect()
}

#[async_trait]
impl sqllogictest::AsyncDB for SltDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let trimmed = sql.trim();
        if let Some(args) = trimmed.strip_prefix("create topic ") {
            self.create_topic(args)?;
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(rest) = trimmed.strip_prefix("produce ") {
            let mut lines = rest.lines();
            let topic = lines.next().unwrap_or_default();
            let lines: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
            return Ok(DBOutput::StatementComplete(self.produce(topic, &lines)?));
        }
        let files = self.files.display().to_string();
        let sql = sql.replace("__FILES__", &files);
        let outputs = self.engine.execute(&sql).await.map_err(err)?;
        let Some(output) = outputs.into_iter().last() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        if !output.has_rows() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &output.batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            for row in 0..batch.num_rows() {
                // An empty value shows as `(empty)`, as in DataFusion's .slt files, so it
                // cannot be mistaken for a missing column.
                let cells: Vec<String> = formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .map(|c| if c.is_empty() { "(empty)".into() } else { c })
                    .collect();
                // A multi-line cell (an EXPLAIN plan) becomes a row of the other cells and
                // then one row per line, `NN)` numbered and its indentation shown as `-`,
                // as DataFusion's own .slt files show plans.
                match cells.iter().position(|c| c.contains('\n')) {
                    None => rows.push(cells),
                    Some(multi) => {
                        let mut cells = cells;
                        let text = cells.remove(multi);
                        rows.push(cells);
                        for (i, line) in text.lines().enumerate() {
                            let body = line.trim_start();
                            let indent = "-".repeat(line.len() - body.len());
                            rows.push(vec![format!("{:02}){indent}{}", i + 1, body.trim_end())]);
                        }
                    }
                }
            }
        }
        let types = vec![DefaultColumnType::Any; output.schema.fields().len()];
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

async fn run_slt(file: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    let log = sluice_core::Log::open(dir.path().join("data")).expect("open log");
    let engine = Arc::new(SqlEngine::open(log).expect("engine"));
    let mut runner = sqllogictest::Runner::new(move || {
        let db = SltDb {
            engine: Arc::clone(&engine),
            files: files.clone(),
        };
        async move { Ok::<_, SltError>(db) }
    });
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/slt")
        .join(file);
    // SLT_UPDATE=1 rewrites the expected results with what the engine returns: for
    // writing new blocks, never for CI (review the diff).
    if std::env::var_os("SLT_UPDATE").is_some() {
        runner
            .update_test_file(
                &path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .expect("update");
        return;
    }
    if let Err(e) = runner.run_file_async(&path).await {
        panic!("{}: {}", path.display(), e.display(true));
    }
}

macro_rules! slt {
    ($($name:ident => $file:literal,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_slt($file).await;
        }
    )*};
}

slt! {
    json_format => "json.slt",
    metadata_and_pushdown => "metadata.slt",
    csv_and_raw_formats => "formats.slt",
    bad_records_under_on_error => "on_error.slt",
    insert_into_topics => "insert.slt",
    joins_with_files => "files.slt",
    avro_format => "avro.slt",
}
