//! User sessions: JSON page views from topic `pageviews`
//! (`{"user": "alice", "page": "/docs", "ts": 1700000000000}`, `ts` in epoch ms) are
//! grouped per user into sessions of *event time*: a user's views less than 30 minutes
//! apart belong to one session; 30 minutes without a view end it.
//!
//! Each session is emitted once, when it closes (stream time 30 minutes past its last
//! view), to topic `user-sessions`: key = the user (UTF-8), value = JSON
//! `{"user": "alice", "session_start": 1700000000000, "session_end": 1700000420000,
//! "views": 7}` (`session_start` / `session_end`: the first and last view's `ts`, epoch
//! ms). Values that are not such JSON are logged and skipped.
//!
//! Stream time advances with the input's `ts`; when no input arrives for
//! `--idle-timeout-ms` (default 30 s), it follows the wall clock so the last sessions
//! close too.
//!
//! On the embedded log (`pageviews` is created if missing; one process at a time may open
//! a data directory, so stop the job before producing with the CLI):
//!
//! ```sh
//! cargo run -- topics create pageviews --partitions 1 --data-dir d
//! # Alice's two views are one session; bob's view 40 minutes later closes it.
//! printf '%s\n' '{"user":"alice","page":"/","ts":1700000000000}' \
//!   '{"user":"alice","page":"/docs","ts":1700000300000}' \
//!   '{"user":"bob","page":"/","ts":1700002400000}' \
//!   | cargo run -- produce pageviews --data-dir d
//! cargo run --example sessions -- --data-dir d   # Ctrl-C stops it
//! cargo run -- consume user-sessions --from-beginning --data-dir d
//! ```
//!
//! Against a broker (`cargo run -- serve --data-dir d`; create `pageviews` first):
//!
//! ```sh
//! cargo run -- topics create pageviews --partitions 1 --bootstrap 127.0.0.1:9092
//! cargo run --example sessions -- --bootstrap 127.0.0.1:9092
//! ```
//!
//! It runs until SIGINT or SIGTERM, then commits and exits; a restart resumes from the
//! committed offsets and the open sessions kept in its state directory.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use sluice::prelude::*;
use sluice::streams::{StreamsError, Topology};

const INPUT: &str = "pageviews";
const OUTPUT: &str = "user-sessions";
const GAP: Duration = Duration::from_secs(30 * 60);

/// One page view, as producers write it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageView {
    user: String,
    page: String,
    /// Event time, ms since the epoch.
    ts: i64,
}

/// One closed session, as the job writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    user: String,
    /// The first view's `ts`.
    session_start: i64,
    /// The last view's `ts`.
    session_end: i64,
    views: i64,
}

/// Per-user sessions with a 30-minute inactivity gap: `pageviews` -> `user-sessions`.
#[derive(Debug, Parser)]
struct Args {
    /// Run on the embedded log in this data directory.
    #[arg(long, value_name = "DIR", required_unless_present = "bootstrap")]
    data_dir: Option<PathBuf>,
    /// Run against a Kafka-protocol broker at HOST:PORT (`sluice serve` or any Kafka).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "data_dir")]
    bootstrap: Option<String>,
    /// The consumer group and the prefix of the job's internal topics.
    #[arg(long, default_value = "sessions")]
    application_id: String,
    /// Where open sessions are stored [default: DIR/streams-state/APPLICATION_ID with
    /// --data-dir, else a directory under the system temp dir].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Partitions of `pageviews` when --data-dir creates it.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// After this long without input, stream time follows the wall clock, in ms.
    #[arg(long, default_value_t = 30_000)]
    idle_timeout_ms: u64,
    /// How often progress is committed, in ms.
    #[arg(long, default_value_t = 1_000)]
    commit_interval_ms: u64,
}

fn topology() -> Result<Topology, StreamsError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(
            INPUT,
            Consumed::with(Unit, Json::<PageView>::new()).timestamp(|_, view, _| view.ts),
        )
        .group_by(
            |_, view| view.user.clone(),
            Grouped::with(Str, Json::<PageView>::new()).named("users"),
        )
        .windowed_by(SessionWindows::with_inactivity_gap(GAP))
        .emit_strategy(EmitStrategy::OnWindowClose)
        .count_with(Materialized::named("sessions"))
        .to_stream()
        .map(|s: Windowed<String>, views: i64| {
            let value = Session {
                user: s.key.clone(),
                session_start: s.window.start,
                session_end: s.window.end,
                views,
            };
            (s.key, value)
        })
        .to(OUTPUT, Produced::with(Str, Json::<Session>::new()));
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
    eprintln!("sessions: {INPUT} -> {OUTPUT}; Ctrl-C (SIGINT) or SIGTERM stops it");
    streams.run_until_signal()?;
    if let Some(log) = log {
        log.close()?;
    }
    eprintln!("sessions: stopped cleanly");
    Ok(())
}
