//! `sluice bench log` (being written).

use clap::Args;

/// Arguments of `sluice bench log`.
#[derive(Debug, Args)]
pub struct LogBenchArgs {}

/// Runs the benchmark.
pub fn run(_args: &LogBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("sluice bench log is not built yet")
}
