//! `sluice produce TOPIC`: one record per line of standard input.

use std::io::BufRead;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use sluice_core::{Compression, ProducerConfig, ProducerRecord};

use super::LogArgs;

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
    log: LogArgs,
}

/// Runs `produce`.
pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    let log = args.log.open()?;
    // Check the topic before reading input, so a typo fails at once.
    log.partition_count(&args.topic)?;
    let producer = log.producer(ProducerConfig::default().compression(args.compression))?;
    let stdin = std::io::stdin();
    let mut count = 0u64;
    let mut failure = None;
    for (i, line) in stdin.lock().split(b'\n').enumerate() {
        let mut line = line.context("reading standard input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let mut record = ProducerRecord::to(args.topic.clone());
        match &args.key_separator {
            Some(sep) => {
                let Some(at) = find(&line, sep.as_bytes()) else {
                    failure = Some(format!(
                        "line {} has no key separator {sep:?}; records before it were produced",
                        i + 1
                    ));
                    break;
                };
                record = record
                    .key(Bytes::copy_from_slice(&line[..at]))
                    .value(Bytes::copy_from_slice(&line[at + sep.len()..]));
            }
            None => record = record.value(Bytes::from(line)),
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        producer.send(record)?;
        count += 1;
    }
    producer.flush()?;
    drop(producer);
    log.close()?;
    eprintln!("Produced {count} record(s) to {}.", args.topic);
    if let Some(message) = failure {
        bail!(message);
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
