//! `sluice bench streams`: runs sluice-streams jobs with the real runtime over records read
//! from the embedded log, and reports records/s and records per CPU-core-second.
//!
//! What the clock covers (the method is written up in `docs/benchmarks.md`):
//! - not the preload: the input topic is filled once, before any run, by appending
//!   pre-encoded batches straight to the log;
//! - each run: a fresh application (its own id, so it starts from offset 0 with empty
//!   stores) and a fresh output topic; the clock and the process CPU time (`getrusage`:
//!   every thread, the stream thread and the producer's) run from `KafkaStreams::start` to
//!   the moment the application's committed input offset reaches the end of the input
//!   (at-least-once commits only after the output it covers is acknowledged), polled
//!   every 1 ms. Closing the job and checking its output are not timed.
//!
//! Jobs, each with one stream thread, at-least-once, on the embedded log:
//! - `stateless`: `filter` (keeps about half) then `map` (key unchanged, value upper-cased)
//!   to an output topic;
//! - `windowed`: `group_by_key`, 1-minute tumbling windows, `count` into a store (in memory
//!   by default, `--store persistent` for fjall), logged to its changelog, updates emitted
//!   to an output topic through the record cache (the latest per window and key at each
//!   commit; `--cache-max-bytes 0` emits every update). The output's last count per window
//!   and key must add up to the input.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde_json::json;
use sluice_core::record::{ProducerStamp, Record, encode_batch};
use sluice_core::{Compression, Log, NewTopic};
use sluice_streams::Topology;

use super::scratch::{Scratch, XorShift, median};
use sluice_streams::prelude::*;

/// Arguments of `sluice bench streams`.
#[derive(Debug, Args)]
pub struct StreamsBenchArgs {
    /// Records in the input topic; every job processes all of them.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,

    /// Size of each record's value in bytes (pseudo-random lowercase ASCII).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub record_bytes: u64,

    /// Distinct keys (`key-0` .. `key-N-1`, assigned round-robin).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,

    /// Event-time step between consecutive records, ms (1 ms: 60,000 records per window).
    /// Never negative: a decreasing time would make the windowed job drop late records and
    /// write fewer than it is waited for.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(0..=3_600_000))]
    pub timestamp_step_ms: i64,

    /// Which jobs to run.
    #[arg(long, value_delimiter = ',', default_value = "stateless,windowed")]
    pub jobs: Vec<Job>,

    /// Store engine of the windowed count.
    #[arg(long, value_enum, default_value_t = StoreChoice::Memory)]
    pub store: StoreChoice,

    /// The jobs' `cache_max_bytes` (store write caches and aggregation record caches);
    /// 0 sends every update downstream and to the changelog at once.
    #[arg(long, default_value_t = 10 << 20)]
    pub cache_max_bytes: usize,

    /// Times to run each job; the figures reported are medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// Directory for the log and the state stores. Must be empty or absent; deleted
    /// afterwards. Default: a fresh directory under the system temp directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Print one JSON object to stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A benchmark job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Job {
    /// filter + map to an output topic.
    Stateless,
    /// group_by_key + 1-minute tumbling count to an output topic.
    Windowed,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Stateless => "stateless",
            Job::Windowed => "windowed",
        }
    }

    /// The target, records/s per core.
    fn target_per_core(self) -> f64 {
        match self {
            Job::Stateless => 2e6,
            Job::Windowed => 1e6,
        }
    }
}

/// Where the windowed count keeps its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    /// `BTreeMap` in memory, rebuilt from the changelog on start.
    Memory,
    /// fjall on disk in the state directory.
    Persistent,
}

const INPUT: &str = "bench-input";
const BATCH_RECORDS: u64 = 1000;
/// How long a run may take before the benchmark gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
const WINDOW: Duration = Duration::from_secs(60);
/// The commit interval of the jobs: Kafka Streams' default at-least-once is 30 s; a short
/// one makes every run pay for several commits (flush, changelog, offsets) as a long job
/// does.
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// Runs the benchmark.
pub fn run(args: &StreamsBenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(args.data_dir.as_deref(), "streams")?;
    let log = Log::open(scratch.phase_dir("log")?).context("opening the log")?;
    let started = Instant::now();
    let kept = preload(&log, args)?;
    if !args.json {
        eprintln!(
            "preloaded {} records in {:.1} s",
            args.records,
            started.elapsed().as_secs_f64()
        );
    }
    let mut results = Vec::new();
    for &job in &args.jobs {
        let expected = match job {
            Job::Stateless => Expected::Records(kept),
            Job::Windowed => Expected::CountsSumTo(args.records),
        };
        let mut runs = Vec::new();
        for run in 0..args.runs {
            if !args.json {
                eprintln!("{} run {}/{}...", job.name(), run + 1, args.runs);
            }
            runs.push(run_job(
                &log,
                &scratch.phase_dir("state")?,
                args,
                job,
                run,
                expected,
            )?);
        }
        results.push(JobResult { job, runs });
    }
    log.close().context("closing the log")?;
    if args.json {
        println!("{}", serde_json::to_string(&report_json(args, &results))?);
    } else {
        print_table(args, &results);
    }
    Ok(())
}

