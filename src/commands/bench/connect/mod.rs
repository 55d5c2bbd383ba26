//! `sluice bench connect`: connector pipelines through the real runtime
//! (`sluice_connectors::runtime::Pipeline`), each next to the tool that sets the physical
//! limit for the same job on the same rows, in the same run.
//!
//! Two scenarios (the method is written up in `docs/benchmarks.md`, "Connectors"):
//! - `parquet.rs`: a CSV file -> topic -> Parquet files pipeline, against DuckDB's
//!   `COPY (SELECT * FROM read_csv(...)) TO '...' (FORMAT parquet)` with the same codec;
//! - `postgres.rs`: a topic (preloaded, untimed) -> PostgreSQL sink pipeline (binary COPY,
//!   `exactly_once`), against psql's `\copy ... FROM 'file' CSV` of the same rows into an
//!   identical fresh table.
//!
//! Every output is checked (row count, distinct ids, sum of `amount`, the timestamps'
//! range) against what the generator wrote; a mismatch fails the benchmark, so a fast wrong
//! answer is never reported.
//!
//! This file holds the arguments, the rows (one deterministic CSV file that both scenarios
//! and both sides read), running a pipeline and the report.

mod parquet;
mod postgres;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use sluice_connectors::PipelineFile;
use sluice_connectors::runtime::{Pipeline, RunOptions};
use sluice_core::Log;

use super::scratch::{Scratch, median};

/// Arguments of `sluice bench connect`.
#[derive(Debug, Args)]
pub struct ConnectBenchArgs {
    /// Rows in the CSV file (both scenarios, both sides). At most 80 M: the timestamps
    /// are one millisecond apart within one day.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..=ROWS_MAX))]
    pub rows: u64,

    /// Times each side of each scenario runs; the figures reported are medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// The reference for CSV -> Parquet: `duckdb` (the Python package, through `python3`;
    /// `pip install duckdb`) or `none`. The outputs are still checked with DuckDB when it
    /// is installed.
    #[arg(long, default_value = "duckdb", value_parser = ["duckdb", "none"])]
    pub reference: String,

    /// How rows are encoded in the topic, in both scenarios (the sources' and the sinks'
    /// `value_format`): `avro`, the binary format for moving many rows, or `json`, the
    /// pipelines' default.
    #[arg(long, default_value = "avro", value_parser = ["avro", "json", "csv"])]
    pub value_format: String,

    /// The Parquet codec, for Sluice's sink and DuckDB alike.
    #[arg(long, default_value = "snappy", value_parser = ["snappy", "zstd"])]
    pub compression: String,

    /// The PostgreSQL database for topic -> PostgreSQL (tables `sluice_bench_*` are created
    /// and dropped). If it does not answer, that scenario is skipped, unless
    /// `SLUICE_REQUIRE_SERVICES=1`.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,

    /// Which scenarios to run.
    #[arg(long, default_value = "all", value_parser = ["all", "parquet", "postgres"])]
    pub only: String,

    /// Directory for the CSV file, the logs and the Parquet files. Must be empty or absent;
    /// deleted afterwards. Default: a fresh directory under the system temp directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Print one JSON object to stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// 2024-03-01 00:00:00 UTC in epoch milliseconds: row 0's timestamp.
const BASE_MS: i64 = 1_709_251_200_000;
/// Rows at most: timestamps are `2024-03-01 00:00:00` plus one millisecond per row.
const ROWS_MAX: u64 = 80_000_000;
const USERS: u64 = 1000;
const PAGES: u64 = 50;
/// The columns, as Sluice's pipeline files and DuckDB's `read_csv` declare them.
const COLUMNS: &str = "id BIGINT, user VARCHAR, page VARCHAR, amount DOUBLE, ts TIMESTAMP";

/// What the generator wrote: every output must hold exactly this.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Expected {
    rows: u64,
    /// Sum of `amount` in hundredths (exact; outputs are compared to 1e-9 relative).
    amount_cents: u128,
    /// The timestamps' range, in epoch milliseconds (read as UTC).
    ts_min_ms: i64,
    ts_max_ms: i64,
}

