//! `sluice connect`: ETL pipelines from pipeline files (see docs/connectors.md).
//! `validate FILE` checks a file without moving data, `run FILE` runs it with a progress
//! display, `status [FILE]` shows sources' positions and sinks' lag.

mod progress;
mod status;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_connectors::PipelineFile;
use sluice_connectors::runtime::{Pipeline, RunOptions};
use tokio::sync::watch;

use super::LogArgs;

/// `connect` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConnectCommand {
    /// Check a pipeline file without moving data: its keys and types, transforms, and that
    /// its databases answer and its paths exist. Reports every problem with its line.
    Validate(ValidateArgs),
    /// Run a pipeline: sources write their topics, sinks read them. A pipeline whose
    /// sources all finish (files read once, bulk table copies) stops when its sinks have
    /// written everything; otherwise it runs until Ctrl-C (or SIGTERM), then commits and
    /// stops.
    Run(RunArgs),
    /// Show each source's stored position and each sink's committed offsets and lag.
    Status(StatusArgs),
}

/// `connect validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The pipeline file: TOML, or YAML if named `*.yaml` or `*.yml`.
    file: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

/// `connect run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file: TOML, or YAML if named `*.yaml` or `*.yml`.
    file: PathBuf,
    /// Stop once the sources are done and the sinks have caught up, even for a pipeline
    /// that only has sinks (it then drains what its topics hold).
    #[arg(long)]
    once: bool,
    /// Progress display: `auto` (a live display on a terminal, log lines otherwise),
    /// `live`, `lines` or `none`.
    #[arg(long, value_enum, default_value = "auto")]
    progress: progress::Mode,
    /// Seconds between progress lines (`lines` mode).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    progress_interval: u64,
    #[command(flatten)]
    log: LogArgs,
}

/// `connect status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A pipeline file: show its sources and sinks (default: every pipeline that has run
    /// on this data directory).
    file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs a `connect` subcommand.
pub fn run(command: ConnectCommand) -> anyhow::Result<()> {
    match command {
        ConnectCommand::Validate(args) => validate(&args),
        ConnectCommand::Run(args) => run_pipeline(&args),
        ConnectCommand::Status(args) => status::run(&args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the pipeline runtime")
}

/// Loads and builds a pipeline; configuration problems become one error listing them.
fn load(file: &std::path::Path, log: sluice_core::Log) -> anyhow::Result<Pipeline> {
    let parsed = PipelineFile::load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    Pipeline::new(parsed, log).map_err(|e| anyhow::anyhow!("{e}"))
}

fn validate(args: &ValidateArgs) -> anyhow::Result<()> {
    let log = args.log.open()?;
    let runtime = runtime()?;
    let outcome = match load(&args.file, log.clone()) {
        Err(e) => Err(e),
        Ok(mut pipeline) => {
            let problems = runtime.block_on(pipeline.check());
            if problems.is_empty() {
                let file = pipeline.file();
                println!(
                    "{}: ok — pipeline \"{}\": {} source(s), {} sink(s)",
                    args.file.display(),
                    file.name,
                    file.sources.len(),
                    file.sinks.len()
                );
                Ok(())
            } else {
                Err(anyhow::anyhow!("{}", problems.join("\n")))
            }
        }
    };
    log.close().context("closing the log")?;
    outcome.map_err(|e| anyhow::anyhow!("{e}\n{} is not valid", args.file.display()))
}

fn run_pipeline(args: &RunArgs) -> anyhow::Result<()> {
    let log = args.log.open()?;
    let runtime = runtime()?;
    let pipeline = load(&args.file, log.clone())?;
    let name = pipeline.file().name.clone();
    let stats = pipeline.stats();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let result = runtime.block_on(async {
        let signals = {
            let stop_tx = stop_tx.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                eprintln!("stopping: committing what the sinks have, then exiting");
                let _ = stop_tx.send(true);
            })
        };
        let display = progress::start(
            args.progress,
            &name,
            stats.clone(),
            std::time::Duration::from_secs(args.progress_interval.max(1)),
        );
        let outcome = pipeline.run(RunOptions { once: args.once }, stop_rx).await;
        signals.abort();
        display.finish().await;
        outcome
    });
    log.close().context("closing the log")?;
    progress::summary(&name, &stats);
    result.map_err(|e| anyhow::anyhow!("pipeline \"{name}\" failed: {e}"))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