/// The filter of the stateless job: keeps values starting with `a`..=`m` (half of them).
fn keep(value: &Bytes) -> bool {
    value.first().is_some_and(|b| *b <= b'm')
}

fn topology(job: Job, output: &str, store: StoreChoice) -> anyhow::Result<Topology> {
    let b = StreamsBuilder::new();
    let input = b.stream(INPUT, Consumed::with(Str, Raw));
    match job {
        Job::Stateless => {
            input
                .filter(|_, v| keep(v))
                .map(|k, v: Bytes| (k, Bytes::from(v.to_ascii_uppercase())))
                .to(output, Produced::with(Str, Raw));
        }
        Job::Windowed => {
            let m = Materialized::named("counts");
            let m = match store {
                StoreChoice::Memory => m.in_memory(),
                StoreChoice::Persistent => m,
            };
            input
                .group_by_key(Grouped::with(Str, Raw))
                .windowed_by(TimeWindows::of(WINDOW))
                .count_with(m)
                .to_stream()
                .to(output, Produced::with(WindowedSerde(Str), I64));
        }
    }
    Ok(b.build()?)
}

/// Fills the input topic; returns how many records the stateless filter keeps.
fn preload(log: &Log, args: &StreamsBenchArgs) -> anyhow::Result<u64> {
    log.ensure_topic(NewTopic::new(INPUT, 1))?;
    let mut rng = XorShift(0x5EED_1E55_CAFE_F00D);
    let base_ms = sluice_core::now_ms() - args.records as i64 * args.timestamp_step_ms;
    let mut kept = 0;
    let mut i = 0u64;
    while i < args.records {
        let n = BATCH_RECORDS.min(args.records - i);
        let records: Vec<Record> = (0..n)
            .map(|j| {
                let index = i + j;
                let value = rng.text(args.record_bytes as usize);
                kept += u64::from(keep(&value));
                Record {
                    offset: j as i64,
                    timestamp: base_ms + index as i64 * args.timestamp_step_ms,
                    key: Some(Bytes::from(format!("key-{}", index % args.keys))),
                    value: Some(value),
                    headers: Vec::new(),
                }
            })
            .collect();
        let mut batch = encode_batch(&records, Compression::None, ProducerStamp::default())?;
        log.append(INPUT, 0, &mut batch)?;
        i += n;
    }
    log.flush()?;
    Ok(kept)
}

/// One run's measurements.
struct RunTimes {
    seconds: f64,
    cpu_seconds: f64,
}

struct JobResult {
    job: Job,
    runs: Vec<RunTimes>,
}

/// What a job's output must hold once it has processed the whole input.
#[derive(Debug, Clone, Copy)]
enum Expected {
    /// Exactly this many records.
    Records(u64),
    /// Counts whose last value per key add up to this.
    CountsSumTo(u64),
}

