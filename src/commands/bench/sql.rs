//! `sluice bench sql`: a scan + group-by over a JSON topic, next to DuckDB running the same
//! query over the same records as a JSON-lines file, and the same query restricted to the
//! last 1% of the topic by `_timestamp` (which the scan finds through the time index).
//!
//! What the clock covers (the method is written up in `docs/benchmarks.md`):
//! - not the preload: the topic is filled once by appending pre-encoded batches straight
//!   to the log, and the same records are written to a JSON-lines file, both fsynced;
//! - Sluice: `SqlEngine::execute` of the query, planning included, every row collected;
//! - DuckDB (Python package, run as a child `python3`): `execute(...).fetchall()` of the
//!   same query over `read_json` with the columns declared (no schema inference, as the
//!   topic table declares its schema), timed inside the child, so interpreter start-up
//!   and import are not counted;
//! - both use the machine's cores (DataFusion: one scan partition per topic partition and
//!   its default target partitions; DuckDB: its default threads).
//!
//! The two engines' answers are compared (counts exactly, sums to 1e-9 relative) and a
//! mismatch fails the benchmark.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use serde_json::{Value, json};
use sluice_core::record::{ProducerStamp, Record, encode_batch};
use sluice_core::{Compression, Log, NewTopic};
use sluice_sql::SqlEngine;
use sluice_sql::datafusion::arrow::array::{Array, AsArray};
use sluice_sql::datafusion::arrow::datatypes::{Float64Type, Int64Type};

use super::scratch::{Scratch, median};

/// Arguments of `sluice bench sql`.
#[derive(Debug, Args)]
pub struct SqlBenchArgs {
    /// Records in the topic (and lines in the JSON file).
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub records: u64,

    /// Partitions of the topic (records are spread round robin).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=256))]
    pub partitions: i32,

    /// Times each query runs; the figures reported are medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// The reference to run the same query: `duckdb` (the Python package, through
    /// `python3`; `pip install duckdb`) or `none`.
    #[arg(long, default_value = "duckdb", value_parser = ["duckdb", "none"])]
    pub reference: String,

    /// Directory for the log and the JSON file. Must be empty or absent; deleted
    /// afterwards. Default: a fresh directory under the system temp directory.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,

    /// Keep the data directory (the log and the JSON-lines file) instead of deleting it,
    /// so the same records can be queried again (`sluice sql --data-dir DIR/log`) or
    /// profiled without the preload. Needs `--data-dir`.
    #[arg(long, requires = "data_dir")]
    pub keep_data: bool,

