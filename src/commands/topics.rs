//! `sluice topics`: create, list, describe, delete, in the embedded log or (with
//! `--bootstrap`) on a Kafka broker through the admin API; both print the same text.

mod remote_topics;

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use sluice_core::{NewTopic, TopicDescription};

use super::BackendArgs;

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
    backend: BackendArgs,
}

/// `topics list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include internal topics such as __consumer_offsets.
    #[arg(long)]
    include_internal: bool,
    #[command(flatten)]
    backend: BackendArgs,
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
    backend: BackendArgs,
}

/// `topics delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Topic name.
    name: String,
    #[command(flatten)]
    backend: BackendArgs,
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

/// What `describe` prints, from either backend. Sizes and segment counts are not in the
/// Kafka protocol, so over `--bootstrap` they are unknown (`-` in text, null in JSON).
#[derive(Debug, Serialize)]
struct Description {
    name: String,
    partitions: Vec<PartitionRow>,
    overrides: BTreeMap<String, String>,
    config: BTreeMap<String, String>,
}

/// One partition of a [`Description`].
#[derive(Debug, Serialize)]
struct PartitionRow {
    partition: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    size_bytes: Option<u64>,
    segments: Option<usize>,
}

impl From<TopicDescription> for Description {
    fn from(d: TopicDescription) -> Self {
        Description {
            name: d.name,
            partitions: d
                .partitions
                .into_iter()
                .map(|p| PartitionRow {
                    partition: p.partition,
                    log_start_offset: p.log_start_offset,
                    log_end_offset: p.log_end_offset,
                    size_bytes: Some(p.size_bytes),
                    segments: Some(p.segments),
                })
                .collect(),
            overrides: d.overrides,
            config: d.config,
        }
    }
}

fn print_description(d: &Description, format: DescribeFormat) -> anyhow::Result<()> {
    fn known<T: ToString>(v: Option<T>) -> String {
        v.map_or_else(|| "-".to_string(), |v| v.to_string())
    }
    match format {
        DescribeFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(d).context("encoding description")?
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
                    known(p.size_bytes),
                    known(p.segments)
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
    Ok(())
}

/// Runs a `topics` subcommand.
pub fn run(command: TopicsCommand) -> anyhow::Result<()> {
    let bootstrap = match &command {
        TopicsCommand::Create(a) => &a.backend.bootstrap,
        TopicsCommand::List(a) => &a.backend.bootstrap,
        TopicsCommand::Describe(a) => &a.backend.bootstrap,
        TopicsCommand::Delete(a) => &a.backend.bootstrap,
    };
    match bootstrap.clone() {
        Some(bootstrap) => remote_topics::run(&bootstrap, command),
        None => run_embedded(command),
    }
}

fn run_embedded(command: TopicsCommand) -> anyhow::Result<()> {
    match command {
        TopicsCommand::Create(args) => {
            let log = args.backend.log.open()?;
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
            let log = args.backend.log.open()?;
            for name in log.list_topics() {
                if args.include_internal || !name.starts_with("__") {
                    println!("{name}");
                }
            }
            log.close()?;
        }
        TopicsCommand::Describe(args) => {
            let log = args.backend.log.open()?;
            let d = log.describe_topic(&args.name)?;
            print_description(&d.into(), args.format)?;
            log.close()?;
        }
        TopicsCommand::Delete(args) => {
            let log = args.backend.log.open()?;
            log.delete_topic(&args.name)?;
            println!("Deleted topic {}.", args.name);
            log.close()?;
        }
    }
    Ok(())
}
