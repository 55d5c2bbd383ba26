//! `sluice bench consume`: reads records from a broker through librdkafka and reports
//! throughput and latency.
//!
//! Two modes:
//! - throughput (default): assigns every partition at its log start offset and reads the
//!   first `--records` records the topic already holds (`bench produce` fills it). The
//!   clock runs from the assignment to the last record. The latency it reports is the age
//!   of the stamped records (now minus send time; `bench produce` stamps one in 64), which
//!   only describes how old the data was.
//! - end to end (`--produce-rate R`): assigns every partition at its current end, then a
//!   producer thread sends `--records` stamped records at a steady R records/s while this
//!   thread consumes them; each record's latency is consume time minus send time.
//!
//! Either way, `--api` picks how records leave librdkafka: `batch` (default) takes up to
//! 10 k at a time from the C API (`batch_consume.rs`); `poll` is rust-rdkafka's safe
//! `BaseConsumer::poll`, one message per call. Both time and check every record alike.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::batch_consume::BatchQueue;
use super::latency::{Latencies, now_ns, read_stamp};
use super::produce::{
    MB, ProducerOptions, RECORD_BYTES_MAX, Target, config_json, ensure_topic, produce,
};
use crate::commands::remote::{self, REQUEST_TIMEOUT};

/// Arguments of `sluice bench consume`.
#[derive(Debug, Args)]
pub struct ConsumeBenchArgs {
    #[command(flatten)]
    pub target: Target,

    /// Records to consume. Without `--produce-rate` the topic must already hold them.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,

    /// Value size of the records the `--produce-rate` producer sends.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(8..=RECORD_BYTES_MAX))]
    pub record_bytes: u64,

    /// Run a producer thread sending `--records` records at this steady rate (records/s)
    /// and measure produce-to-consume latency.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub produce_rate: Option<u64>,

    #[command(flatten)]
    pub producer: ProducerOptions,

    /// Longest the broker holds a fetch that has no data yet (`fetch.wait.max.ms`); the
    /// broker answers as soon as a record is appended, so this only bounds idle polls.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=30_000))]
    pub fetch_wait_max_ms: u32,

    /// How records are taken from librdkafka.
    #[arg(long, value_enum, default_value_t = ConsumeApi::Batch)]
    pub api: ConsumeApi,

    /// Print one JSON object to stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How the benchmark takes records from librdkafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsumeApi {
    /// `rd_kafka_consume_batch_queue`: up to 10 k records per call, read in place.
    Batch,
    /// rust-rdkafka's `BaseConsumer::poll`: one message per call.
    Poll,
}

/// Longest the consumer may go without a record before the run fails.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one poll waits when no record is ready.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Records librdkafka prefetches per partition (`queued.min.messages`).
const PREFETCH_RECORDS: u32 = 1_000_000;
/// Bytes of one partition a fetch may return (`max.partition.fetch.bytes`).
const PARTITION_FETCH_BYTES: u32 = 8 << 20;