impl Expected {
    fn json(&self) -> Value {
        json!({
            "rows": self.rows,
            "distinct_ids": self.rows,
            "sum_amount": self.amount_cents as f64 / 100.0,
            "ts_min_ms": self.ts_min_ms,
            "ts_max_ms": self.ts_max_ms,
        })
    }

    /// Fails unless an output's (rows, distinct ids, sum of amount, min ts, max ts) are
    /// what was written; `what` names the output. `got` holds `rows`, `distinct_ids`,
    /// `sum_amount`, `ts_min_ms` and `ts_max_ms`.
    fn check(&self, what: &str, got: &Value) -> anyhow::Result<()> {
        let want_sum = self.amount_cents as f64 / 100.0;
        let sum = got["sum_amount"].as_f64().unwrap_or(f64::NAN);
        let close = (sum - want_sum).abs() <= 1e-9 * want_sum.abs().max(1.0);
        let same = got["rows"].as_u64() == Some(self.rows)
            && got["distinct_ids"].as_u64() == Some(self.rows)
            && close
            && got["ts_min_ms"].as_i64() == Some(self.ts_min_ms)
            && got["ts_max_ms"].as_i64() == Some(self.ts_max_ms);
        if !same {
            bail!("{what} holds {got}, but {} was written", self.json());
        }
        Ok(())
    }
}

