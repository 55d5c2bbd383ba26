//! CSV -> topic -> Parquet: a `file` source (csv, columns declared) writing a topic (in
//! `--value-format`) and a `parquet` sink reading it, in one pipeline run with `once`, against DuckDB converting
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
//! - Direct (no reference to beat, a floor): the same file parsed by the `file` source's
//!   parser (arrow's CSV decoder, 10,000 rows a batch) and written by arrow's `ArrowWriter`
//!   with the `parquet` sink's settings, in one thread, with no topic between them. What
//!   the pipeline takes beyond it is the topic's share: encoding the rows, the log, the
//!   consumer and decoding them again.
//!
//! Every output (each Sluice run's directory, each direct and each DuckDB file) is read
//! back by DuckDB and must hold what the generator wrote.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

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
        let text = pipeline(csv, &out, &args.compression, &args.value_format);
        let seconds = run_pipeline(runtime, &log, "bench-connect-parquet.toml", &text)?;
        log.close().context("closing the log")?;
        scratch.remove_phase_dir(&format!("parquet-log-{run}"))?;
        if !args.json {
            eprintln!("  sluice csv -> parquet run {}: {seconds:.3} s", run + 1);
        }
        sluice.push(seconds);
        outputs.push(out.join("*.parquet"));
    }

    let mut direct = Vec::new();
    let direct_dir = scratch.phase_dir("direct-out")?;
    for run in 0..args.runs {
        let out = direct_dir.join(format!("direct-{run}.parquet"));
        let seconds = run_direct(csv, &out, &args.compression)?;
        if !args.json {
            eprintln!("  direct csv -> parquet run {}: {seconds:.3} s", run + 1);
        }
        direct.push(seconds);
        outputs.push(out);
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
                let runs = args.runs as usize;
                let (side, run) = match i.checked_sub(runs) {
                    None => ("Sluice's", i),
                    Some(direct) => ("the direct conversion's", direct),
                };
                expected.check(&format!("{side} Parquet output of run {}", run + 1), got)?;
            }
            for (i, got) in report.duckdb_outputs.iter().enumerate() {
                expected.check(&format!("DuckDB's Parquet output of run {}", i + 1), got)?;
            }
            json!(true)
        }
        None => json!("skipped: the DuckDB Python package is not installed"),
    };
    scratch.remove_phase_dir("duckdb-out")?;
    scratch.remove_phase_dir("direct-out")?;
    for run in 0..args.runs {
        scratch.remove_phase_dir(&format!("parquet-out-{run}"))?;
    }

    let sluice_s = median(sluice.clone());
    let reference = duckdb.as_ref().filter(|d| !d.seconds.is_empty());
    let ratio = reference.map(|d| median(d.seconds.clone()) / sluice_s);
    Ok(json!({
        "pipeline": format!("file (csv) -> topic ({} values) -> parquet", args.value_format),
        "compression": args.compression,
        "sluice": timing(args.rows, &sluice),
        // The same parser and writer without the topic: the floor the libraries set.
        "direct": timing(args.rows, &direct),
        "direct_seconds_over_sluice_seconds": median(direct.clone()) / sluice_s,
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

/// Converts `csv` to one Parquet file at `out` with the pipeline's own parts and no topic
/// (see the module docs); returns its seconds.
fn run_direct(csv: &Path, out: &Path, compression: &str) -> anyhow::Result<f64> {
    use std::io::Read;

    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use sluice_connectors::file::parse::{CsvOptions, RecordParser, TextFormat};

    /// The `file` source's and the `parquet` sink's defaults.
    const BATCH_ROWS: usize = 10_000;
    const ROW_GROUP_ROWS: usize = 1_000_000;
    const READ_BYTES: usize = 8 << 20;

    let started = Instant::now();
    let schema = sluice_connectors::schema::parse_schema(COLUMNS)
        .map_err(|e| anyhow::anyhow!("the benchmark's columns: {e}"))?;
    let parser = RecordParser::new(TextFormat::Csv, schema.clone(), CsvOptions::default());
    let compression = match compression {
        "zstd" => Compression::ZSTD(ZstdLevel::default()),
        _ => Compression::SNAPPY,
    };
    let properties = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut writer = ArrowWriter::try_new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        schema,
        Some(properties),
    )?;
    let mut input =
        std::fs::File::open(csv).with_context(|| format!("opening {}", csv.display()))?;
    let mut pending: Vec<u8> = Vec::with_capacity(READ_BYTES);
    let mut header = true;
    let mut eof = false;
    while !eof || !pending.is_empty() {
        if !eof {
            let before = pending.len();
            pending.resize(before + READ_BYTES, 0);
            let n = input.read(pending.get_mut(before..).unwrap_or_default())?;
            pending.truncate(before + n);
            eof = n == 0;
        }
        let mut start = 0;
        if header && let Some(i) = pending.iter().position(|&b| b == b'\n') {
            start = i + 1;
            header = false;
        }
        loop {
            let rest = pending.get(start..).unwrap_or_default();
            let ends = parser.record_ends(rest, BATCH_ROWS);
            // At the end of the file, a last record without a newline is whole too.
            let end = if ends.end == 0 && eof {
                rest.len()
            } else {
                ends.end
            };
            if end == 0 || (ends.records < BATCH_ROWS && !eof) {
                break;
            }
            let (rows, rejects) = parser
                .parse(rest.get(..end).unwrap_or_default(), "csv", 0)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !rejects.is_empty() {
                bail!("the direct conversion rejected {} records", rejects.len());
            }
            writer.write(&rows)?;
            start += end;
        }
        pending.drain(..start);
    }
    let file = writer
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(started.elapsed().as_secs_f64())
}

/// The pipeline file of one run.
fn pipeline(csv: &Path, out: &Path, compression: &str, value_format: &str) -> String {
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
value_format = "{value_format}"

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
# A statement past two seconds (a loaded machine) would draw a progress bar on stdout,
# which carries the JSON report.
con.execute("SET enable_progress_bar = false")
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
