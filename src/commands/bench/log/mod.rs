//! `sluice bench log`: appends pre-encoded batches through the log and reads them back, next
//! to a raw sequential write and read of the same bytes on the same file system with the
//! same fsync policy, so every figure comes with the machine's own limit beside it.
//!
//! What the clock covers (the method is written up in `docs/benchmarks.md`):
//! - not encoding: batches are built before the clock starts, as a producer hands them
//!   over, and each buffer is reused (an append only rewrites the base offset in place);
//! - append: `Partition::append` of every batch, one thread per partition. For `none` and
//!   `interval` the final fsync is timed apart (`flush`), for the log and the raw file alike;
//!   under `sync` every append has already fsynced;
//! - read: `Partition::read` from offset 0 in 1 MiB steps to the end, counting records from
//!   the batch headers (CRC-checked by `BatchIter`, as a consumer does). Served from the page
//!   cache: the data was just written;
//! - raw: one plain file per partition, written with `pwrite` in chunks of one batch with the
//!   same fsync policy, then read back with `pread` in the same chunks.
//!
//! Log and raw phases alternate which goes first from run to run, and each phase deletes
//! its files before the next starts, so neither inherits the other's dirty pages.
//!
//! This file holds the arguments, the workload (pre-encoded batches dealt to partitions),
//! the scratch directory and the log phase; `raw.rs` is the raw baseline and `report.rs`
//! turns the runs into the table, the JSON document and the target verdicts.

mod raw;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use sluice_core::record::{BatchIter, ProducerStamp, Record, decode_batch, encode_batch};
use sluice_core::{Compression, Durability, LogConfig, LogOptions, NewTopic, Partition};

use super::scratch::{Scratch, XorShift};
use raw::{RawTimes, bench_raw};
use report::Report;

/// Arguments of `sluice bench log`.
#[derive(Debug, Args)]
pub struct LogBenchArgs {
    /// Records to append in total, spread over the partitions a batch at a time.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,

    /// Size of each record's value in bytes (records have no key or headers).
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,

    /// Records per batch; one batch is one append, as a producer sends it.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,

    /// Partitions of the benchmark topic; each is appended to and read by its own thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=PARTITIONS_MAX))]
    pub partitions: i32,

    /// When an append is durable: `none`, `interval` (an fsync every 1000 ms, in the
    /// background), `interval:MS`, or `sync` (an fsync per append). The raw file gets the
    /// same policy.
    #[arg(long, default_value = "none", value_parser = parse_durability)]
    pub durability: Durability,

    /// Compression of the batches: none, gzip, snappy, lz4 or zstd. Encoding is not timed;
    /// the bytes counted are the compressed on-disk bytes.
    #[arg(long, default_value = "none")]
    pub compression: Compression,

    /// Roll the log's segments at this size (`log.segment_bytes`). Each roll fsyncs the
    /// segment it closes, whatever the durability, so runs larger than this pay for it.
    #[arg(long, default_value_t = LogConfig::default().segment_bytes)]
    pub segment_bytes: u64,

    /// Directory to run in; its file system is what gets measured. Must be empty or absent;
    /// the files written are deleted afterwards. Default: a fresh directory under the
    /// system temp directory, removed afterwards.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Times to repeat the whole measurement; the figures reported are medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// Also time a consume pass: read again and decode every record (kafka-protocol codec).
    #[arg(long)]
    pub decode: bool,