/// The row `i`: `i,user-<i·7919 mod 1000>,page-<i·31 mod 50>,<i mod 1000>.<i mod 100>,
/// 2024-03-01 <i ms>`.
fn write_row(out: &mut Vec<u8>, i: u64) {
    let ms = i % 1000;
    let s = i / 1000;
    let _ = writeln!(
        out,
        "{i},user-{},page-{:02},{}.{:02},2024-03-01 {:02}:{:02}:{:02}.{ms:03}",
        i * 7919 % USERS,
        i * 31 % PAGES,
        i % 1000,
        i % 100,
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// Writes the CSV file (with a header) and returns what it holds.
fn write_csv(path: &Path, rows: u64) -> anyhow::Result<Expected> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    file.write_all(b"id,user,page,amount,ts\n")?;
    let mut line = Vec::with_capacity(128);
    let mut amount_cents: u128 = 0;
    for i in 0..rows {
        line.clear();
        write_row(&mut line, i);
        file.write_all(&line)?;
        amount_cents += u128::from(i % 1000 * 100 + i % 100);
    }
    file.flush()?;
    Ok(Expected {
        rows,
        amount_cents,
        ts_min_ms: BASE_MS,
        ts_max_ms: BASE_MS + rows as i64 - 1,
    })
}

/// Runs `text` (a pipeline file) on `log` until it is done (`once`); returns its seconds,
/// from building the pipeline to `run` returning.
fn run_pipeline(
    runtime: &tokio::runtime::Runtime,
    log: &Log,
    origin: &str,
    text: &str,
) -> anyhow::Result<f64> {
    let file = PipelineFile::parse(origin, text, &|_| None)
        .map_err(|e| anyhow::anyhow!("the benchmark's pipeline: {e}"))?;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let pipeline = Pipeline::new(file, log.clone())
        .map_err(|e| anyhow::anyhow!("the benchmark's pipeline: {e}"))?;
    runtime
        .block_on(pipeline.run(RunOptions { once: true }, stop))
        .map_err(|e| anyhow::anyhow!("pipeline {origin} failed: {e}"))?;
    Ok(started.elapsed().as_secs_f64())
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// Median and rows/s of a list of run times.
fn timing(rows: u64, runs: &[f64]) -> Value {
    let s = median(runs.to_vec());
    json!({"seconds": s, "rows_per_s": rows as f64 / s, "runs": runs})
}

/// Runs the benchmark.
pub fn run(args: &ConnectBenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(args.data_dir.as_deref(), "connect")?;
    let csv = scratch.phase_dir("csv")?.join("events.csv");
    let started = Instant::now();
    let expected = write_csv(&csv, args.rows)?;
    let csv_bytes = std::fs::metadata(&csv).map_or(0, |m| m.len());
    if !args.json {
        eprintln!(
            "wrote {} rows ({:.1} MB) to {} in {:.1} s",
            args.rows,
            csv_bytes as f64 / 1e6,
            csv.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the pipeline runtime")?;
    let parquet = match args.only.as_str() {
        "all" | "parquet" => parquet::run(args, &scratch, &runtime, &csv, &expected)?,
        _ => Value::Null,
    };
    let postgres = match args.only.as_str() {
        "all" | "postgres" => postgres::run(args, &scratch, &runtime, &csv, &expected)?,
        _ => Value::Null,
    };
    let report = json!({
        "rows": args.rows,
        "csv_bytes": csv_bytes,
        "columns": COLUMNS,
        "value_format": args.value_format,
        "runs": args.runs,
        "expected": expected.json(),
        "parquet": parquet,
        "postgres": postgres,
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
        "{} rows ({:.1} MB of CSV, {} values in the topic); medians of {} runs",
        report["rows"],
        f(&report["csv_bytes"]) / 1e6,
        report["value_format"].as_str().unwrap_or_default(),
        report["runs"]
    );
    let p = &report["parquet"];
    if p.is_object() {
        println!(
            "  CSV -> topic -> Parquet ({})",
            p["compression"].as_str().unwrap_or_default()
        );
        println!(
            "    sluice pipeline           {:>8.3} s  {:>6.2} M rows/s",
            f(&p["sluice"]["seconds"]),
            f(&p["sluice"]["rows_per_s"]) / 1e6
        );
        println!(
            "    direct, no topic (floor)  {:>8.3} s  {:>6.2} M rows/s  (direct/sluice time: {:.2})",
            f(&p["direct"]["seconds"]),
            f(&p["direct"]["rows_per_s"]) / 1e6,
            f(&p["direct_seconds_over_sluice_seconds"])
        );
        if p["duckdb"].is_object() {
            println!(
                "    duckdb COPY TO parquet    {:>8.3} s  {:>6.2} M rows/s  (duckdb/sluice time: {:.2}; target >= 1: {})",
                f(&p["duckdb"]["seconds"]),
                f(&p["duckdb"]["rows_per_s"]) / 1e6,
                f(&p["duckdb_seconds_over_sluice_seconds"]),
                verdict(&p["target_met"])
            );
        }
    }
    let q = &report["postgres"];
    if let Some(reason) = q["skipped"].as_str() {
        println!("  topic -> PostgreSQL: skipped ({reason})");
    } else if q.is_object() {
        println!("  topic -> PostgreSQL (insert, exactly_once)");
        println!(
            "    sluice sink (binary COPY) {:>8.3} s  {:>6.2} M rows/s",
            f(&q["sluice"]["seconds"]),
            f(&q["sluice"]["rows_per_s"]) / 1e6
        );
        println!(
            "    psql \\copy CSV            {:>8.3} s  {:>6.2} M rows/s  (sluice/copy rate: {:.2}; target >= {}: {})",
            f(&q["psql_copy"]["seconds"]),
            f(&q["psql_copy"]["rows_per_s"]) / 1e6,
            f(&q["sluice_rate_over_copy_rate"]),
            f(&q["target_ratio"]),
            verdict(&q["target_met"])
        );
    }
}

fn verdict(met: &Value) -> &'static str {
    match met.as_bool() {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "n/a",
    }
}

/// Whether a missing service must fail the benchmark (`SLUICE_REQUIRE_SERVICES=1`).
fn services_required() -> bool {
    std::env::var("SLUICE_REQUIRE_SERVICES").as_deref() == Ok("1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_timestamps_count_milliseconds() {
        // Guards the generator both sides read: row 3_723_004 is 01:02:03.004.
        let mut row = Vec::new();
        write_row(&mut row, 3_723_004);
        assert_eq!(
            String::from_utf8(row).unwrap_or_default(),
            "3723004,user-676,page-24,4.04,2024-03-01 01:02:03.004\n"
        );
    }
}