/// Runs the benchmark.
pub fn run(args: &ConsumeBenchArgs) -> anyhow::Result<()> {
    let target = &args.target;
    ensure_topic(target)?;
    let bootstrap = &target.bootstrap;
    let mut config = remote::client_config(bootstrap);
    config
        // librdkafka assigns partitions only through a group handle; this one is never
        // joined nor committed to.
        .set("group.id", format!("sluice-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", args.fetch_wait_max_ms.to_string())
        .set("queued.min.messages", PREFETCH_RECORDS.to_string())
        .set(
            "max.partition.fetch.bytes",
            PARTITION_FETCH_BYTES.to_string(),
        );
    let consumer: BaseConsumer = config
        .create()
        .with_context(|| format!("creating a Kafka consumer for {bootstrap}"))?;
    let partitions = remote::partition_count(consumer.client(), &target.topic)?;

    // Explicit offsets, so the producer cannot race a "latest" lookup.
    let mut tpl = TopicPartitionList::new();
    let mut available = 0u64;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(&target.topic, p, REQUEST_TIMEOUT)
            .with_context(|| format!("reading the offsets of '{}' [{p}]", target.topic))?;
        available += u64::try_from(high - low).unwrap_or(0);
        let start = if args.produce_rate.is_some() {
            high
        } else {
            low
        };
        tpl.add_partition_offset(&target.topic, p, Offset::Offset(start))
            .context("building the assignment")?;
    }
    if args.produce_rate.is_none() && available < args.records {
        bail!(
            "topic '{}' holds {available} records, fewer than --records {}; fill it first \
             (sluice bench produce --bootstrap {bootstrap} --topic {} --records {})",
            target.topic,
            args.records,
            target.topic,
            args.records
        );
    }
    consumer.assign(&tpl).context("assigning partitions")?;

    let (consumed, produced) = std::thread::scope(|scope| {
        let producer = args.produce_rate.map(|rate| {
            scope.spawn(move || {
                produce(
                    target,
                    &args.producer,
                    args.records,
                    args.record_bytes,
                    Some(rate),
                )
            })
        });
        let consumed = consume(&consumer, args.records, args.api);
        let produced = producer.map(|p| p.join());
        (consumed, produced)
    });
    let produced = match produced {
        None => None,
        Some(Ok(result)) => Some(result.context("the --produce-rate producer failed")?),
        Some(Err(_)) => bail!("the --produce-rate producer thread panicked"),
    };
    let consumed = consumed?;

    let seconds = consumed.elapsed.as_secs_f64();
    let records_per_s = consumed.records as f64 / seconds;
    let mb_per_s = consumed.bytes as f64 / MB / seconds;
    let measures = if produced.is_some() {
        "produce_to_consume"
    } else {
        "record_age"
    };
    let latency = consumed.latencies.summary();
    let producer_json = produced.map(|p| {
        let secs = p.elapsed.as_secs_f64();
        json!({
            "records_per_s": p.records as f64 / secs,
            "latency_ms": p.latencies.summary().json(),
            "latency_measures": "send_to_ack",
        })
    });
    if args.json {
        let report = json!({
            "records_per_s": records_per_s,
            "mb_per_s": mb_per_s,
            "latency_ms": latency.json(),
            "latency_measures": measures,
            "records": consumed.records,
            "bytes": consumed.bytes,
            "seconds": seconds,
            "partitions": partitions,
            "api": args.api.to_possible_value().map(|v| v.get_name().to_owned()),
            "producer": producer_json,
            "config": config_json(target, &args.producer, args.record_bytes, args.produce_rate),
        });
        println!("{report}");
    } else {
        println!(
            "consumed {} records ({} bytes) in {seconds:.3} s: {records_per_s:.0} records/s, \
             {mb_per_s:.1} MB/s",
            consumed.records, consumed.bytes
        );
        println!(
            "{measures} latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            latency.p50, latency.p99, latency.p999, latency.max
        );
    }
    Ok(())
}

/// What the consumer read.
struct Consumed {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latencies: Latencies,
}

/// Per-record bookkeeping shared by both APIs.
struct Tally {
    latencies: Latencies,
    got: u64,
    bytes: u64,
    /// Per partition, the next offset expected: a gap or repeat means lost or duplicate
    /// records, which would make the figures wrong.
    next: HashMap<i32, i64>,
}

impl Tally {
    /// Counts one record, samples its latency if stamped and checks its offset follows.
    fn record(&mut self, partition: i32, offset: i64, payload: &[u8]) -> anyhow::Result<()> {
        if let Some(sent) = read_stamp(payload) {
            self.latencies.record_since(sent, now_ns());
        }
        let expected = self.next.entry(partition).or_insert(offset);
        if *expected != offset {
            bail!("partition {partition} jumped from offset {expected} to {offset}");
        }
        *expected += 1;
        self.got += 1;
        self.bytes += payload.len() as u64;
        Ok(())
    }
}

/// Consumes until `records` records have arrived, or fails after [`STALL_TIMEOUT`] without
/// one.
fn consume(consumer: &BaseConsumer, records: u64, api: ConsumeApi) -> anyhow::Result<Consumed> {
    let mut tally = Tally {
        latencies: Latencies::with_capacity(usize::try_from(records).unwrap_or(0)),
        got: 0,
        bytes: 0,
        next: HashMap::new(),
    };
    let mut batches = match api {
        ConsumeApi::Batch => Some(BatchQueue::new(consumer)?),
        ConsumeApi::Poll => None,
    };
    let start = Instant::now();
    // When polls started coming back empty; not a clock read per record.
    let mut idle_since: Option<Instant> = None;
    while tally.got < records {
        let n = match batches.as_mut() {
            Some(queue) => {
                let left = usize::try_from(records - tally.got).unwrap_or(usize::MAX);
                queue.poll(IDLE_POLL, left, |p, o, v| tally.record(p, o, v))?
            }
            None => match consumer.poll(IDLE_POLL) {
                Some(Ok(message)) => {
                    let payload = message.payload().unwrap_or_default();
                    tally.record(message.partition(), message.offset(), payload)?;
                    1
                }
                Some(Err(e)) => return Err(e).context("consuming"),
                None => 0,
            },
        };
        if n > 0 {
            idle_since = None;
        } else if idle_since.get_or_insert_with(Instant::now).elapsed() > STALL_TIMEOUT {
            bail!(
                "no record for {}s after {} of {records}",
                STALL_TIMEOUT.as_secs(),
                tally.got
            );
        }
    }
    let elapsed = start.elapsed();
    Ok(Consumed {
        records: tally.got,
        bytes: tally.bytes,
        elapsed,
        latencies: tally.latencies,
    })
}
