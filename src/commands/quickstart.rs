//! `sluice quickstart`: the README's first command. Creates a topic in a local data
//! directory, produces sample page views to it, consumes them back, reports, then runs a
//! streaming job on them (page views per page per 1-minute window, the `pageviews`
//! example's job) and prints its results; then declares the topic as a SQL table and
//! queries it; last, runs a small ETL pipeline (the bundled orders CSV into a topic and
//! out to Parquet and SQLite, the `examples/pipelines` format) and says where the output
//! is, how to open the SQL shell and how to connect psql.
//!
//! The sample views spread over [`SPAN_MS`] of event time starting at a minute boundary
//! after every view already in the topic, so a rerun's windows are all new to the job
//! (which resumes where the last run left off); the last [`PAGES`]`.len()` views come
//! [`GRACE_MS`] after the span, one per page, so every task's stream time passes each
//! sample window's end plus grace and the job emits them all without waiting on the
//! wall clock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use sluice_core::{
    ConsumerConfig, Log, NewTopic, ProducerConfig, ProducerRecord, Seek, TopicPartition,
};
use sluice_sql::SqlEngine;
use sluice_sql::datafusion::arrow::util::pretty;
use sluice_streams::prelude::*;

use super::LogArgs;

const TOPIC: &str = "quickstart-pageviews";
const PARTITIONS: i32 = 3;
/// The streaming job's output topic.
const COUNTS_TOPIC: &str = "quickstart-pageview-counts";
/// The streaming job's application id (consumer group, internal topic prefix).
const APPLICATION_ID: &str = "quickstart-pageviews-per-minute";
/// Pages, chosen as `(i * 7) % 6`, so any 6 consecutive views cover every page.
const PAGES: [&str; 6] = ["/", "/pricing", "/docs", "/blog", "/signup", "/docs/sql"];
const MINUTE_MS: i64 = 60_000;
/// Event time the sample views cover: five 1-minute windows.
const SPAN_MS: i64 = 5 * MINUTE_MS;
/// How long after a window's end views for it still count.
const GRACE_MS: i64 = 10_000;
/// Longest the quickstart waits for the job's results.
const JOB_WAIT: Duration = Duration::from_secs(60);

/// A sample page view (the `pageviews` example's input format).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageView {
    user: String,
    page: String,
    /// Event time, ms since the epoch.
    ts: i64,
}

/// One closed window's count (the `pageviews` example's output format).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageCount {
    page: String,
    window_start: i64,
    window_end: i64,
    count: i64,
}