    /// Print one JSON object to stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One thread per partition: keep that bounded.
const PARTITIONS_MAX: i64 = 256;
/// `max_bytes` of every read, Kafka's default `max.partition.fetch.bytes`.
const READ_BYTES_MAX: usize = 1 << 20;
/// Distinct encoded batches kept in memory, over all partitions; longer runs cycle through
/// them. Larger than any CPU cache, so appends don't copy from cache-hot buffers.
const POOL_BYTES_MAX: usize = 128 << 20;
const TOPIC: &str = "bench";
const MB: f64 = 1e6;

fn parse_durability(s: &str) -> Result<Durability, String> {
    Durability::parse(s).map_err(|e| e.to_string())
}

/// Runs the benchmark.
pub fn run(args: &LogBenchArgs) -> anyhow::Result<()> {
    let max_message_bytes = LogConfig::default().max_message_bytes;
    let feeds = build_feeds(args)?;
    let workload = Workload::of(&feeds);
    if let Some(largest) = feeds
        .iter()
        .flat_map(|f| &f.pool)
        .map(|b| b.bytes.len())
        .max()
        && largest as u64 > max_message_bytes
    {
        bail!(
            "a batch of {} records of {} bytes encodes to {largest} bytes, over the log's \
             max.message.bytes of {max_message_bytes}; lower --batch-size or --record-bytes",
            args.batch_size,
            args.record_bytes
        );
    }
    let scratch = Scratch::new(args.data_dir.as_deref(), "log")?;
    let mut feeds = feeds;
    let mut runs = Vec::new();
    for run in 0..args.runs {
        if !args.json {
            eprintln!("run {}/{}...", run + 1, args.runs);
        }
        // Alternate the order so that neither side always runs on a warmer machine.
        let (log, raw) = if run % 2 == 0 {
            let log = bench_log(&scratch.phase_dir("log")?, &mut feeds, args, &workload)?;
            scratch.remove_phase_dir("log")?;
            let raw = bench_raw(&scratch.phase_dir("raw")?, &feeds, args.durability)?;
            scratch.remove_phase_dir("raw")?;
            (log, raw)
        } else {
            let raw = bench_raw(&scratch.phase_dir("raw")?, &feeds, args.durability)?;
            scratch.remove_phase_dir("raw")?;
            let log = bench_log(&scratch.phase_dir("log")?, &mut feeds, args, &workload)?;
            scratch.remove_phase_dir("log")?;
            (log, raw)
        };
        runs.push(RunTimes { log, raw });
    }
    let report = Report::new(args, workload, &runs, &scratch.root);
    if args.json {
        println!("{}", serde_json::to_string(&report.json(args, &runs))?);
    } else {
        report.print(args);
    }
    Ok(())
}

/// One encoded batch and how many records it holds.
struct Batch {
    bytes: Vec<u8>,
    records: u64,
}

/// What one partition's thread appends: a pool of distinct batches and the order to append
/// them in (indexes into the pool).
struct Feed {
    pool: Vec<Batch>,
    order: Vec<usize>,
}

impl Feed {
    fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.order.iter().filter_map(|&i| self.pool.get(i))
    }
}

/// Totals over all feeds: what every run appends, reads and writes raw.
struct Workload {
    records: u64,
    bytes: u64,
    batches: u64,
}

impl Workload {
    fn of(feeds: &[Feed]) -> Workload {
        let batches = feeds.iter().flat_map(Feed::batches);
        batches.fold(
            Workload {
                records: 0,
                bytes: 0,
                batches: 0,
            },
            |w, b| Workload {
                records: w.records + b.records,
                bytes: w.bytes + b.bytes.len() as u64,
                batches: w.batches + 1,
            },
        )
    }
}