fn run_job(
    log: &Log,
    root: &Path,
    args: &StreamsBenchArgs,
    job: Job,
    run: u32,
    expected: Expected,
) -> anyhow::Result<RunTimes> {
    let app = format!("bench-{}-{run}", job.name());
    let output = format!("{app}-out");
    log.ensure_topic(NewTopic::new(&output, 1))?;
    let config = StreamsConfig::new(&app)
        .log(log.clone())
        .state_dir(root.join("state").join(&app))
        .commit_interval(COMMIT_INTERVAL)
        .cache_max_bytes(args.cache_max_bytes)
        .threads(1);
    let mut streams = KafkaStreams::new(topology(job, &output, args.store)?, config)?;
    let cpu_before = process_cpu_seconds()?;
    let started = Instant::now();
    streams.start()?;
    let committed = || {
        log.committed_offset(&app, INPUT, 0)
            .map_or(0, |c| c.offset.max(0) as u64)
    };
    while committed() < args.records {
        if let Some(e) = streams.error() {
            bail!("the {} job failed: {e}", job.name());
        }
        if started.elapsed() > RUN_TIMEOUT {
            bail!(
                "the {} job committed {} of {} input records in {} s; giving up",
                job.name(),
                committed(),
                args.records,
                RUN_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds()? - cpu_before;
    streams.close()?;
    check_output(log, &output, job, expected)?;
    Ok(RunTimes {
        seconds,
        cpu_seconds,
    })
}

/// Fails unless the output topic holds what `expected` says.
fn check_output(log: &Log, output: &str, job: Job, expected: Expected) -> anyhow::Result<()> {
    let written = log.partition(output, 0)?.log_end_offset() as u64;
    match expected {
        Expected::Records(n) if written != n => {
            bail!(
                "the {} job wrote {written} records, expected {n}",
                job.name()
            )
        }
        Expected::Records(_) => Ok(()),
        Expected::CountsSumTo(n) => {
            let mut consumer = log.consumer(sluice_core::ConsumerConfig::default());
            let tp = sluice_core::TopicPartition::new(output, 0);
            consumer.assign(vec![tp.clone()])?;
            consumer.seek(&tp, sluice_core::Seek::Beginning)?;
            let mut last: std::collections::HashMap<Bytes, i64> = Default::default();
            while consumer.position(&tp)? < written as i64 {
                for r in consumer.poll(Duration::from_secs(1))? {
                    let count = r
                        .value
                        .as_deref()
                        .and_then(|v| <[u8; 8]>::try_from(v).ok())
                        .map_or(0, i64::from_be_bytes);
                    last.insert(r.key.unwrap_or_default(), count);
                }
            }
            let sum: i64 = last.values().sum();
            if sum != n as i64 {
                bail!(
                    "the {} job's last counts per window and key add up to {sum}, expected {n}",
                    job.name()
                );
            }
            Ok(())
        }
    }
}

/// User plus system CPU time of the whole process (every thread), seconds.
#[allow(unsafe_code)]
fn process_cpu_seconds() -> anyhow::Result<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a `rusage` into the pointer it is given, which points to
    // memory of that size and alignment; on success it is fully initialized.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage");
    }
    // SAFETY: `getrusage` returned 0, so it filled the struct (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// Medians of one job's runs.
struct Summary {
    seconds: f64,
    cpu_seconds: f64,
    records_per_s: f64,
    records_per_core_s: f64,
}

impl Summary {
    fn of(records: u64, runs: &[RunTimes]) -> Summary {
        let n = records as f64;
        Summary {
            seconds: median(runs.iter().map(|r| r.seconds).collect()),
            cpu_seconds: median(runs.iter().map(|r| r.cpu_seconds).collect()),
            records_per_s: median(runs.iter().map(|r| n / r.seconds).collect()),
            // getrusage counts in ticks on some kernels: a tiny run may read 0 s.
            records_per_core_s: median(runs.iter().map(|r| n / r.cpu_seconds.max(1e-6)).collect()),
        }
    }
}

fn report_json(args: &StreamsBenchArgs, results: &[JobResult]) -> serde_json::Value {
    let mut jobs = serde_json::Map::new();
    for r in results {
        let s = Summary::of(args.records, &r.runs);
        let target = r.job.target_per_core();
        jobs.insert(
            r.job.name().to_string(),
            json!({
                "records_per_s": s.records_per_s,
                "records_per_core_s": s.records_per_core_s,
                "seconds": s.seconds,
                "cpu_seconds": s.cpu_seconds,
                "cores_used": s.cpu_seconds / s.seconds,
                "target_records_per_core_s": target,
                "target_met": s.records_per_core_s >= target,
                "runs": r.runs.iter().map(|t| json!({
                    "seconds": t.seconds, "cpu_seconds": t.cpu_seconds,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    json!({
        "jobs": jobs,
        "config": {
            "records": args.records,
            "record_bytes": args.record_bytes,
            "keys": args.keys,
            "timestamp_step_ms": args.timestamp_step_ms,
            "window_ms": WINDOW.as_millis() as u64,
            "store": match args.store { StoreChoice::Memory => "memory", StoreChoice::Persistent => "persistent" },
            "threads": 1,
            "guarantee": "at_least_once",
            "commit_interval_ms": COMMIT_INTERVAL.as_millis() as u64,
            "cache_max_bytes": args.cache_max_bytes,
            "runs": args.runs,
        },
    })
}

fn print_table(args: &StreamsBenchArgs, results: &[JobResult]) {
    println!(
        "{} records of {} B, {} keys; medians of {} runs",
        args.records, args.record_bytes, args.keys, args.runs
    );
    println!(
        "{:<10} {:>9} {:>9} {:>12} {:>16} {:>10}",
        "job", "seconds", "cpu s", "records/s", "records/core-s", "target"
    );
    for r in results {
        let s = Summary::of(args.records, &r.runs);
        let target = r.job.target_per_core();
        println!(
            "{:<10} {:>9.3} {:>9.3} {:>11.2}M {:>15.2}M {:>6.1}M {}",
            r.job.name(),
            s.seconds,
            s.cpu_seconds,
            s.records_per_s / 1e6,
            s.records_per_core_s / 1e6,
            target / 1e6,
            if s.records_per_core_s >= target {
                "met"
            } else {
                "missed"
            }
        );
    }
}