/// `quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// How many sample records to produce.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs the quickstart.
pub fn run(args: &QuickstartArgs) -> anyhow::Result<()> {
    let config = args.log.load_config()?;
    let dir = args.log.resolve_dir(&config);
    println!("Sluice quickstart — embedded log in {}", dir.display());
    let log = args.log.open()?;
    let created = log.ensure_topic(NewTopic::new(TOPIC, PARTITIONS))?;
    println!(
        "  topic {TOPIC}: {} ({PARTITIONS} partitions)",
        if created {
            "created"
        } else {
            "already there, appending"
        }
    );

    // Remember where each partition ends, to read back exactly what this run adds.
    let starts: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| Ok((p, log.partition(TOPIC, p)?.log_end_offset())))
        .collect::<sluice_core::Result<_>>()?;

    let first_window = first_window_start(&log, &starts)?;
    // The views before the closing ones, spread over the span.
    let spread = args.records.saturating_sub(PAGES.len() as u64);
    // (window start, page) -> views: what the job must report.
    let mut expected: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let producer = log.producer(ProducerConfig::default())?;
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..args.records {
        let user = format!("user-{}", i % 97);
        let page = PAGES[(i as usize * 7) % PAGES.len()];
        let ts = if i < spread {
            let offset_ms =
                i64::try_from(i128::from(i) * i128::from(SPAN_MS) / i128::from(spread))?;
            let ts = first_window + offset_ms;
            *expected
                .entry((ts - ts.rem_euclid(MINUTE_MS), page.to_string()))
                .or_default() += 1;
            ts
        } else {
            first_window + SPAN_MS + GRACE_MS
        };
        let value = format!(r#"{{"user":"{user}","page":"{page}","ts":{ts}}}"#);
        bytes += value.len() as u64;
        // Keyed by page: each page's views stay in one partition, in event-time order, and
        // the job's repartition by page keeps them there, so none arrives late.
        producer.send(
            ProducerRecord::to(TOPIC)
                .key(page)
                .value(value)
                .timestamp(ts),
        )?;
    }
    producer.flush()?;
    drop(producer);
    let produce_time = started.elapsed();

    let started = Instant::now();
    let mut consumer = log.consumer(ConsumerConfig::default().enable_auto_commit(false));
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    consumer.assign(partitions.clone())?;
    for tp in &partitions {
        consumer.seek(tp, Seek::Offset(starts[&tp.partition]))?;
    }
    let mut consumed = 0u64;
    let mut per_page: BTreeMap<String, u64> = BTreeMap::new();
    while consumed < args.records {
        let batch = consumer.poll(Duration::from_secs(2))?;
        if batch.is_empty() {
            break;
        }
        for record in batch {
            consumed += 1;
            let value = record.value.unwrap_or_default();
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&value)
                && let Some(page) = v.get("page").and_then(|p| p.as_str())
            {
                *per_page.entry(page.to_string()).or_default() += 1;
            }
        }
    }
    let consume_time = started.elapsed();
    drop(consumer);

    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "  produced {} records ({:.1} KB) in {:.1} ms — {:.0} records/s",
        args.records,
        bytes as f64 / 1e3,
        produce_time.as_secs_f64() * 1e3,
        rate(args.records, produce_time)
    );
    println!(
        "  consumed {consumed} records back in {:.1} ms — {:.0} records/s",
        consume_time.as_secs_f64() * 1e3,
        rate(consumed, consume_time)
    );
    println!("  partitions (records keyed by page go where Kafka's partitioner puts them):");
    for p in log.describe_topic(TOPIC)?.partitions {
        println!(
            "    {TOPIC}-{}: offsets {}..{} ({} bytes on disk)",
            p.partition, p.log_start_offset, p.log_end_offset, p.size_bytes
        );
    }
    println!("  views per page in this run:");
    for (page, n) in &per_page {
        println!("    {page:<10} {n}");
    }
    if consumed != args.records {
        log.close()?;
        anyhow::bail!("consumed {consumed} records but produced {}", args.records);
    }
    let job = run_job(&log, &dir, first_window, &expected);
    let sql = job.and_then(|()| run_sql(&log));
    let pipeline = sql.and_then(|()| run_pipeline(&log, &dir));
    log.close()?;
    let pipeline_file = pipeline?;
    let flag = format!("--data-dir {}", dir.display());
    println!("Run the job yourself (examples/pageviews.rs; Ctrl-C stops it):");
    println!(
        "  cargo run --release --example pageviews -- {flag} --input-topic {TOPIC} --output-topic my-pageview-counts"
    );
    println!("  cargo run --release -- consume my-pageview-counts --from-beginning {flag}");
    println!("Ask the topic your own questions in SQL (the shell; `\\q` or Ctrl-D leaves it):");
    println!("  cargo run --release -- sql {flag}");
    println!("  cargo run --release -- sql {flag} -e 'SELECT * FROM {SQL_TABLE} LIMIT 5'");
    println!(
        "or serve it and connect psql: cargo run --release -- serve {flag}   then   psql -h 127.0.0.1 -p 5433"
    );
    println!("Run the pipeline again, or your own (docs/connectors.md, examples/pipelines/):");
    println!(
        "  cargo run --release -- connect run {} {flag}",
        pipeline_file.display()
    );
    println!("  cargo run --release -- connect status {flag}");
    println!("Next:");
    println!("  cargo run --release -- topics describe {TOPIC} {flag}");
    println!("  cargo run --release -- consume {TOPIC} --from-beginning --max-records 5 {flag}");
    println!("  echo hello | cargo run --release -- produce {TOPIC} {flag}");
    Ok(())
}

/// The sample orders the quickstart's pipeline loads (also `examples/pipelines/data/`).
const ORDERS_CSV: &str = include_str!("../../examples/pipelines/data/orders.csv");

/// The quickstart's pipeline: the orders CSV into a topic, and out to Parquet files by
/// region and to a SQLite table.
const PIPELINE: &str = r#"# Written by `sluice quickstart`: orders.csv -> topic quickstart-orders -> Parquet and SQLite.
[pipeline]
name = "quickstart-orders"
commit_interval_ms = 200

[[source]]
name = "orders-csv"
type = "file"
path = "orders.csv"
format = "csv"
topic = "quickstart-orders"
key = ["order_id"]

[[source.transform]]
type = "cast"
fields = { amount = "DECIMAL(12,2)" }

[[sink]]
name = "parquet"
type = "parquet"
topics = ["quickstart-orders"]
path = "parquet"
partition_by = ["region"]

[[sink]]
name = "sqlite"
type = "sqlite"
topics = ["quickstart-orders"]
path = "orders.db"
table = "orders"
mode = "upsert"
create_table = true
"#;