/// Splits the records into batches (the last may be short), deals them to partitions
/// round-robin, and encodes a bounded pool of distinct batches per partition.
fn build_feeds(args: &LogBenchArgs) -> anyhow::Result<Vec<Feed>> {
    let partitions = args.partitions as u64;
    let total_batches = args.records.div_ceil(args.batch_size);
    let last_records = args.records - (total_batches - 1) * args.batch_size;
    // Values plus about 8 bytes of per-record framing.
    let batch_estimate = (args.batch_size as usize).saturating_mul(args.record_bytes + 8);
    let pool_max = (POOL_BYTES_MAX / args.partitions as usize / batch_estimate.max(1)).max(1);
    let mut rng = XorShift(0x5EED_1E55_CAFE_F00D);
    let mut feeds = Vec::with_capacity(args.partitions as usize);
    for p in 0..partitions {
        let dealt = if p < total_batches {
            (total_batches - p).div_ceil(partitions)
        } else {
            0
        };
        let has_short = last_records < args.batch_size && (total_batches - 1) % partitions == p;
        let full = dealt - u64::from(has_short);
        let distinct = full.min(pool_max as u64) as usize;
        let mut pool = Vec::with_capacity(distinct + 1);
        for _ in 0..distinct {
            pool.push(encode(&mut rng, args.batch_size, args)?);
        }
        let mut order: Vec<usize> = (0..full as usize).map(|i| i % distinct.max(1)).collect();
        if has_short {
            pool.push(encode(&mut rng, last_records, args)?);
            order.push(pool.len() - 1);
        }
        feeds.push(Feed { pool, order });
    }
    Ok(feeds)
}

fn encode(rng: &mut XorShift, records: u64, args: &LogBenchArgs) -> anyhow::Result<Batch> {
    let now = sluice_core::now_ms();
    let records: Vec<Record> = (0..records as i64)
        .map(|offset| Record {
            offset,
            timestamp: now,
            key: None,
            value: Some(rng.text(args.record_bytes)),
            headers: Vec::new(),
        })
        .collect();
    let bytes = encode_batch(&records, args.compression, ProducerStamp::default())?;
    Ok(Batch {
        bytes: bytes.to_vec(),
        records: records.len() as u64,
    })
}

/// Seconds each step of one run took.
struct RunTimes {
    log: LogTimes,
    raw: RawTimes,
}

struct LogTimes {
    append_s: f64,
    /// The final `Log::flush` (for `sync`, nothing is left to flush).
    flush_s: f64,
    read_s: f64,
    /// Read again plus decoding every record, with `--decode`.
    consume_s: Option<f64>,
}

fn bench_log(
    dir: &Path,
    feeds: &mut [Feed],
    args: &LogBenchArgs,
    workload: &Workload,
) -> anyhow::Result<LogTimes> {
    let config = LogConfig {
        segment_bytes: args.segment_bytes,
        ..LogConfig::default()
    }
    .with_durability(args.durability);
    // The background thread is what fsyncs under `interval`; the other modes don't need it.
    let background = matches!(args.durability, Durability::Interval(_));
    let log = LogOptions::new()
        .config(config)
        .background(background)
        .open(dir)
        .with_context(|| format!("opening a log in {}", dir.display()))?;
    log.create_topic(NewTopic::new(TOPIC, args.partitions))?;
    let partitions = (0..args.partitions)
        .map(|p| log.partition(TOPIC, p))
        .collect::<sluice_core::Result<Vec<Arc<Partition>>>>()?;

    let start = Instant::now();
    per_partition(feeds.iter_mut().zip(&partitions), |(feed, partition)| {
        for &i in &feed.order {
            let batch = feed
                .pool
                .get_mut(i)
                .ok_or_else(|| anyhow!("bad pool index"))?;
            partition.append(&mut batch.bytes)?;
        }
        Ok(())
    })?;
    let append_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    log.flush()?;
    let flush_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let counts = per_partition(partitions.iter(), |p| read_partition(p, false))?;
    let read_s = start.elapsed().as_secs_f64();
    check_counts("read", &counts, workload)?;

    let consume_s = if args.decode {
        let start = Instant::now();
        let counts = per_partition(partitions.iter(), |p| read_partition(p, true))?;
        let consume_s = start.elapsed().as_secs_f64();
        check_counts("consume", &counts, workload)?;
        Some(consume_s)
    } else {
        None
    };
    log.close()?;
    Ok(LogTimes {
        append_s,
        flush_s,
        read_s,
        consume_s,
    })
}

