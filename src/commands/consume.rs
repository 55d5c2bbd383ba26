//! `sluice consume TOPIC`: records to standard output, one per line, from the embedded log
//! or (with `--bootstrap`) from a Kafka broker through librdkafka (`remote_consume`). Both
//! print through [`print_record`], so the output is byte-for-byte the same.

mod remote_consume;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use sluice_core::{ConsumerConfig, OffsetReset, Seek, TopicPartition};

use super::BackendArgs;

/// How each record is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The value only.
    Value,
    /// key, a tab, the value.
    KeyValue,
    /// One JSON object per record: topic, partition, offset, timestamp, key, value, headers
    /// (bytes shown as UTF-8 text; invalid sequences become U+FFFD).
    Json,
}

/// `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    topic: String,
    /// Start at the oldest record (default: only new records, or the group's position).
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp"])]
    from_beginning: bool,
    /// Start at this offset in every partition read.
    #[arg(long, value_name = "N", conflicts_with = "from_timestamp")]
    offset: Option<i64>,
    /// Start at the first record with a timestamp at or after MS (ms since the epoch).
    #[arg(long, value_name = "MS")]
    from_timestamp: Option<i64>,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Consumer group: resume from its committed positions and commit as records are
    /// printed.
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Exit after this many records.
    #[arg(long, value_name = "N")]
    max_records: Option<u64>,
    /// Exit once nothing new has arrived for this long.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "value")]
    format: Format,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Runs `consume`.
pub fn run(args: &ConsumeArgs) -> anyhow::Result<()> {
    match &args.backend.bootstrap {
        Some(bootstrap) => remote_consume::run(args, bootstrap),
        None => run_embedded(args),
    }
}

impl ConsumeArgs {
    /// Whether a start flag overrides the group's committed position.
    fn explicit_start(&self) -> bool {
        self.from_beginning || self.offset.is_some() || self.from_timestamp.is_some()
    }

    /// The partitions to read when not subscribing: all, or the one `--partition` names.
    fn chosen_partitions(&self, partitions: i32) -> anyhow::Result<Vec<i32>> {
        match self.partition {
            Some(p) if !(0..partitions).contains(&p) => {
                bail!(
                    "topic '{}' has no partition {p} (it has {partitions})",
                    self.topic
                )
            }
            Some(p) => Ok(vec![p]),
            None => Ok((0..partitions).collect()),
        }
    }

    /// How long the next poll may wait; `None` once `--timeout-ms` of idleness has passed.
    fn next_wait(&self, last_data: Instant) -> Option<Duration> {
        match self.timeout_ms {
            Some(ms) => {
                let idle = last_data.elapsed();
                let timeout = Duration::from_millis(ms);
                (idle < timeout).then(|| timeout - idle)
            }
            None => Some(Duration::from_millis(500)),
        }
    }
}

fn run_embedded(args: &ConsumeArgs) -> anyhow::Result<()> {
    let log = args.backend.log.open()?;
    let partitions = log.partition_count(&args.topic)?;
    let explicit_start = args.explicit_start();
    let mut config = ConsumerConfig::default()
        .enable_auto_commit(false)
        .auto_offset_reset(if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        });
    if let Some(g) = &args.group {
        config = config.group(g.clone());
    }
    let mut consumer = log.consumer(config);
    let chosen: Vec<TopicPartition> = args
        .chosen_partitions(partitions)?
        .into_iter()
        .map(|p| TopicPartition::new(&args.topic, p))
        .collect();
    match (&args.group, args.partition) {
        (Some(_), None) => consumer.subscribe(&[args.topic.as_str()])?,
        _ => consumer.assign(chosen)?,
    }
    if explicit_start {
        let seek = if args.from_beginning {
            Seek::Beginning
        } else if let Some(o) = args.offset {
            Seek::Offset(o)
        } else if let Some(ts) = args.from_timestamp {
            Seek::Timestamp(ts)
        } else {
            Seek::Beginning
        };
        consumer.seek_all(seek)?;
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut last_data = Instant::now();
    let limit = args.max_records.unwrap_or(u64::MAX);
    'outer: while printed < limit {
        let Some(wait) = args.next_wait(last_data) else {
            break;
        };
        let records = consumer.poll(wait)?;
        if records.is_empty() {
            continue;
        }
        last_data = Instant::now();
        let mut done = Vec::new();
        for record in records {
            let printable = Printable {
                topic: &record.topic,
                partition: record.partition,
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: record
                    .headers
                    .iter()
                    .map(|h| (h.key.as_str(), h.value.as_deref()))
                    .collect(),
            };
            print_record(&mut out, &printable, args.format)
                .context("writing to standard output")?;
            done.push((
                TopicPartition::new(&record.topic, record.partition),
                record.offset + 1,
            ));
            printed += 1;
            if printed >= limit {
                out.flush().context("writing to standard output")?;
                if args.group.is_some() {
                    consumer.commit_offsets(&done)?;
                }
                break 'outer;
            }
        }
        out.flush().context("writing to standard output")?;
        if args.group.is_some() {
            consumer.commit_offsets(&done)?;
        }
    }
    drop(consumer);
    log.close()?;
    Ok(())
}

fn text(bytes: Option<&[u8]>) -> serde_json::Value {
    match bytes {
        None => serde_json::Value::Null,
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A record as printed, borrowed from either backend's record type.
struct Printable<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

fn print_record(
    out: &mut impl Write,
    record: &Printable<'_>,
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Value => {
            out.write_all(record.value.unwrap_or_default())?;
        }
        Format::KeyValue => {
            out.write_all(record.key.unwrap_or_default())?;
            out.write_all(b"\t")?;
            out.write_all(record.value.unwrap_or_default())?;
        }
        Format::Json => {
            let headers: serde_json::Map<String, serde_json::Value> = record
                .headers
                .iter()
                .map(|(key, value)| ((*key).to_string(), text(*value)))
                .collect();
            let value = serde_json::json!({
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "key": text(record.key),
                "value": text(record.value),
                "headers": headers,
            });
            serde_json::to_writer(&mut *out, &value)?;
        }
    }
    out.write_all(b"\n")
}
