//! Topic -> PostgreSQL: a sink-only pipeline (`postgres` sink, mode insert, create_table,
//! exactly_once) draining a topic preloaded with the rows, against psql's `\copy ... FROM
//! 'file' CSV HEADER` of the same rows into an identical fresh table.
//!
//! What the clock covers:
//! - not the preload: the CSV file goes into a topic once, untimed, by a `file` -> topic
//!   pipeline (values in `--value-format`, and the schema entry, as any Sluice source
//!   leaves them);
//! - Sluice: from building the pipeline to `Pipeline::run` returning (`once`), by when every
//!   row is committed in the table with its offsets: connecting, creating the table,
//!   consuming, decoding, binary COPY and the commits. A fresh table and consumer group per
//!   run;
//! - psql: its own `\timing` of the `\copy` command (psql reading the file, the server's
//!   COPY, the implicit commit), into a table created `LIKE` Sluice's just before (untimed).
//!   The wall time of the psql child, start-up and connection included, is reported too.
//!
//! A `CHECKPOINT` precedes every timed write, so neither side pays for the other's dirty
//! pages. Both tables must hold what the generator wrote.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sluice_core::Log;

use super::{COLUMNS, ConnectBenchArgs, Expected, Scratch, median, run_pipeline, timing};

const TOPIC: &str = "bench-connect-pg";
/// The issue's target: the sink's rows/s at least this share of raw COPY's.
const TARGET_RATIO: f64 = 0.8;

/// The scenario's part of the report.
pub(super) fn run(
    args: &ConnectBenchArgs,
    scratch: &Scratch,
    runtime: &tokio::runtime::Runtime,
    csv: &Path,
    expected: &Expected,
) -> anyhow::Result<Value> {
    let url = &args.postgres_url;
    if let Err(e) = psql(url, &["SELECT 1"]) {
        let reason = format!("{url} does not answer: {e}");
        if super::services_required() {
            bail!("{reason}, and SLUICE_REQUIRE_SERVICES=1 requires it");
        }
        eprintln!("SKIPPING topic -> PostgreSQL: {reason}");
        return Ok(json!({"skipped": reason}));
    }

    let log = Log::open(scratch.phase_dir("postgres-log")?).context("opening the log")?;
    let started = Instant::now();
    run_pipeline(
        runtime,
        &log,
        "bench-connect-preload.toml",
        &preload(csv, &args.value_format),
    )?;
    if !args.json {
        eprintln!(
            "preloaded topic {TOPIC} in {:.1} s (untimed)",
            started.elapsed().as_secs_f64()
        );
    }

    let mut sluice = Vec::new();
    let mut copy = Vec::new();
    let mut copy_wall = Vec::new();
    for run in 0..args.runs {
        let names = Names::new(run);
        let outcome = one_run(args, runtime, &log, csv, expected, &names);
        let cleaned = names.drop_all(url);
        let (s, c, w) = outcome?;
        cleaned?;
        if !args.json {
            eprintln!(
                "  topic -> postgres run {}: sluice {s:.3} s, psql \\copy {c:.3} s",
                run + 1
            );
        }
        sluice.push(s);
        copy.push(c);
        copy_wall.push(w);
    }
    log.close().context("closing the log")?;

    let ratio = median(copy.clone()) / median(sluice.clone());
    let mut copy_timing = timing(args.rows, &copy);
    copy_timing["wall_seconds"] = json!(median(copy_wall.clone()));
    copy_timing["wall_runs"] = json!(copy_wall);
    copy_timing["version"] = json!(psql(url, &["SHOW server_version"]).unwrap_or_default());
    Ok(json!({
        "pipeline": format!(
            "topic ({} values) -> postgres (mode insert, create_table, exactly_once)",
            args.value_format
        ),
        "url": url,
        "skipped": null,
        "sluice": timing(args.rows, &sluice),
        "psql_copy": copy_timing,
        // Sluice's rows/s over COPY's: above 1, Sluice is faster.
        "sluice_rate_over_copy_rate": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
        "outputs_checked": true,
    }))
}

/// The tables and pipeline name of one run (unique to this process and run).
struct Names {
    pipeline: String,
    sluice_table: String,
    copy_table: String,
}

impl Names {
    fn new(run: u32) -> Names {
        let pid = std::process::id();
        Names {
            pipeline: format!("bench-connect-pg-{pid}-{run}"),
            sluice_table: format!("sluice_bench_{pid}_{run}"),
            copy_table: format!("sluice_bench_{pid}_{run}_copy"),
        }
    }

