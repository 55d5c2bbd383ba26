//! `sluice bench produce`: sends records to a broker through librdkafka as fast as it
//! takes them (or at a steady `--rate`) and reports throughput and send-to-ack latency.
//!
//! What the clock covers: from the first send to the end of the final flush, so every
//! record counted has been acknowledged (under `--acks 0`, handed to the socket). Each
//! record's value starts with its send time (see [`super::latency`]); its latency is taken
//! in the delivery report, so it spans librdkafka's queue, linger, the network round trip
//! and the broker's append. Unpaced runs stamp one record in 64 (the rest carry a zero
//! stamp) because reading the clock is not free next to librdkafka's per-record cost. Also the producer thread of `bench consume --produce-rate`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::{Value, json};
use sluice_core::Compression;

use super::latency::{
    Latencies, SAMPLE_EVERY_UNPACED, STAMP_BYTES, clear_stamp, now_ns, read_stamp, stamp,
};
use super::produce_batch::{TopicHandle, send_batch};
use crate::commands::produce::codec_name;
use crate::commands::remote::{self, REQUEST_TIMEOUT, block_on};

/// Where the benchmark records go.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Broker to benchmark, HOST:PORT (`sluice serve`, or any Kafka).
    #[arg(long)]
    pub bootstrap: String,

    /// Topic to use; created with `--partitions` if it does not exist.
    #[arg(long, default_value = "bench")]
    pub topic: String,

    /// Partitions of the topic when the benchmark creates it (an existing topic keeps its
    /// own count).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub partitions: i32,
}

/// How the benchmark's producer batches and what it waits for.
#[derive(Debug, Clone, Args)]
pub struct ProducerOptions {
    /// Acknowledgements a send waits for: 0 (none), 1 (the leader) or all.
    #[arg(long, value_enum, default_value = "1")]
    pub acks: Acks,

    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    pub compression: Compression,

    /// Largest batch librdkafka builds per partition, in bytes (`batch.size`).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub batch_size: u32,

    /// How long librdkafka waits for a batch to fill before sending it (`linger.ms`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub linger_ms: u32,

    /// How unpaced runs hand records to librdkafka: `batch` (`rd_kafka_produce_batch`,
    /// 1,000 records a call) or `per-message` (`rd_kafka_producev`, the rdkafka crate's
    /// `send`). Paced runs (`--rate`) always send per message.
    #[arg(long, value_enum, default_value = "batch")]
    pub client_api: ClientApi,
}

/// `--client-api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientApi {
    /// `rd_kafka_produce_batch`: many records per call.
    Batch,
    /// `rd_kafka_producev`: one record per call.
    PerMessage,
}

/// `--acks`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Acks {
    /// Fire and forget.
    #[value(name = "0")]
    None,
    /// The leader has appended.
    #[value(name = "1")]
    Leader,
    /// Every in-sync replica has appended (for a single broker, the same as 1).
    #[value(name = "all")]
    All,
}

