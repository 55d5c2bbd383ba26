//! Subcommands of the `sluice` binary, and what they share: how a data directory and
//! `sluice.toml` are found, or a broker chosen instead (`--bootstrap`, clients in
//! `remote`), and logging.

pub mod bench;
mod connect;
mod consume;
mod produce;
mod quickstart;
mod remote;
mod serve;
mod sql;
mod topics;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sluice_core::{Config, Log, LogOptions};

/// Sluice: stream processing with a built-in, Kafka-compatible log.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    /// Log more (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a topic in a local data directory, produce to it, consume it back and
    /// report: the fastest way to see Sluice work.
    Quickstart(quickstart::QuickstartArgs),
    /// Create, list, describe and delete topics (in a data directory, or on a broker with
    /// --bootstrap).
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Produce one record per line of standard input (to a data directory, or to a broker
    /// with --bootstrap).
    Produce(produce::ProduceArgs),
    /// Print records of a topic to standard output, one per line (from a data directory,
    /// or from a broker with --bootstrap).
    Consume(consume::ConsumeArgs),
    /// Serve the log over the Apache Kafka wire protocol.
    Serve(serve::ServeArgs),
    /// Run SQL over the topics of a data directory (or of a broker with --bootstrap): -e
    /// SQL, -f FILE, or an interactive shell (see docs/sql.md).
    Sql(sql::SqlArgs),
    /// ETL pipelines between topics, files, Parquet and databases, from pipeline files:
    /// validate, run, status (see docs/connectors.md).
    #[command(subcommand)]
    Connect(connect::ConnectCommand),
    /// Benchmarks against the machine's own limits.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Where the log lives: the flags every log-using command takes.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Data directory of the embedded log [default: data_dir from the config, else
    /// ./sluice-data].
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Settings file (see docs/configuration.md) [default: ./sluice.toml if present].
    /// (`--config` itself is taken by per-topic settings in `topics create`.)
    #[arg(long = "config-file", env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Where the topics of `topics`, `produce` and `consume` live: the embedded log in a data
/// directory, or a Kafka-protocol broker.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Talk to a Kafka-protocol broker (`sluice serve`, or any Kafka) at HOST:PORT
    /// (comma-separated for several) instead of opening a data directory.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "data_dir")]
    pub bootstrap: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
}

impl LogArgs {
    /// Reads the settings file (an explicit one must exist; a bad one stops here).
    pub fn load_config(&self) -> anyhow::Result<Config> {
        match &self.config {
            Some(path) => Ok(Config::from_file(path)?),
            None if Path::new("sluice.toml").exists() => {
                Ok(Config::from_file(Path::new("sluice.toml"))?)
            }
            None => Ok(Config::default()),
        }
    }

    /// The data directory these flags and the config select.
    pub fn resolve_dir(&self, config: &Config) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| config.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("sluice-data"))
    }

    /// Opens the embedded log.
    pub fn open(&self) -> anyhow::Result<Log> {
        let config = self.load_config()?;
        let dir = self.resolve_dir(&config);
        LogOptions::new()
            .config(config.log)
            .open(&dir)
            .with_context(|| format!("opening the log in {}", dir.display()))
    }
}

/// Sets up logging to standard error.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Quickstart(args) => quickstart::run(&args),
        Command::Topics(command) => topics::run(command),
        Command::Produce(args) => produce::run(&args),
        Command::Consume(args) => consume::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Sql(args) => sql::run(&args),
        Command::Connect(command) => connect::run(command),
        Command::Bench(command) => bench::run(command),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    // Clap checks argument definitions only when a subcommand is parsed; this checks all
    // of them, so a clash (two `--config`s) fails here instead of in a user's shell.
    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