    /// Drops the run's tables and its stored offsets.
    fn drop_all(&self, url: &str) -> anyhow::Result<()> {
        psql(
            url,
            &[&format!(
                "DROP TABLE IF EXISTS {}, {}",
                self.sluice_table, self.copy_table
            )],
        )?;
        // The offsets table exists once a sink ran; the benchmark's rows go with the run.
        let _ = psql(
            url,
            &[&format!(
                "DELETE FROM sluice_connect_offsets WHERE pipeline = '{}'",
                self.pipeline
            )],
        );
        Ok(())
    }
}

/// One run of each side: (Sluice seconds, psql `\timing` seconds, psql wall seconds).
fn one_run(
    args: &ConnectBenchArgs,
    runtime: &tokio::runtime::Runtime,
    log: &Log,
    csv: &Path,
    expected: &Expected,
    names: &Names,
) -> anyhow::Result<(f64, f64, f64)> {
    let url = &args.postgres_url;
    names.drop_all(url)?;
    psql(url, &["CHECKPOINT"])?;
    let sluice = run_pipeline(
        runtime,
        log,
        "bench-connect-postgres.toml",
        &sink_pipeline(names, url),
    )?;
    expected.check(
        &format!("Sluice's table {}", names.sluice_table),
        &table_stats(url, &names.sluice_table)?,
    )?;

    psql(
        url,
        &[&format!(
            "CREATE TABLE {} (LIKE {})",
            names.copy_table, names.sluice_table
        )],
    )?;
    psql(url, &[&format!("DROP TABLE {}", names.sluice_table)])?;
    psql(url, &["CHECKPOINT"])?;
    let path = csv.display().to_string().replace('\'', "''");
    let copy = format!("\\copy {} FROM '{path}' CSV HEADER", names.copy_table);
    let started = Instant::now();
    let out = psql(url, &["\\timing on", &copy])?;
    let wall = started.elapsed().as_secs_f64();
    let timed = out
        .lines()
        .find_map(|l| l.strip_prefix("Time: "))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|ms| ms.parse::<f64>().ok())
        .with_context(|| format!("psql printed no `Time:` for \\copy: {out}"))?;
    expected.check(
        &format!("psql's table {}", names.copy_table),
        &table_stats(url, &names.copy_table)?,
    )?;
    Ok((sluice, timed / 1000.0, wall))
}

/// The file -> topic pipeline that preloads the topic.
fn preload(csv: &Path, value_format: &str) -> String {
    format!(
        r#"[pipeline]
name = "bench-connect-preload"

[[source]]
name = "csv"
type = "file"
path = {csv}
format = "csv"
columns = "{COLUMNS}"
topic = "{TOPIC}"
value_format = "{value_format}"
"#,
        csv = super::toml_string(&csv.display().to_string()),
    )
}

/// The sink-only pipeline of one run.
fn sink_pipeline(names: &Names, url: &str) -> String {
    format!(
        r#"[pipeline]
name = "{pipeline}"

[[sink]]
name = "pg"
type = "postgres"
topics = "{TOPIC}"
url = {url}
table = "{table}"
mode = "insert"
create_table = true
exactly_once = true
"#,
        pipeline = names.pipeline,
        url = super::toml_string(url),
        table = names.sluice_table,
    )
}

/// The check of a table: what [`Expected::check`] reads.
fn table_stats(url: &str, table: &str) -> anyhow::Result<Value> {
    let out = psql(
        url,
        &[&format!(
            "SELECT count(*), count(DISTINCT id), sum(amount), \
             (extract(epoch FROM min(ts)) * 1000)::bigint, \
             (extract(epoch FROM max(ts)) * 1000)::bigint FROM {table}"
        )],
    )?;
    let fields: Vec<&str> = out.trim().split('|').collect();
    let [rows, ids, sum, min, max] = fields.as_slice() else {
        bail!("unexpected answer from {table}: {out}");
    };
    Ok(json!({
        "rows": rows.parse::<u64>().ok(),
        "distinct_ids": ids.parse::<u64>().ok(),
        "sum_amount": sum.parse::<f64>().ok(),
        "ts_min_ms": min.parse::<i64>().ok(),
        "ts_max_ms": max.parse::<i64>().ok(),
    }))
}

/// Runs `commands` in one psql session (unaligned, tuples only, stop on the first error);
/// its stdout.
fn psql(url: &str, commands: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new("psql");
    command.args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url]);
    for c in commands {
        command.args(["-c", c]);
    }
    let out = command
        .output()
        .context("running psql (the PostgreSQL client; apt-get install postgresql-client)")?;
    if !out.status.success() {
        bail!(
            "psql {}: {}",
            commands.join("; "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
