//! `sluice bench`: end-to-end benchmarks that measure Sluice against the machine's own
//! limits in the same run. Results and method are recorded in `docs/benchmarks.md`.

mod log;

use clap::Subcommand;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append then read back records through the log, next to the raw sequential write and
    /// read of the same bytes with the same sync policy.
    Log(log::LogBenchArgs),
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Log(args) => log::run(&args),
    }
}