/// Reads a partition from its start to its end; returns (records, bytes). Records are
/// counted from batch headers, or from decoding every record when `decode`.
fn read_partition(partition: &Partition, decode: bool) -> anyhow::Result<(u64, u64)> {
    let end = partition.log_end_offset();
    let mut offset = partition.log_start_offset();
    let (mut records, mut bytes) = (0u64, 0u64);
    while offset < end {
        let read = partition.read(offset, READ_BYTES_MAX)?;
        if read.records.is_empty() {
            bail!("read at offset {offset} returned nothing before the log end {end}");
        }
        for item in BatchIter::new(&read.records) {
            let (start, header) = item?;
            if decode {
                let batch = read.records.slice(start..start + header.batch_bytes());
                let decoded = decode_batch(batch).map_err(|e| anyhow!("decoding: {e}"))?;
                records += std::hint::black_box(decoded).len() as u64;
            } else {
                records += header.record_count() as u64;
            }
            offset = header.last_offset() + 1;
        }
        bytes += read.records.len() as u64;
    }
    Ok((records, bytes))
}

fn check_counts(what: &str, counts: &[(u64, u64)], workload: &Workload) -> anyhow::Result<()> {
    let records: u64 = counts.iter().map(|c| c.0).sum();
    let bytes: u64 = counts.iter().map(|c| c.1).sum();
    if records != workload.records || bytes != workload.bytes {
        bail!(
            "{what} returned {records} records in {bytes} bytes, but {} records in {} bytes \
             were appended",
            workload.records,
            workload.bytes
        );
    }
    Ok(())
}

/// Runs `work` on every item, each on its own thread, and collects the results in order.
fn per_partition<I, T, F>(items: I, work: F) -> anyhow::Result<Vec<T>>
where
    I: Iterator,
    I::Item: Send,
    T: Send,
    F: Fn(I::Item) -> anyhow::Result<T> + Sync,
{
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = items.map(|item| s.spawn(move || work(item))).collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("benchmark thread panicked"))?)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LogBenchArgs,
    }

    fn args(extra: &[&str]) -> LogBenchArgs {
        let argv = ["bench"].iter().chain(extra).copied();
        Cli::try_parse_from(argv).expect("valid arguments").args
    }

    // Every record is dealt exactly once, including a short last batch and partitions that
    // get no batch at all, so the byte and record totals the rates use are right.
    #[test]
    fn feeds_hold_every_record_once() {
        let a = args(&[
            "--records",
            "2500",
            "--batch-size",
            "1000",
            "--partitions",
            "4",
        ]);
        let feeds = build_feeds(&a).expect("encode");
        let w = Workload::of(&feeds);
        assert_eq!((w.records, w.batches), (2500, 3));
        let per_partition: Vec<usize> = feeds.iter().map(|f| f.order.len()).collect();
        assert_eq!(per_partition, [1, 1, 1, 0]);
    }

    // A whole run over a tiny workload, in every durability mode: the log reads back
    // exactly what was appended (bench_log checks it) and the scratch files are removed.
    #[test]
    fn small_run_round_trips_and_cleans_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("bench");
        for durability in ["none", "interval:10", "sync"] {
            let mut a = args(&["--records", "3001", "--partitions", "2", "--decode"]);
            a.durability = parse_durability(durability).expect("durability");
            a.data_dir = Some(data_dir.clone());
            let feeds = build_feeds(&a).expect("encode");
            let workload = Workload::of(&feeds);
            let scratch = Scratch::new(a.data_dir.as_deref(), "log").expect("scratch");
            let mut feeds = feeds;
            let log = bench_log(
                &scratch.phase_dir("log").expect("dir"),
                &mut feeds,
                &a,
                &workload,
            )
            .expect("log phase");
            assert!(log.consume_s.is_some());
            bench_raw(
                &scratch.phase_dir("raw").expect("dir"),
                &feeds,
                a.durability,
            )
            .expect("raw phase");
            drop(scratch);
            let left: Vec<_> = std::fs::read_dir(&data_dir).expect("list").collect();
            assert!(
                left.is_empty(),
                "{} still holds {left:?}",
                data_dir.display()
            );
        }
    }
}