impl Acks {
    fn config(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Arguments of `sluice bench produce`.
#[derive(Debug, Args)]
pub struct ProduceBenchArgs {
    #[command(flatten)]
    pub target: Target,

    /// Records to send.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,

    /// Size of each record's value in bytes (no key, no headers). The first 8 bytes hold
    /// the send time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(STAMP_BYTES as u64..=RECORD_BYTES_MAX))]
    pub record_bytes: u64,

    /// Send at this steady rate, records/s, instead of as fast as possible.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,

    #[command(flatten)]
    pub producer: ProducerOptions,

    /// Print one JSON object to stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Largest `--record-bytes`: within librdkafka's default `message.max.bytes`.
pub const RECORD_BYTES_MAX: u64 = 900_000;
/// Records librdkafka may hold unacknowledged before `send` reports the queue full.
const QUEUE_RECORDS_MAX: u32 = 2_000_000;
/// Bytes librdkafka may hold unacknowledged, in KiB (1 GiB).
const QUEUE_KIB_MAX: u32 = 1 << 20;
/// Longest the final flush may wait for the last acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Records per `rd_kafka_produce_batch` call (`--client-api batch`).
const BATCH_RECORDS: u64 = 1_000;
/// Sends between two polls for delivery reports when not paced.
const POLL_EVERY_SENDS: u64 = 1024;
pub(super) const MB: f64 = 1e6;

/// What one producer run did.
pub(super) struct ProduceRun {
    pub records: u64,
    pub bytes: u64,
    /// First send to last acknowledgement.
    pub elapsed: Duration,
    /// Send-to-ack latency of every acknowledged record.
    pub latencies: Latencies,
}

/// Runs the benchmark.
pub fn run(args: &ProduceBenchArgs) -> anyhow::Result<()> {
    ensure_topic(&args.target)?;
    let run = produce(
        &args.target,
        &args.producer,
        args.records,
        args.record_bytes,
        args.rate,
    )?;
    let seconds = run.elapsed.as_secs_f64();
    let records_per_s = run.records as f64 / seconds;
    let mb_per_s = run.bytes as f64 / MB / seconds;
    let latency = run.latencies.summary();
    if args.json {
        let report = json!({
            "records_per_s": records_per_s,
            "mb_per_s": mb_per_s,
            "latency_ms": latency.json(),
            "latency_measures": "send_to_ack",
            "records": run.records,
            "bytes": run.bytes,
            "seconds": seconds,
            "config": config_json(&args.target, &args.producer, args.record_bytes, args.rate),
        });
        println!("{report}");
    } else {
        println!(
            "produced {} records of {} bytes in {seconds:.3} s: {records_per_s:.0} records/s, \
             {mb_per_s:.1} MB/s",
            run.records, args.record_bytes
        );
        println!(
            "send-to-ack latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            latency.p50, latency.p99, latency.p999, latency.max
        );
    }
    Ok(())
}

/// The settings a report was made with.
pub(super) fn config_json(
    target: &Target,
    producer: &ProducerOptions,
    record_bytes: u64,
    rate: Option<u64>,
) -> Value {
    json!({
        "bootstrap": target.bootstrap, "topic": target.topic,
        "record_bytes": record_bytes, "rate": rate, "acks": producer.acks.config(),
        "compression": codec_name(producer.compression), "batch_size": producer.batch_size,
        "linger_ms": producer.linger_ms,
        "client_api": match producer.client_api {
            ClientApi::Batch if rate.is_none() => "batch",
            _ => "per-message",
        },
    })
}

/// Creates the topic unless it exists.
pub(super) fn ensure_topic(target: &Target) -> anyhow::Result<()> {
    let admin = remote::admin(&target.bootstrap)?;
    let topic = NewTopic::new(&target.topic, target.partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let results = block_on(admin.create_topics([&topic], &options))?
        .with_context(|| format!("creating topic '{}' on {}", target.topic, target.bootstrap))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic '{name}': {code}"),
        }
    }
    Ok(())
}

/// Collects delivery reports. `BaseProducer` runs them inside `poll` on the sending
/// thread, so the locks are never contended; the counts are atomics all the same, since a
/// lock per record is a measurable share of the sending thread at millions of records/s.
#[derive(Default)]
struct Deliveries {
    latencies: Mutex<Latencies>,
    acked_records: AtomicU64,
    acked_bytes: AtomicU64,
    first_error: Mutex<Option<KafkaError>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let payload = message.payload().unwrap_or_default();
                if let Some(sent) = read_stamp(payload) {
                    let now = now_ns();
                    let mut latencies = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
                    latencies.record_since(sent, now);
                }
                self.acked_records.fetch_add(1, Ordering::Relaxed);
                self.acked_bytes
                    .fetch_add(payload.len() as u64, Ordering::Relaxed);
            }
            Err((error, _)) => {
                let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| error.clone());
            }
        }
    }
}