/// Writes the bundled CSV and the pipeline file under `<data dir>/quickstart-pipeline/`
/// (once) and runs the pipeline to the end; returns the pipeline file's path.
fn run_pipeline(log: &Log, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    use sluice_connectors::PipelineFile;
    use sluice_connectors::runtime::{Pipeline, RunOptions};

    let folder = dir.join("quickstart-pipeline");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let csv = folder.join("orders.csv");
    if !csv.exists() {
        std::fs::write(&csv, ORDERS_CSV).with_context(|| format!("writing {}", csv.display()))?;
    }
    let file = folder.join("orders.toml");
    std::fs::write(&file, PIPELINE).with_context(|| format!("writing {}", file.display()))?;
    let parsed = PipelineFile::load(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pipeline = Pipeline::new(parsed, log.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let stats = pipeline.stats();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the pipeline runtime")?;
    let started = Instant::now();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    runtime
        .block_on(pipeline.run(RunOptions { once: true }, stop_rx))
        .map_err(|e| anyhow::anyhow!("the quickstart pipeline failed: {e}"))?;
    println!(
        "Pipeline {} (CSV -> topic -> Parquet and SQLite) in {:.3} s:",
        file.display(),
        started.elapsed().as_secs_f64()
    );
    for s in stats {
        let snap = s.snapshot();
        println!(
            "  {} {:<11} {} rows this run",
            snap.role, snap.name, snap.records
        );
    }
    println!(
        "  Parquet by region: {}/region=*/",
        folder.join("parquet").display()
    );
    println!(
        "  SQLite table orders: {}",
        folder.join("orders.db").display()
    );
    println!(
        "  read them: duckdb -c \"SELECT region, sum(amount) FROM read_parquet('{}/**/*.parquet', hive_partitioning = true) GROUP BY region\"",
        folder.join("parquet").display()
    );
    Ok(file)
}

/// The SQL table the quickstart declares on [`TOPIC`].
const SQL_TABLE: &str = "quickstart_pageviews";

/// Declares [`TOPIC`] as the SQL table [`SQL_TABLE`] (once: the catalog keeps it) and
/// prints which pages were viewed most, by how many users.
fn run_sql(log: &Log) -> anyhow::Result<()> {
    let create = format!(
        r#"CREATE TABLE IF NOT EXISTS {SQL_TABLE} ("user" VARCHAR, page VARCHAR, ts BIGINT) WITH (topic = '{TOPIC}', format = 'json')"#
    );
    let query = format!(
        r#"SELECT page, count(*) AS views, count(DISTINCT "user") AS users FROM {SQL_TABLE} GROUP BY page ORDER BY views DESC, page"#
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the SQL runtime")?;
    let started = Instant::now();
    let engine = SqlEngine::open(log.clone())?;
    let out = runtime.block_on(async {
        engine.execute(&create).await?;
        engine.execute(&query).await
    })?;
    let batches = out.last().map(|o| o.batches.as_slice()).unwrap_or_default();
    let table = pretty::pretty_format_batches(batches)?;
    println!("SQL over the topic (table {SQL_TABLE}, every view in {TOPIC} so far):");
    println!("  {query}");
    for line in table.to_string().lines() {
        println!("  {line}");
    }
    println!("  ({:.3} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// The first sample window: a minute boundary after every view already in the topic (so
/// the job, resuming, finds none of this run's views late) and no earlier than needed
/// for the span to end about now.
fn first_window_start(log: &Log, ends: &BTreeMap<i32, i64>) -> anyhow::Result<i64> {
    let mut latest = sluice_core::now_ms() - SPAN_MS - MINUTE_MS;
    let mut consumer = log.consumer(ConsumerConfig::default().enable_auto_commit(false));
    let last: Vec<(TopicPartition, i64)> = ends
        .iter()
        .filter(|(_, end)| **end > 0)
        .map(|(p, end)| (TopicPartition::new(TOPIC, *p), end - 1))
        .collect();
    consumer.assign(last.iter().map(|(tp, _)| tp.clone()).collect())?;
    for (tp, offset) in &last {
        consumer.seek(tp, Seek::Offset(*offset))?;
    }
    // Views are produced in event-time order, so each partition's last is its latest.
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen < last.len() && Instant::now() < deadline {
        for record in consumer.poll(Duration::from_millis(200))? {
            seen += 1;
            latest = latest.max(record.timestamp);
            if let Some(view) = record
                .value
                .and_then(|v| serde_json::from_slice::<PageView>(&v).ok())
            {
                latest = latest.max(view.ts);
            }
        }
    }
    // Past the previous run's closing views' window too, so it cannot mix with ours.
    let after = latest + MINUTE_MS;
    Ok(after - after.rem_euclid(MINUTE_MS))
}

/// The quickstart's streaming job: page views per page per 1-minute tumbling window of
/// event time, emitted once per window when it closes (the `pageviews` example's job).
fn topology() -> sluice_streams::Result<sluice_streams::Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream(
            TOPIC,
            Consumed::with(Unit, Json::<PageView>::new()).timestamp(|_, view, _| view.ts),
        )
        .group_by(
            |_, view| view.page.clone(),
            Grouped::with(Str, Json::<PageView>::new()).named("pages"),
        )
        .windowed_by(
            TimeWindows::of(Duration::from_millis(MINUTE_MS as u64))
                .grace(Duration::from_millis(GRACE_MS as u64)),
        )
        .emit_strategy(EmitStrategy::OnWindowClose)
        .count_with(Materialized::named("counts"))
        .to_stream()
        .map(|w: Windowed<String>, count: i64| {
            let value = PageCount {
                page: w.key.clone(),
                window_start: w.window.start,
                window_end: w.window.end,
                count,
            };
            (w.key, value)
        })
        .to(COUNTS_TOPIC, Produced::with(Str, Json::<PageCount>::new()));
    builder.build()
}

/// Runs the job on `log` until it has emitted every window of `expected` (this run's
/// windows from `first_window` on), prints them as a table and checks the counts.
fn run_job(
    log: &Log,
    dir: &Path,
    first_window: i64,
    expected: &BTreeMap<(i64, String), i64>,
) -> anyhow::Result<()> {
    println!(
        "Streaming job: views per page per 1-minute window of event time (emitted when a window closes)"
    );
    let config = StreamsConfig::new(APPLICATION_ID)
        .log(log.clone())
        .state_dir(dir.join("streams-state").join(APPLICATION_ID))
        .commit_interval(Duration::from_millis(100))
        // Stream time follows the sample views alone: the closing views close the windows.
        .idle_timeout(None);
    let mut job = KafkaStreams::new(topology()?, config).context("starting the streaming job")?;
    // The job created its output topic; read what it adds from here on.
    let partitions = log.partition_count(COUNTS_TOPIC)?;
    let mut consumer = log.consumer(ConsumerConfig::default().enable_auto_commit(false));
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(COUNTS_TOPIC, p))
        .collect();
    consumer.assign(tps.clone())?;
    for tp in &tps {
        let end = log.partition(COUNTS_TOPIC, tp.partition)?.log_end_offset();
        consumer.seek(tp, Seek::Offset(end))?;
    }
    let started = Instant::now();
    job.start()?;
    let mut got: BTreeMap<(i64, String), i64> = BTreeMap::new();
    while got.len() < expected.len() && started.elapsed() < JOB_WAIT {
        if let Some(e) = job.error() {
            anyhow::bail!("the streaming job failed: {e}");
        }
        for record in consumer.poll(Duration::from_millis(100))? {
            let Some(row) = record
                .value
                .and_then(|v| serde_json::from_slice::<PageCount>(&v).ok())
            else {
                continue;
            };
            // Earlier runs' last windows close when this run's views arrive: not ours.
            if row.window_start >= first_window {
                got.insert((row.window_start, row.page), row.count);
            }
        }
    }
    let took = started.elapsed();
    job.close().context("stopping the streaming job")?;
    println!(
        "  {} page/window counts emitted in {:.1} s",
        got.len(),
        took.as_secs_f64()
    );
    print_table(&got);
    println!(
        "  (the closing views' window, {}, stays open: it closes when more views push stream time past its end + {} s)",
        minute_label(first_window + SPAN_MS),
        GRACE_MS / 1000
    );
    if &got != expected {
        anyhow::bail!(
            "the streaming job's counts differ from the sample data's: expected {expected:?}, got {got:?} (a bug, please report it)"
        );
    }
    Ok(())
}

/// Prints `counts` as a table: one row per window, one column per page.
fn print_table(counts: &BTreeMap<(i64, String), i64>) {
    let pages: BTreeSet<&str> = counts.keys().map(|(_, p)| p.as_str()).collect();
    let windows: BTreeSet<i64> = counts.keys().map(|(w, _)| *w).collect();
    let mut header = format!("  {:<13}", "window (UTC)");
    for page in &pages {
        header.push_str(&format!(" {page:>9}"));
    }
    println!("{header}");
    for w in windows {
        let mut line = format!("  {}-{}", minute_label(w), minute_label(w + MINUTE_MS));
        for page in &pages {
            let n = counts.get(&(w, page.to_string())).copied().unwrap_or(0);
            line.push_str(&format!(" {n:>9}"));
        }
        println!("{line}");
    }
}

/// `HH:MM` (UTC) of an epoch-ms time.
fn minute_label(ms: i64) -> String {
    let minute_of_day = ms.div_euclid(MINUTE_MS).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}
