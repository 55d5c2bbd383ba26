//! `sluice quickstart`: the README's first command. Creates a topic in a local data
//! directory, produces sample page views to it, consumes them back, and reports.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Args;
use sluice_core::{ConsumerConfig, NewTopic, ProducerConfig, ProducerRecord, Seek, TopicPartition};

use super::LogArgs;

const TOPIC: &str = "quickstart-pageviews";
const PARTITIONS: i32 = 3;
const PAGES: [&str; 6] = ["/", "/pricing", "/docs", "/blog", "/signup", "/docs/sql"];

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

    let producer = log.producer(ProducerConfig::default())?;
    let started = Instant::now();
    let base_ts = sluice_core::now_ms();
    let mut bytes = 0u64;
    for i in 0..args.records {
        let user = format!("user-{}", i % 97);
        let page = PAGES[(i as usize * 7) % PAGES.len()];
        let value = format!(
            r#"{{"user":"{user}","page":"{page}","ts":{}}}"#,
            base_ts + i as i64
        );
        bytes += value.len() as u64;
        producer.send(ProducerRecord::to(TOPIC).key(user).value(value))?;
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
    println!("  partitions (records keyed by user go where Kafka's partitioner puts them):");
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
    log.close()?;
    if consumed != args.records {
        anyhow::bail!("consumed {consumed} records but produced {}", args.records);
    }
    let flag = format!("--data-dir {}", dir.display());
    println!("Next:");
    println!("  cargo run --release -- topics describe {TOPIC} {flag}");
    println!("  cargo run --release -- consume {TOPIC} --from-beginning --max-records 5 {flag}");
    println!("  echo hello | cargo run --release -- produce {TOPIC} {flag}");
    Ok(())
}
