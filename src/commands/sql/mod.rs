//! `sluice sql`: SQL over the topics of a data directory, or of a Kafka-protocol broker
//! with `--bootstrap` (see docs/sql.md). `-e SQL` runs
//! statements given on the command line, `-f FILE` a script, and with neither an
//! interactive shell starts (`repl`). Results print as a table, CSV or JSON lines
//! (`output`).

mod output;
mod repl;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use sluice_sql::SqlEngine;

use super::BackendArgs;
pub use output::OutputFormat;

/// `sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Run these statements (separated by `;`) and exit.
    #[arg(
        short = 'e',
        long = "execute",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    execute: Option<String>,
    /// Run the statements in this file and exit.
    #[arg(short = 'f', long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// How results are printed.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Runs `sql`.
pub fn run(args: &SqlArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let (engine, log) = match &args.backend.bootstrap {
        Some(bootstrap) => {
            let engine = SqlEngine::connect(bootstrap)
                .with_context(|| format!("opening the SQL catalog on {bootstrap}"))?;
            (engine, None)
        }
        None => {
            let log = args.backend.log.open()?;
            let engine = SqlEngine::open(log.clone()).context("opening the SQL catalog")?;
            (engine, Some(log))
        }
    };
    let result = match (&args.execute, &args.file) {
        (Some(sql), _) => runtime.block_on(run_script(&engine, sql, args.format)),
        (None, Some(file)) => {
            let sql = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            runtime.block_on(run_script(&engine, &sql, args.format))
        }
        (None, None) => {
            let fallback = match &log {
                Some(log) => log.dir().to_path_buf(),
                None => PathBuf::from("."),
            };
            repl::run(
                &runtime,
                &engine,
                args.format,
                &repl::history_path(&fallback),
            )
        }
    };
    drop(engine);
    if let Some(log) = log {
        log.close().context("closing the log")?;
    }
    result
}

/// Runs each statement of `sql` in turn, printing its result to standard output and a
/// timing line to standard error (so piped CSV or JSON stays clean); stops at the first
/// error.
async fn run_script(engine: &SqlEngine, sql: &str, format: OutputFormat) -> anyhow::Result<()> {
    // Errors are shown by their own message: DataFusion's already say where they arose,
    // and their chain would repeat it.
    let plain = |e: sluice_sql::Error| anyhow::anyhow!("{e}");
    for statement in SqlEngine::parse(sql).map_err(plain)? {
        let started = Instant::now();
        let output = engine.execute_statement(statement).await.map_err(plain)?;
        let mut stdout = std::io::stdout().lock();
        output::print(&mut stdout, &output, format)?;
        eprintln!("{}", output::timing(&output, started.elapsed()));
    }
    Ok(())
}
