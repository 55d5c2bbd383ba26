//! CSV -> topic -> Parquet: a `file` source (csv, columns declared) writing a topic and a
//! `parquet` sink reading it, in one pipeline run with `once`, against DuckDB converting
//! the same file with the same codec.
//!
//! What the clock covers:
//! - Sluice: from building the pipeline to `Pipeline::run` returning, by when every row
//!   went through the topic (a log transaction per source batch) and sits in a committed
//!   (fsynced, renamed into place) Parquet file. A fresh log and output directory per run.
//! - DuckDB (Python package, child `python3`): `COPY (SELECT * FROM read_csv(file, columns
//!   = {...})) TO 'out.parquet' (FORMAT parquet, COMPRESSION ...)`, timed inside the child
//!   around `execute`, so start-up and import are not counted; default threads. zstd is
//!   asked at level 1, the level the parquet crate's default writes.
//!
//! Every output (each Sluice run's directory, each DuckDB file) is read back by DuckDB and
//! must hold what the generator wrote.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sluice_core::Log;

use super::{COLUMNS, ConnectBenchArgs, Expected, Scratch, median, run_pipeline, timing};

const TOPIC: &str = "bench-connect-events";

/// The scenario's part of the report.
pub(super) fn run(
    args: &ConnectBenchArgs,
    scratch: &Scratch,
    runtime: &tokio::runtime::Runtime,
    csv: &Path,
    expected: &Expected,
) -> anyhow::Result<Value> {
    let mut sluice = Vec::new();
    let mut outputs = Vec::new();
    for run in 0..args.runs {
        let log_dir = scratch.phase_dir(&format!("parquet-log-{run}"))?;
        let out = scratch.phase_dir(&format!("parquet-out-{run}"))?;
        let log = Log::open(&log_dir).context("opening the log")?;
        let text = pipeline(csv, &out, &args.compression);
        let seconds = run_pipeline(runtime, &log, "bench-connect-parquet.toml", &text)?;
        log.close().context("closing the log")?;
        scratch.remove_phase_dir(&format!("parquet-log-{run}"))?;
        if !args.json {
            eprintln!("  sluice csv -> parquet run {}: {seconds:.3} s", run + 1);
        }
        sluice.push(seconds);
        outputs.push(out.join("*.parquet"));
    }

    let duckdb_runs = if args.reference == "duckdb" {
        args.runs
    } else {
        0
    };
    let out_dir = scratch.phase_dir("duckdb-out")?;
    let duckdb = match run_duckdb(csv, &out_dir, duckdb_runs, &args.compression, &outputs) {
        Ok(report) => Some(report),
        Err(e) if duckdb_runs == 0 && e.to_string().contains("No module named 'duckdb'") => None,
        Err(e) => return Err(e),
    };
    let checked = match &duckdb {
        Some(report) => {
            for (i, got) in report.sluice_outputs.iter().enumerate() {
                expected.check(&format!("Sluice's Parquet output of run {}", i + 1), got)?;
            }
            for (i, got) in report.duckdb_outputs.iter().enumerate() {
                expected.check(&format!("DuckDB's Parquet output of run {}", i + 1), got)?;
            }
            json!(true)
        }
        None => json!("skipped: the DuckDB Python package is not installed"),
    };
    scratch.remove_phase_dir("duckdb-out")?;
    for run in 0..args.runs {
        scratch.remove_phase_dir(&format!("parquet-out-{run}"))?;
    }

    let sluice_s = median(sluice.clone());
    let reference = duckdb.as_ref().filter(|d| !d.seconds.is_empty());
    let ratio = reference.map(|d| median(d.seconds.clone()) / sluice_s);
    Ok(json!({
        "pipeline": "file (csv) -> topic (json values) -> parquet",
        "compression": args.compression,
        "sluice": timing(args.rows, &sluice),
        "duckdb": reference.map(|d| {
            let mut t = timing(args.rows, &d.seconds);
            t["version"] = json!(d.version);
            t
        }),
        // Above 1: Sluice is faster.
        "duckdb_seconds_over_sluice_seconds": ratio,
        "target": "duckdb_seconds_over_sluice_seconds >= 1",
        "target_met": ratio.map(|r| r >= 1.0),
        "outputs_checked": checked,
        "sluice_parquet_bytes": duckdb.as_ref().map(|d| d.sluice_bytes),
        "duckdb_parquet_bytes": reference.map(|d| d.duckdb_bytes),
    }))
}

