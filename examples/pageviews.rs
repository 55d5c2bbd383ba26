//! Page views per page per minute: JSON page views from topic `pageviews`
//! (`{"user": "alice", "page": "/docs", "ts": 1700000000000}`, `ts` in epoch ms) are
//! counted per page over 1-minute tumbling windows of *event time* (taken from `ts`, not
//! from when the record arrived), with 10 seconds of grace for late records.
//!
//! Each window's count is emitted once, when the window closes (stream time past its end
//! plus the grace), to topic `pageview-counts`: key = the page (UTF-8), value = JSON
//! `{"page": "/docs", "window_start": 1700000000000, "window_end": 1700000060000,
//! "count": 42}` (window bounds in epoch ms, `[start, end)`). Records a window missed
//! because they came after it closed are dropped (and counted as late); values that are
//! not such JSON are logged and skipped.
//!
//! With several input partitions the count reads a repartition topic that every input
//! partition's task writes to. One stream thread processes its tasks in event-time order,
//! so a backlog replays without late drops; with several threads or instances, the
//! repartition topic interleaves their output in batches, and views that reach the count
//! more than the grace behind are late: key the input by page (each page's views then
//! stay in one partition, in order) or give the window more grace when replaying history.
//!
//! Stream time advances with the input's `ts`; when no input arrives for
//! `--idle-timeout-ms` (default 30 s), it follows the wall clock so the last windows
//! close too.
//!
//! On the embedded log (`pageviews` is created if missing; one process at a time may open
//! a data directory, so stop the job before producing with the CLI):
//!
//! ```sh
//! cargo run -- topics create pageviews --partitions 1 --data-dir d
//! # Two views of /docs in one minute; the third, a minute later, closes that window.
//! printf '%s\n' '{"user":"alice","page":"/docs","ts":1700000000000}' \
//!   '{"user":"bob","page":"/docs","ts":1700000005000}' \
//!   '{"user":"alice","page":"/home","ts":1700000100000}' \
//!   | cargo run -- produce pageviews --data-dir d
//! cargo run --example pageviews -- --data-dir d   # Ctrl-C stops it
//! cargo run -- consume pageview-counts --from-beginning --data-dir d
//! ```
//!
//! Against a broker (`cargo run -- serve --data-dir d`; create `pageviews` first):
//!
//! ```sh
//! cargo run -- topics create pageviews --partitions 1 --bootstrap 127.0.0.1:9092
//! cargo run --example pageviews -- --bootstrap 127.0.0.1:9092
//! ```
//!
//! `--input-topic` and `--output-topic` run the same job on other topics, e.g. on the
//! sample views `sluice quickstart` writes:
//!
//! ```sh
//! cargo run --example pageviews -- --data-dir sluice-data \
//!   --input-topic quickstart-pageviews --output-topic my-pageview-counts
//! ```
//!
//! It runs until SIGINT or SIGTERM, then commits and exits; a restart resumes from the
//! committed offsets and the open windows kept in its state directory.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use sluice::prelude::*;
use sluice::streams::{StreamsError, Topology};

const INPUT: &str = "pageviews";
const OUTPUT: &str = "pageview-counts";
const WINDOW: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(10);

/// One page view, as producers write it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageView {
    user: String,
    page: String,
    /// Event time, ms since the epoch.
    ts: i64,
}

/// One closed window's count, as the job writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageCount {
    page: String,
    window_start: i64,
    window_end: i64,
    count: i64,
}

/// Page views per page per 1-minute window: `pageviews` -> `pageview-counts`.
#[derive(Debug, Parser)]
struct Args {
    /// Run on the embedded log in this data directory.
    #[arg(long, value_name = "DIR", required_unless_present = "bootstrap")]
    data_dir: Option<PathBuf>,
    /// Run against a Kafka-protocol broker at HOST:PORT (`sluice serve` or any Kafka).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "data_dir")]
    bootstrap: Option<String>,
    /// The topic to read page views from.
    #[arg(long, default_value = INPUT)]
    input_topic: String,
    /// The topic to write the counts to.
    #[arg(long, default_value = OUTPUT)]
    output_topic: String,
    /// The consumer group and the prefix of the job's internal topics.
    #[arg(long, default_value = "pageviews")]
    application_id: String,
    /// Where open windows are stored [default: DIR/streams-state/APPLICATION_ID with
    /// --data-dir, else a directory under the system temp dir].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Partitions of the input topic when --data-dir creates it.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// After this long without input, stream time follows the wall clock, in ms.
    #[arg(long, default_value_t = 30_000)]
    idle_timeout_ms: u64,
    /// How often progress is committed, in ms.
    #[arg(long, default_value_t = 1_000)]
    commit_interval_ms: u64,
}

fn topology(input: &str, output: &str) -> Result<Topology, StreamsError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(
            input,
            Consumed::with(Unit, Json::<PageView>::new()).timestamp(|_, view, _| view.ts),
        )
        .group_by(
            |_, view| view.page.clone(),
            Grouped::with(Str, Json::<PageView>::new()).named("pages"),
        )
        .windowed_by(TimeWindows::of(WINDOW).grace(GRACE))
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
        .to(output, Produced::with(Str, Json::<PageCount>::new()));
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
        .idle_timeout(Some(Duration::from_millis(args.idle_timeout_ms)))
        .deserialization_handler(DeserializationHandler::LogAndContinue);
    // The embedded log, kept to close it (flushing the output) after the job stops.
    let mut log = None;
    if let Some(dir) = &args.data_dir {
        let opened = Log::open(dir)?;
        opened.ensure_topic(NewTopic::new(&args.input_topic, args.partitions))?;
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

    let streams = KafkaStreams::new(topology(&args.input_topic, &args.output_topic)?, config)?;
    eprintln!(
        "pageviews: {} -> {}; Ctrl-C (SIGINT) or SIGTERM stops it",
        args.input_topic, args.output_topic
    );
    streams.run_until_signal()?;
    if let Some(log) = log {
        log.close()?;
    }
    eprintln!("pageviews: stopped cleanly");
    Ok(())
}
