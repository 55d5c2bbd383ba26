//! `sluice topics`: create, list, describe, delete.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use sluice_core::NewTopic;

use super::LogArgs;

/// Topic administration.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topics.
    List(ListArgs),
    /// Show a topic's partitions, offsets, sizes and settings.
    Describe(DescribeArgs),
    /// Delete a topic and all its data.
    Delete(DeleteArgs),
}

/// `topics create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Topic name: letters, digits, '.', '_' and '-', at most 249 characters.
    name: String,
    /// Number of partitions [default: log.default_partitions, 1].
    #[arg(long)]
    partitions: Option<i32>,
    /// A topic setting with Kafka's name, e.g. retention.ms=86400000; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// Succeed without changes if the topic exists.
    #[arg(long)]
    if_not_exists: bool,
    #[command(flatten)]
    log: LogArgs,
}

/// `topics list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include internal topics such as __consumer_offsets.
    #[arg(long)]
    include_internal: bool,
    #[command(flatten)]
    log: LogArgs,
}

/// Output format of `describe`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum DescribeFormat {
    Text,
    Json,
}

/// `topics describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Topic name.
    name: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: DescribeFormat,
    #[command(flatten)]
    log: LogArgs,
}

/// `topics delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Topic name.
    name: String,
    #[command(flatten)]
    log: LogArgs,
}

fn parse_configs(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--config {pair:?} must be KEY=VALUE, e.g. retention.ms=86400000");
        };
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// Runs a `topics` subcommand.
pub fn run(command: TopicsCommand) -> anyhow::Result<()> {
    match command {
        TopicsCommand::Create(args) => {
            let log = args.log.open()?;
            let partitions = args.partitions.unwrap_or(log.config().default_partitions);
            let new = NewTopic {
                name: args.name.clone(),
                partitions,
                config: parse_configs(&args.configs)?,
            };
            match log.create_topic(new) {
                Err(sluice_core::Error::TopicExists { .. }) if args.if_not_exists => {
                    println!("Topic {} already exists.", args.name);
                }
                other => {
                    other?;
                    println!(
                        "Created topic {} with {partitions} partition(s).",
                        args.name
                    );
                }
            }
            log.close()?;
        }
        TopicsCommand::List(args) => {
            let log = args.log.open()?;
            for name in log.list_topics() {
                if args.include_internal || !name.starts_with("__") {
                    println!("{name}");
                }
            }
            log.close()?;
        }
        TopicsCommand::Describe(args) => {
            let log = args.log.open()?;
            let d = log.describe_topic(&args.name)?;
            match args.format {
                DescribeFormat::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&d).context("encoding description")?
                    );
                }
                DescribeFormat::Text => {
                    println!("Topic: {}  Partitions: {}", d.name, d.partitions.len());
                    println!(
                        "{:>9}  {:>16}  {:>16}  {:>12}  {:>8}",
                        "Partition", "LogStartOffset", "LogEndOffset", "Bytes", "Segments"
                    );
                    for p in &d.partitions {
                        println!(
                            "{:>9}  {:>16}  {:>16}  {:>12}  {:>8}",
                            p.partition,
                            p.log_start_offset,
                            p.log_end_offset,
                            p.size_bytes,
                            p.segments
                        );
                    }
                    println!("Config:");
                    for (key, value) in &d.config {
                        let marker = if d.overrides.contains_key(key) {
                            " (set)"
                        } else {
                            ""
                        };
                        println!("  {key}={value}{marker}");
                    }
                }
            }
            log.close()?;
        }
        TopicsCommand::Delete(args) => {
            let log = args.log.open()?;
            log.delete_topic(&args.name)?;
            println!("Deleted topic {}.", args.name);
            log.close()?;
        }
    }
    Ok(())
}