/// The pipeline file of one run.
fn pipeline(csv: &Path, out: &Path, compression: &str) -> String {
    let s = |p: &Path| super::toml_string(&p.display().to_string());
    format!(
        r#"[pipeline]
name = "bench-connect-parquet"

[[source]]
name = "csv"
type = "file"
path = {csv}
format = "csv"
columns = "{COLUMNS}"
topic = "{TOPIC}"

[[sink]]
name = "lake"
type = "parquet"
topics = "{TOPIC}"
path = {out}
compression = "{compression}"
"#,
        csv = s(csv),
        out = s(out),
    )
}

/// What the DuckDB child reports.
struct DuckdbReport {
    /// Seconds of each conversion (empty with `--reference none`).
    seconds: Vec<f64>,
    version: String,
    /// The check query's answer over each Sluice output, then each DuckDB output.
    sluice_outputs: Vec<Value>,
    duckdb_outputs: Vec<Value>,
    /// Bytes of the first output of each side.
    sluice_bytes: u64,
    duckdb_bytes: u64,
}

/// Runs DuckDB's conversion `runs` times into `out_dir`, then checks every output (its own
/// and `sluice`'s globs).
fn run_duckdb(
    csv: &Path,
    out_dir: &Path,
    runs: u32,
    compression: &str,
    sluice: &[std::path::PathBuf],
) -> anyhow::Result<DuckdbReport> {
    const SCRIPT: &str = r#"
import glob, json, os, sys, time
import duckdb
csv, out_dir, runs, compression = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sluice = json.loads(sys.argv[5])
q = lambda s: "'" + s.replace("'", "''") + "'"
columns = "{'id': 'BIGINT', 'user': 'VARCHAR', 'page': 'VARCHAR', 'amount': 'DOUBLE', 'ts': 'TIMESTAMP'}"
options = "FORMAT parquet, COMPRESSION " + compression + (", COMPRESSION_LEVEL 1" if compression == "zstd" else "")
con = duckdb.connect()
times, outputs = [], []
for r in range(runs):
    out = os.path.join(out_dir, "duckdb-%d.parquet" % r)
    started = time.perf_counter()
    con.execute("COPY (SELECT * FROM read_csv(" + q(csv) + ", header = true, columns = " + columns + ")) TO " + q(out) + " (" + options + ")")
    times.append(time.perf_counter() - started)
    outputs.append(out)
def check(path):
    row = con.execute("SELECT count(*), count(DISTINCT id), sum(amount), epoch_ms(min(ts)), epoch_ms(max(ts)) FROM read_parquet(" + q(path) + ")").fetchone()
    return {"rows": row[0], "distinct_ids": row[1], "sum_amount": row[2], "ts_min_ms": row[3], "ts_max_ms": row[4]}
size = lambda pattern: sum(os.path.getsize(f) for f in glob.glob(pattern))
print(json.dumps({
    "seconds": times,
    "version": duckdb.__version__,
    "sluice": [check(p) for p in sluice],
    "duckdb": [check(p) for p in outputs],
    "sluice_bytes": size(sluice[0]) if sluice else 0,
    "duckdb_bytes": size(outputs[0]) if outputs else 0,
}))
"#;
    let globs: Vec<String> = sluice.iter().map(|p| p.display().to_string()).collect();
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(csv)
        .arg(out_dir)
        .arg(runs.to_string())
        .arg(compression)
        .arg(serde_json::to_string(&globs)?)
        .output()
        .context("running python3 for the DuckDB reference")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named 'duckdb'") && runs > 0 {
            bail!(
                "the DuckDB reference needs its Python package: `python3 -m pip install duckdb` \
                 (or pass --reference none)"
            );
        }
        bail!("the DuckDB reference failed: {stderr}");
    }
    let report: Value = serde_json::from_slice(&out.stdout).context("reading DuckDB's report")?;
    let list = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    Ok(DuckdbReport {
        seconds: list("seconds").iter().filter_map(Value::as_f64).collect(),
        version: report["version"].as_str().unwrap_or_default().to_string(),
        sluice_outputs: list("sluice"),
        duckdb_outputs: list("duckdb"),
        sluice_bytes: report["sluice_bytes"].as_u64().unwrap_or(0),
        duckdb_bytes: report["duckdb_bytes"].as_u64().unwrap_or(0),
    })
}
