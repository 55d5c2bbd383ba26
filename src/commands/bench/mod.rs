//! `sluice bench`: end-to-end benchmarks that measure Sluice against the machine's own
//! limits in the same run. Results and method are recorded in `docs/benchmarks.md`.
//!
//! `log` drives the embedded log directly; `produce` and `consume` drive a broker through
//! librdkafka, as a Kafka client sees it, and share the latency samples of `latency.rs`.
//! `streams` runs sluice-streams jobs with the real runtime over records in the embedded log.
//! `sql` runs a query through sluice-sql next to DuckDB on the same records.
//! `connect` runs connector pipelines (CSV -> topic -> Parquet, topic -> PostgreSQL) next to
//! DuckDB and psql's COPY on the same rows.
//! `batch_consume` holds the benchmarks' `unsafe` for librdkafka's batch consume API;
//! `streams` has one more, `getrusage` for the process's CPU time.

mod batch_consume;
mod connect;
mod consume;
mod latency;
mod log;
mod produce;
mod produce_batch;
mod scratch;
mod sql;
mod streams;

use clap::Subcommand;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append then read back records through the log, next to the raw sequential write and
    /// read of the same bytes with the same sync policy.
    Log(log::LogBenchArgs),
    /// Send records to a broker (`--bootstrap`) and report records/s, MB/s and
    /// send-to-ack latency percentiles.
    Produce(produce::ProduceBenchArgs),
    /// Read records from a broker (`--bootstrap`) and report records/s, MB/s and latency
    /// percentiles; with `--produce-rate`, produce-to-consume latency under a steady load.
    Consume(consume::ConsumeBenchArgs),
    /// Run streams jobs (stateless filter+map, windowed count) with the real runtime over
    /// records preloaded into an embedded log; report records/s and records per core-second.
    Streams(streams::StreamsBenchArgs),
    /// Scan + group-by over a JSON topic next to DuckDB on the same records as a JSON-lines
    /// file, and the same query over the last 1% of the topic by `_timestamp`.
    Sql(sql::SqlBenchArgs),
    /// Connector pipelines through the real runtime: CSV -> topic -> Parquet next to
    /// DuckDB's CSV-to-Parquet COPY, and topic -> PostgreSQL next to psql's `\copy` of the
    /// same rows; every output is checked.
    Connect(connect::ConnectBenchArgs),
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Log(args) => log::run(&args),
        BenchCommand::Produce(args) => produce::run(&args),
        BenchCommand::Consume(args) => consume::run(&args),
        BenchCommand::Streams(args) => streams::run(&args),
        BenchCommand::Sql(args) => sql::run(&args),
        BenchCommand::Connect(args) => connect::run(&args),
    }
}
