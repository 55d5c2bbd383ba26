//! `topics --bootstrap`: the same subcommands over the Kafka admin API, printing what the
//! embedded path prints (via [`print_description`]).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{Description, PartitionRow, TopicsCommand, parse_configs, print_description};
use crate::commands::remote::{self, REQUEST_TIMEOUT, block_on, unknown_topic};

type Admin = AdminClient<DefaultClientContext>;

pub(super) fn run(bootstrap: &str, command: TopicsCommand) -> anyhow::Result<()> {
    let admin = remote::admin(bootstrap)?;
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    match command {
        TopicsCommand::Create(args) => {
            let configs = parse_configs(&args.configs)?;
            // -1: the broker's default partition count, as the embedded log uses its own.
            let mut topic = NewTopic::new(
                &args.name,
                args.partitions.unwrap_or(-1),
                TopicReplication::Fixed(1),
            );
            for (key, value) in &configs {
                topic = topic.set(key, value);
            }
            let results = block_on(admin.create_topics([&topic], &options))?
                .with_context(|| format!("creating topic '{}'", args.name))?;
            for result in results {
                match result {
                    Ok(_) => {
                        let partitions = remote::partition_count(admin.inner(), &args.name)?;
                        println!(
                            "Created topic {} with {partitions} partition(s).",
                            args.name
                        );
                    }
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if args.if_not_exists => {
                        println!("Topic {} already exists.", args.name);
                    }
                    Err((name, code)) => bail!(create_error(&name, code, &configs)),
                }
            }
        }
        TopicsCommand::List(args) => {
            let metadata = admin
                .inner()
                .fetch_metadata(None, REQUEST_TIMEOUT)
                .with_context(|| format!("listing topics on {bootstrap}"))?;
            let mut names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
            names.sort_unstable();
            for name in names {
                if args.include_internal || !name.starts_with("__") {
                    println!("{name}");
                }
            }
        }
        TopicsCommand::Describe(args) => {
            let d = describe(&admin, &options, &args.name)?;
            print_description(&d, args.format)?;
        }
        TopicsCommand::Delete(args) => {
            let results = block_on(admin.delete_topics(&[&args.name], &options))?
                .with_context(|| format!("deleting topic '{}'", args.name))?;
            for result in results {
                match result {
                    Ok(_) => println!("Deleted topic {}.", args.name),
                    Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                        return Err(unknown_topic(&name));
                    }
                    Err((name, code)) => bail!("deleting topic '{name}' failed: {code}"),
                }
            }
        }
    }
    Ok(())
}

/// librdkafka passes on the broker's error code but not its message, so the wording is
/// rebuilt here, matching the embedded log's where the code is unambiguous.
fn create_error(name: &str, code: RDKafkaErrorCode, configs: &BTreeMap<String, String>) -> String {
    match code {
        RDKafkaErrorCode::TopicAlreadyExists => format!("topic '{name}' already exists"),
        RDKafkaErrorCode::InvalidTopic => format!(
            "invalid topic name '{name}': use letters, digits, '.', '_' and '-', at most \
             249 characters"
        ),
        RDKafkaErrorCode::InvalidConfig => {
            let given: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "the broker refused the settings of topic '{name}' ({}): {code}; \
                 see docs/configuration.md for the topic settings",
                given.join(", ")
            )
        }
        _ => format!("creating topic '{name}' failed: {code}"),
    }
}

fn describe(admin: &Admin, options: &AdminOptions, name: &str) -> anyhow::Result<Description> {
    let count = remote::partition_count(admin.inner(), name)?;
    let mut partitions = Vec::new();
    for partition in 0..count {
        let (low, high) = admin
            .inner()
            .fetch_watermarks(name, partition, REQUEST_TIMEOUT)
            .with_context(|| format!("fetching offsets of {name}-{partition}"))?;
        partitions.push(PartitionRow {
            partition,
            log_start_offset: low,
            log_end_offset: high,
            size_bytes: None,
            segments: None,
        });
    }
    let resource = ResourceSpecifier::Topic(name);
    let results = block_on(admin.describe_configs([&resource], options))?
        .with_context(|| format!("describing the settings of topic '{name}'"))?;
    let mut config = BTreeMap::new();
    let mut overrides = BTreeMap::new();
    for result in results {
        let resource = result
            .map_err(|code| anyhow::anyhow!("describing the settings of topic '{name}': {code}"))?;
        for entry in resource.entries {
            let Some(value) = entry.value else { continue };
            if matches!(entry.source, ConfigSource::DynamicTopic) {
                overrides.insert(entry.name.clone(), value.clone());
            }
            config.insert(entry.name, value);
        }
    }
    Ok(Description {
        name: name.to_string(),
        partitions,
        overrides,
        config,
    })
}