    /// Print one JSON object to stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

const TOPIC: &str = "bench-sql-events";
const PAGES: u64 = 50;
const USERS: u64 = 1000;
const BATCH_RECORDS: u64 = 1000;
/// The issue's targets: no slower than DuckDB; the last 1% at least 50x faster.
const TAIL_SPEEDUP_TARGET: f64 = 50.0;

const CREATE: &str = r#"CREATE TABLE events (id BIGINT, "user" VARCHAR, page VARCHAR, amount DOUBLE, ts BIGINT) WITH (topic = 'bench-sql-events', format = 'json')"#;
const SELECT: &str = "SELECT page, count(*) AS views, sum(amount) AS amount FROM events";
const GROUP: &str = "GROUP BY page ORDER BY page";

/// One answer: page -> (views, amount).
type Answer = Vec<(String, i64, f64)>;

/// Runs the benchmark.
pub fn run(args: &SqlBenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(args.data_dir.as_deref(), "sql")?;
    let log = Log::open(scratch.phase_dir("log")?).context("opening the log")?;
    let json_path = scratch.phase_dir("file")?.join("events.jsonl");
    let started = Instant::now();
    let base_ms = preload(&log, args, &json_path)?;
    if !args.json {
        eprintln!(
            "preloaded {} records (topic and {}) in {:.1} s",
            args.records,
            json_path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    // The last 1% by record timestamp: record i has timestamp base + i ms.
    let cut_ms = base_ms + (args.records * 99 / 100) as i64;
    let full_sql = format!("{SELECT} {GROUP}");
    let tail_sql = format!("{SELECT} WHERE _timestamp >= to_timestamp_millis({cut_ms}) {GROUP}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let (full, tail, full_answer, tail_answer) = runtime.block_on(async {
        let engine = SqlEngine::open(log.clone())?;
        engine.execute(CREATE).await?;
        let (full, full_answer) = time_query(&engine, &full_sql, args.runs).await?;
        let (tail, tail_answer) = time_query(&engine, &tail_sql, args.runs).await?;
        anyhow::Ok((full, tail, full_answer, tail_answer))
    })?;
    check_total(&full_answer, args.records, "the full scan")?;
    check_total(
        &tail_answer,
        args.records - args.records * 99 / 100,
        "the last 1%",
    )?;

    let duckdb = match args.reference.as_str() {
        "duckdb" => {
            let (times, answer, version) = run_duckdb(&json_path, args.runs)?;
            same_answer(&full_answer, &answer)?;
            Some((times, version))
        }
        _ => None,
    };
    log.close().context("closing the log")?;
    if args.keep_data {
        scratch.keep();
        eprintln!(
            "kept {}: the log in log/ (table: {CREATE}), the records in file/events.jsonl",
            scratch.root.display()
        );
    }

    let sluice_s = median(full.clone());
    let tail_s = median(tail.clone());
    let report = json!({
        "records": args.records,
        "partitions": args.partitions,
        "query": full_sql,
        "sluice": {
            "seconds": sluice_s,
            "records_per_s": args.records as f64 / sluice_s,
            "runs": full,
        },
        "duckdb": duckdb.as_ref().map(|(times, version)| {
            let s = median(times.clone());
            json!({"seconds": s, "records_per_s": args.records as f64 / s, "runs": times, "version": version})
        }),
        // Above 1: Sluice is faster.
        "duckdb_seconds_over_sluice_seconds": duckdb.as_ref().map(|(times, _)| median(times.clone()) / sluice_s),
        "tail": {
            "query": tail_sql,
            "fraction": 0.01,
            "seconds": tail_s,
            "runs": tail,
            "speedup_over_full_scan": sluice_s / tail_s,
            "target_speedup": TAIL_SPEEDUP_TARGET,
        },
    });
    if args.json {
        println!("{report}");
    } else {
        print_text(&report);
    }
    Ok(())
}

fn print_text(report: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "{} records in {} partitions; medians of each query's runs",
        report["records"], report["partitions"]
    );
    println!(
        "  sluice  full scan + group by   {:>8.3} s  {:>6.2} M records/s",
        f(&report["sluice"]["seconds"]),
        f(&report["sluice"]["records_per_s"]) / 1e6
    );
    if report["duckdb"].is_object() {
        println!(
            "  duckdb  same query, JSON file  {:>8.3} s  {:>6.2} M records/s  (duckdb/sluice time: {:.2}; target >= 1)",
            f(&report["duckdb"]["seconds"]),
            f(&report["duckdb"]["records_per_s"]) / 1e6,
            f(&report["duckdb_seconds_over_sluice_seconds"])
        );
    }
    println!(
        "  sluice  last 1% by _timestamp  {:>8.3} s  {:.0}x faster than the full scan (target >= {TAIL_SPEEDUP_TARGET})",
        f(&report["tail"]["seconds"]),
        f(&report["tail"]["speedup_over_full_scan"])
    );
}

/// Fills the topic and the JSON-lines file with the same records; returns the first
/// record's timestamp.
fn preload(log: &Log, args: &SqlBenchArgs, json_path: &Path) -> anyhow::Result<i64> {
    use std::io::Write;
    log.ensure_topic(NewTopic::new(TOPIC, args.partitions))?;
    let file = std::fs::File::create(json_path)
        .with_context(|| format!("creating {}", json_path.display()))?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    let base_ms = sluice_core::now_ms() - args.records as i64;
    let partitions = args.partitions as u64;
    let mut batches: Vec<Vec<Record>> = vec![Vec::new(); args.partitions as usize];
    for i in 0..args.records {
        let value = format!(
            r#"{{"id":{i},"user":"user-{}","page":"page-{:02}","amount":{}.{:02},"ts":{}}}"#,
            i * 7919 % USERS,
            i * 31 % PAGES,
            i % 1000,
            i % 100,
            base_ms + i as i64
        );
        file.write_all(value.as_bytes())?;
        file.write_all(b"\n")?;
        let p = (i % partitions) as usize;
        let Some(batch) = batches.get_mut(p) else {
            bail!("partition {p} out of range");
        };
        batch.push(Record {
            offset: batch.len() as i64,
            timestamp: base_ms + i as i64,
            key: None,
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
        });
        if batch.len() as u64 == BATCH_RECORDS {
            append(log, p, std::mem::take(batch))?;
        }
    }
    for (p, batch) in batches.into_iter().enumerate() {
        if !batch.is_empty() {
            append(log, p, batch)?;
        }
    }
    file.flush()?;
    // Both copies on disk before any clock starts: otherwise the JSON file's writeback
    // (about 1 GB at 10 M records) runs during the first engine's runs, Sluice's.
    file.get_ref().sync_all()?;
    log.flush()?;
    Ok(base_ms)
}

fn append(log: &Log, partition: usize, records: Vec<Record>) -> anyhow::Result<()> {
    let mut batch = encode_batch(&records, Compression::None, ProducerStamp::default())?;
    log.append(TOPIC, i32::try_from(partition)?, &mut batch)?;
    Ok(())
}

/// Runs `sql` `runs` times; returns the seconds of each run and the (last) answer.
async fn time_query(
    engine: &SqlEngine,
    sql: &str,
    runs: u32,
) -> anyhow::Result<(Vec<f64>, Answer)> {
    let mut times = Vec::new();
    let mut answer = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = engine.execute(sql).await?;
        times.push(started.elapsed().as_secs_f64());
        answer = rows(out.last().map(|o| o.batches.as_slice()).unwrap_or_default())?;
    }
    Ok((times, answer))
}

