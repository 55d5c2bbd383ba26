//! Word count, the "hello world" of stream processing: lines of text from topic
//! `text-input` become running counts per word in topic `word-counts`.
//!
//! Each output record is one count update: key = the word (lowercased, UTF-8), value = its
//! count so far as decimal UTF-8 text (`"3"`), so `sluice consume` and kcat show it as is.
//! The topic is a changelog of counts: the latest record per word is its current count.
//! Input values that are not UTF-8 text are logged and skipped.
//!
//! On the embedded log (the input topic is created if missing; one process at a time may
//! open a data directory, so stop the job before producing with the CLI):
//!
//! ```sh
//! cargo run -- topics create text-input --partitions 1 --data-dir d
//! echo "the cat and the hat" | cargo run -- produce text-input --data-dir d
//! cargo run --example wordcount -- --data-dir d   # Ctrl-C stops it cleanly
//! cargo run -- consume word-counts --from-beginning --data-dir d
//! ```
//!
//! Against a broker (`cargo run -- serve --data-dir d`; create `text-input` first):
//!
//! ```sh
//! cargo run -- topics create text-input --partitions 1 --bootstrap 127.0.0.1:9092
//! cargo run --example wordcount -- --bootstrap 127.0.0.1:9092
//! echo "the cat and the hat" | cargo run -- produce text-input --bootstrap 127.0.0.1:9092
//! cargo run -- consume word-counts --from-beginning --bootstrap 127.0.0.1:9092
//! ```
//!
//! It runs until SIGINT or SIGTERM, then commits and exits; a restart resumes from the
//! committed offsets and the counts kept in its state directory.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sluice::prelude::*;
use sluice::streams::{StreamsError, Topology};

const INPUT: &str = "text-input";
const OUTPUT: &str = "word-counts";

/// Running word counts: `text-input` lines -> `word-counts` (word, decimal count).
#[derive(Debug, Parser)]
struct Args {
    /// Run on the embedded log in this data directory.
    #[arg(long, value_name = "DIR", required_unless_present = "bootstrap")]
    data_dir: Option<PathBuf>,
    /// Run against a Kafka-protocol broker at HOST:PORT (`sluice serve` or any Kafka).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "data_dir")]
    bootstrap: Option<String>,
    /// The consumer group and the prefix of the job's internal topics.
    #[arg(long, default_value = "wordcount")]
    application_id: String,
    /// Where the counts are stored [default: DIR/streams-state/APPLICATION_ID with
    /// --data-dir, else a directory under the system temp dir].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Partitions of `text-input` when --data-dir creates it.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// How often progress is committed, in ms.
    #[arg(long, default_value_t = 1_000)]
    commit_interval_ms: u64,
}

fn topology() -> Result<Topology, StreamsError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(INPUT, Consumed::with(Unit, Str))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, word| word.clone(),
            Grouped::with(Str, Str).named("words"),
        )
        .count_with(Materialized::named("counts"))
        .to_stream()
        .map_values(|count: i64| count.to_string())
        .to(OUTPUT, Produced::with(Str, Str));
    builder.build()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = StreamsConfig::new(&args.application_id)
        .commit_interval(Duration::from_millis(args.commit_interval_ms))
        .deserialization_handler(DeserializationHandler::LogAndContinue);
    // The embedded log, kept to close it (flushing the output) after the job stops.
    let mut log = None;
    if let Some(dir) = &args.data_dir {
        let opened = Log::open(dir)?;
        opened.ensure_topic(NewTopic::new(INPUT, args.partitions))?;
        config = config
            .log(opened.clone())
            .state_dir(dir.join("streams-state").join(&args.application_id));
        log = Some(opened);
    } else if let Some(bootstrap) = &args.bootstrap {
        config = config.bootstrap(bootstrap);
    }
    if let Some(state) = &args.state_dir {
        config = config.state_dir(state);
    }

    let streams = KafkaStreams::new(topology()?, config)?;
    eprintln!("wordcount: {INPUT} -> {OUTPUT}; Ctrl-C (SIGINT) or SIGTERM stops it");
    streams.run_until_signal()?;
    if let Some(log) = log {
        log.close()?;
    }
    eprintln!("wordcount: stopped cleanly");
    Ok(())
}