/// Sends `records` stamped records to the target topic (spread over its partitions),
/// waits until all are acknowledged, and fails if the broker refused any.
pub(super) fn produce(
    target: &Target,
    options: &ProducerOptions,
    records: u64,
    record_bytes: u64,
    rate: Option<u64>,
) -> anyhow::Result<ProduceRun> {
    let bootstrap = &target.bootstrap;
    let mut config = remote::client_config(bootstrap);
    config
        .set("acks", options.acks.config())
        .set("compression.codec", codec_name(options.compression))
        .set("linger.ms", options.linger_ms.to_string())
        .set("batch.size", options.batch_size.to_string())
        .set(
            "queue.buffering.max.messages",
            QUEUE_RECORDS_MAX.to_string(),
        )
        .set("queue.buffering.max.kbytes", QUEUE_KIB_MAX.to_string())
        // No key: spread records over the partitions a batch at a time.
        .set(
            "sticky.partitioning.linger.ms",
            options.linger_ms.to_string(),
        );
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .with_context(|| format!("creating a Kafka producer for {bootstrap}"))?;
    remote::partition_count(producer.client(), &target.topic)?;
    {
        let mut latencies = producer
            .context()
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *latencies = Latencies::with_capacity(usize::try_from(records).unwrap_or(0));
    }

    let mut value = filler(usize::try_from(record_bytes).context("--record-bytes")?);
    clear_stamp(&mut value);
    // The batch API's topic handle (dropped before the producer) and record buffer.
    let mut topic: Option<TopicHandle> = None;
    let mut batch: Vec<u8> = Vec::new();
    let start = Instant::now();
    let mut sent = 0u64;
    // Paced runs are for latency: every record carries its send time.
    let sample_every = if rate.is_some() {
        1
    } else {
        SAMPLE_EVERY_UNPACED
    };
    while sent < records {
        // Paced: send what is due by now, one interval per record from the start, so a
        // slow wake-up is caught up at once and the long-run rate is exact.
        let due = match rate {
            None => records,
            Some(r) => {
                let elapsed_ns = start.elapsed().as_nanos();
                let due = elapsed_ns * u128::from(r) / 1_000_000_000 + 1;
                u64::try_from(due).unwrap_or(u64::MAX).min(records)
            }
        };
        if rate.is_none() && options.client_api == ClientApi::Batch {
            if topic.is_none() {
                topic = Some(TopicHandle::new(&producer, &target.topic)?);
            }
            let Some(handle) = topic.as_ref() else {
                continue;
            };
            let n = (records - sent).min(BATCH_RECORDS);
            batch.resize(n as usize * value.len(), 0);
            for (i, v) in batch.chunks_exact_mut(value.len()).enumerate() {
                v.copy_from_slice(&value);
                if (sent + i as u64).is_multiple_of(sample_every) {
                    stamp(v);
                }
            }
            send_batch(&producer, handle, &batch, value.len())?;
            sent += n;
            producer.poll(Duration::ZERO);
            continue;
        }
        while sent < due {
            if sent.is_multiple_of(sample_every) {
                stamp(&mut value);
            } else {
                clear_stamp(&mut value);
            }
            send(&producer, &target.topic, &value)?;
            sent += 1;
            if sent.is_multiple_of(POLL_EVERY_SENDS) {
                producer.poll(Duration::ZERO);
            }
        }
        producer.poll(Duration::ZERO);
        if let Some(r) = rate
            && sent < records
        {
            let next = Duration::from_nanos(
                u64::try_from(u128::from(sent) * 1_000_000_000 / u128::from(r)).unwrap_or(u64::MAX),
            );
            if let Some(wait) = next.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    drop(topic);
    producer
        .flush(FLUSH_TIMEOUT)
        .with_context(|| format!("waiting for {bootstrap} to acknowledge the records"))?;
    let elapsed = start.elapsed();
    let context = producer.context();
    if let Some(error) = context
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        bail!(
            "the broker refused a record of topic '{}': {error}",
            target.topic
        );
    }
    let acked = context.acked_records.load(Ordering::Relaxed);
    let bytes = context.acked_bytes.load(Ordering::Relaxed);
    let latencies =
        std::mem::take(&mut *context.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(ProduceRun {
        records: acked,
        bytes,
        elapsed,
        latencies,
    })
}

/// Sends one record; a full local queue is backpressure: serve deliveries until there is
/// room.
fn send(producer: &BaseProducer<Deliveries>, topic: &str, value: &[u8]) -> anyhow::Result<()> {
    let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(topic).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e).context("producing a record"),
        }
    }
}

/// A value of pseudo-random lowercase ASCII (xorshift), so compression sees text-like
/// bytes rather than one repeated byte.
fn filler(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}