/// The (page, views, amount) rows of a result.
fn rows(
    batches: &[sluice_sql::datafusion::arrow::record_batch::RecordBatch],
) -> anyhow::Result<Answer> {
    let mut out = Vec::new();
    for b in batches {
        let cast = |i: usize, to: &sluice_sql::datafusion::arrow::datatypes::DataType| {
            sluice_sql::datafusion::arrow::compute::cast(b.column(i), to)
        };
        use sluice_sql::datafusion::arrow::datatypes::DataType;
        let pages = cast(0, &DataType::Utf8)?;
        let views = cast(1, &DataType::Int64)?;
        let amounts = cast(2, &DataType::Float64)?;
        let pages = pages.as_string::<i32>();
        let views = views.as_primitive::<Int64Type>();
        let amounts = amounts.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            if pages.is_null(r) {
                bail!("a NULL page in the result");
            }
            out.push((pages.value(r).to_string(), views.value(r), amounts.value(r)));
        }
    }
    Ok(out)
}

fn check_total(answer: &Answer, want: u64, what: &str) -> anyhow::Result<()> {
    let total: i64 = answer.iter().map(|(_, n, _)| n).sum();
    if total != want as i64 {
        bail!("{what} counted {total} records, expected {want}");
    }
    Ok(())
}

/// Fails unless the two answers agree: the same pages and counts, sums within 1e-9.
fn same_answer(sluice: &Answer, duckdb: &Answer) -> anyhow::Result<()> {
    if sluice.len() != duckdb.len() {
        bail!(
            "Sluice returned {} groups, DuckDB {}",
            sluice.len(),
            duckdb.len()
        );
    }
    for ((p1, n1, a1), (p2, n2, a2)) in sluice.iter().zip(duckdb) {
        let close = (a1 - a2).abs() <= 1e-9 * a1.abs().max(a2.abs()).max(1.0);
        if p1 != p2 || n1 != n2 || !close {
            bail!("answers differ: Sluice ({p1}, {n1}, {a1}) against DuckDB ({p2}, {n2}, {a2})");
        }
    }
    Ok(())
}

/// The DuckDB side, in a child `python3`: the seconds of each run, the answer and
/// DuckDB's version.
fn run_duckdb(path: &Path, runs: u32) -> anyhow::Result<(Vec<f64>, Answer, String)> {
    const SCRIPT: &str = r#"
import json, sys, time
import duckdb
path, runs = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
# A query past two seconds (a loaded machine) would draw a progress bar on stdout, which
# carries the JSON report.
con.execute("SET enable_progress_bar = false")
columns = "{'id': 'BIGINT', 'user': 'VARCHAR', 'page': 'VARCHAR', 'amount': 'DOUBLE', 'ts': 'BIGINT'}"
source = "read_json('" + path.replace("'", "''") + "', format = 'newline_delimited', columns = " + columns + ")"
query = "SELECT page, count(*) AS views, sum(amount) AS amount FROM " + source + " GROUP BY page ORDER BY page"
times, rows = [], []
for _ in range(runs):
    started = time.perf_counter()
    rows = con.execute(query).fetchall()
    times.append(time.perf_counter() - started)
print(json.dumps({"seconds": times, "rows": [[r[0], r[1], r[2]] for r in rows], "version": duckdb.__version__}))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(path)
        .arg(runs.to_string())
        .output()
        .context("running python3 for the DuckDB reference")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named 'duckdb'") {
            bail!(
                "the DuckDB reference needs its Python package: `python3 -m pip install duckdb` \
                 (or pass --reference none)"
            );
        }
        bail!("the DuckDB reference failed: {stderr}");
    }
    let report: Value = serde_json::from_slice(&out.stdout).context("reading DuckDB's report")?;
    let times = report["seconds"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let answer = report["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r[0].as_str().unwrap_or_default().to_string(),
                        r[1].as_i64().unwrap_or(-1),
                        r[2].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let version = report["version"].as_str().unwrap_or_default().to_string();
    Ok((times, answer, version))
}
