//! `sluice produce TOPIC`: one record per line of standard input, into the embedded log or
//! (with `--bootstrap`) to a Kafka broker through an idempotent librdkafka producer.
//!
//! Both backends split lines the same way ([`Line`]) and choose partitions with Kafka's
//! default partitioner (murmur2 of the key), so a key lands in the same partition either way.

use std::io::BufRead;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use sluice_core::{Compression, ProducerConfig, ProducerRecord};

use super::BackendArgs;
use super::remote;

/// `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to write to (it must exist: `sluice topics create`).
    topic: String,
    /// Split each line at the first SEP into key and value; a line without SEP is an error.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Write every record to this partition instead of choosing by key.
    #[arg(long)]
    partition: Option<i32>,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: Compression,
    #[command(flatten)]
    backend: BackendArgs,
}

/// One input line split into key and value.
struct Line {
    key: Option<Bytes>,
    value: Bytes,
}

/// Reads standard input line by line (a trailing CR dropped) and hands each record to
/// `send`, stopping at the first line without the key separator. Returns how many records
/// were sent and, if input stopped early, why.
fn read_lines(
    key_separator: Option<&str>,
    mut send: impl FnMut(Line) -> anyhow::Result<()>,
) -> anyhow::Result<(u64, Option<String>)> {
    let stdin = std::io::stdin();
    let mut count = 0u64;
    for (i, line) in stdin.lock().split(b'\n').enumerate() {
        let mut line = line.context("reading standard input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let record = match key_separator {
            Some(sep) => {
                let Some(at) = find(&line, sep.as_bytes()) else {
                    let why = format!(
                        "line {} has no key separator {sep:?}; records before it were produced",
                        i + 1
                    );
                    return Ok((count, Some(why)));
                };
                Line {
                    key: Some(Bytes::copy_from_slice(&line[..at])),
                    value: Bytes::copy_from_slice(&line[at + sep.len()..]),
                }
            }
            None => Line {
                key: None,
                value: Bytes::from(line),
            },
        };
        send(record)?;
        count += 1;
    }
    Ok((count, None))
}

/// Runs `produce`.
pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    let (count, failure) = match &args.backend.bootstrap {
        Some(bootstrap) => run_remote(args, bootstrap)?,
        None => run_embedded(args)?,
    };
    eprintln!("Produced {count} record(s) to {}.", args.topic);
    if let Some(message) = failure {
        bail!(message);
    }
    Ok(())
}

fn run_embedded(args: &ProduceArgs) -> anyhow::Result<(u64, Option<String>)> {
    let log = args.backend.log.open()?;
    // Check the topic before reading input, so a typo fails at once.
    log.partition_count(&args.topic)?;
    let producer = log.producer(ProducerConfig::default().compression(args.compression))?;
    let outcome = read_lines(args.key_separator.as_deref(), |line| {
        let mut record = ProducerRecord::to(args.topic.clone()).value(line.value);
        if let Some(key) = line.key {
            record = record.key(key);
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        producer.send(record)?;
        Ok(())
    })?;
    producer.flush()?;
    drop(producer);
    log.close()?;
    Ok(outcome)
}

/// Longest `produce --bootstrap` waits at the end for the broker to acknowledge everything.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Remembers the first record the broker refused: librdkafka reports deliveries from
/// `poll`, after `send` has returned.
#[derive(Default)]
struct Deliveries {
    first_error: Mutex<Option<KafkaError>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| error.clone());
        }
    }
}

fn run_remote(args: &ProduceArgs, bootstrap: &str) -> anyhow::Result<(u64, Option<String>)> {
    let mut config = remote::client_config(bootstrap);
    config
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("compression.codec", codec_name(args.compression));
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .with_context(|| format!("creating a Kafka producer for {bootstrap}"))?;
    // Check the topic before reading input, so a typo fails at once.
    let partitions = remote::partition_count(producer.client(), &args.topic)?;
    if let Some(p) = args.partition
        && !(0..partitions).contains(&p)
    {
        bail!(
            "topic '{}' has no partition {p} (it has {partitions})",
            args.topic
        );
    }
    let outcome = read_lines(args.key_separator.as_deref(), |line| {
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(&args.topic).payload(&line.value[..]);
        if let Some(key) = &line.key {
            record = record.key(&key[..]);
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        // A full local queue is backpressure: serve deliveries until there is room.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(100));
                }
                Err((e, _)) => return Err(e).context("producing a record"),
            }
        }
        producer.poll(Duration::ZERO);
        Ok(())
    })?;
    producer
        .flush(FLUSH_TIMEOUT)
        .with_context(|| format!("waiting for {bootstrap} to acknowledge the records"))?;
    let refused = producer
        .context()
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(error) = refused {
        bail!(
            "the broker refused a record of topic '{}': {error}",
            args.topic
        );
    }
    Ok(outcome)
}

/// librdkafka's name for a codec.
pub(crate) fn codec_name(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
