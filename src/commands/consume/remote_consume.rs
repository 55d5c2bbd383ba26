//! `consume --bootstrap`: the same reading, printing and committing over librdkafka.
//!
//! With `--group` and no `--partition` the consumer subscribes and the group coordinator
//! assigns partitions; a start flag (`--from-beginning`, `--offset`, `--from-timestamp`)
//! then applies to the first assignment only, as the embedded path seeks once after
//! subscribing. Otherwise partitions are assigned directly. Offsets are committed only
//! after the records before them are written to standard output.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{ConsumeArgs, Printable, print_record};
use crate::commands::remote::{self, REQUEST_TIMEOUT};

/// Most records printed between two commits (the embedded path commits once per poll).
const COMMIT_BATCH_RECORDS_MAX: usize = 500;
/// Longest a subscribing consumer waits for the group to assign it partitions; the
/// `--timeout-ms` idle clock starts only once it has them.
const GROUP_JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest leaving the group and closing the consumer may take at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies the start flags to the first assignment a subscription receives.
#[derive(Default)]
struct StartAt {
    /// Start offset per partition, taken by the first assignment.
    start: Mutex<Option<HashMap<i32, Offset>>>,
}

impl ClientContext for StartAt {}

impl ConsumerContext for StartAt {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let start = self.start.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(start) = start {
                    let assigned: Vec<(String, i32)> = tpl
                        .elements()
                        .iter()
                        .map(|e| (e.topic().to_string(), e.partition()))
                        .collect();
                    for (topic, partition) in assigned {
                        if let Some(offset) = start.get(&partition)
                            && let Err(e) = tpl.set_partition_offset(&topic, partition, *offset)
                        {
                            tracing::warn!("cannot start {topic}-{partition} at {offset:?}: {e}");
                        }
                    }
                }
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS if cooperative => {
                consumer.incremental_unassign(tpl)
            }
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            tracing::warn!("applying a group assignment failed: {e}");
        }
    }
}

/// Runs `consume --bootstrap`.
pub(super) fn run(args: &ConsumeArgs, bootstrap: &str) -> anyhow::Result<()> {
    let mut config = remote::client_config(bootstrap);
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set(
            "auto.offset.reset",
            if args.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        );
    // librdkafka assigns partitions only through a group handle, so a consumer without
    // --group gets a group of its own; it never joins it (no subscribe) nor commits to it.
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("sluice-consume-{}", std::process::id()));
    config.set("group.id", group);
    let consumer: BaseConsumer<StartAt> = config
        .create_with_context(StartAt::default())
        .with_context(|| format!("creating a Kafka consumer for {bootstrap}"))?;
    let partitions = remote::partition_count(consumer.client(), &args.topic)?;
    let chosen = args.chosen_partitions(partitions)?;
    let start = if args.explicit_start() {
        Some(start_offsets(&consumer, args, &chosen)?)
    } else {
        None
    };
    let subscribed = args.group.is_some() && args.partition.is_none();
    if subscribed {
        *consumer
            .context()
            .start
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = start;
        consumer
            .subscribe(&[args.topic.as_str()])
            .with_context(|| format!("subscribing to '{}'", args.topic))?;
    } else {
        // Without a start flag: the group's position if there is a group, else new records.
        let default = if args.group.is_some() {
            Offset::Stored
        } else {
            Offset::End
        };
        let mut tpl = TopicPartitionList::new();
        for p in &chosen {
            let offset = start.as_ref().and_then(|s| s.get(p)).copied();
            tpl.add_partition_offset(&args.topic, *p, offset.unwrap_or(default))
                .context("building the assignment")?;
        }
        consumer.assign(&tpl).context("assigning partitions")?;
    }

    let printed = print_records(&consumer, args, subscribed);
    if subscribed {
        consumer.unsubscribe();
    }
    remote::close_within(consumer, CLOSE_TIMEOUT);
    printed
}

/// Prints records until `--max-records` or `--timeout-ms` (or, while joining a group,
/// [`GROUP_JOIN_TIMEOUT`]), committing with `--group` after each printed poll.
fn print_records(
    consumer: &BaseConsumer<StartAt>,
    args: &ConsumeArgs,
    subscribed: bool,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let limit = args.max_records.unwrap_or(u64::MAX);
    let started = Instant::now();
    let mut joined = !subscribed;
    let mut last_data = Instant::now();
    while printed < limit {
        if !joined {
            if consumer.assignment().is_ok_and(|a| a.count() > 0) {
                joined = true;
                last_data = Instant::now();
            } else if started.elapsed() > GROUP_JOIN_TIMEOUT {
                bail!(
                    "group '{}' assigned no partitions of '{}' within {}s",
                    args.group.as_deref().unwrap_or_default(),
                    args.topic,
                    GROUP_JOIN_TIMEOUT.as_secs()
                );
            }
        }
        let wait = if joined {
            let Some(wait) = args.next_wait(last_data) else {
                break;
            };
            wait
        } else {
            Duration::from_millis(100)
        };
        // Print what one poll and the records already fetched behind it hold, then commit.
        let mut next_offsets: HashMap<i32, i64> = HashMap::new();
        let mut timeout = wait;
        while next_offsets.len() < COMMIT_BATCH_RECORDS_MAX && printed < limit {
            let Some(message) = consumer.poll(timeout) else {
                break;
            };
            let message = message.with_context(|| format!("consuming '{}'", args.topic))?;
            timeout = Duration::ZERO;
            joined = true;
            let headers: Vec<(&str, Option<&[u8]>)> = message
                .headers()
                .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
                .unwrap_or_default();
            let printable = Printable {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                timestamp: message.timestamp().to_millis().unwrap_or(-1),
                key: message.key(),
                value: message.payload(),
                headers,
            };
            print_record(&mut out, &printable, args.format)
                .context("writing to standard output")?;
            next_offsets.insert(message.partition(), message.offset() + 1);
            printed += 1;
        }
        if next_offsets.is_empty() {
            continue;
        }
        last_data = Instant::now();
        out.flush().context("writing to standard output")?;
        if args.group.is_some() {
            let mut tpl = TopicPartitionList::new();
            for (p, next) in &next_offsets {
                tpl.add_partition_offset(&args.topic, *p, Offset::Offset(*next))
                    .context("building the commit")?;
            }
            consumer
                .commit(&tpl, CommitMode::Sync)
                .with_context(|| format!("committing offsets of group '{:?}'", args.group))?;
        }
    }
    Ok(())
}

/// Where each chosen partition starts under `--from-beginning`, `--offset` or
/// `--from-timestamp` (looked up on the broker; past the last record means the end).
fn start_offsets(
    consumer: &BaseConsumer<StartAt>,
    args: &ConsumeArgs,
    chosen: &[i32],
) -> anyhow::Result<HashMap<i32, Offset>> {
    if let Some(ts) = args.from_timestamp {
        let mut query = TopicPartitionList::new();
        for p in chosen {
            query
                .add_partition_offset(&args.topic, *p, Offset::Offset(ts))
                .context("building the timestamp query")?;
        }
        let found = consumer
            .offsets_for_times(query, REQUEST_TIMEOUT)
            .with_context(|| format!("finding offsets of '{}' at timestamp {ts}", args.topic))?;
        return Ok(found
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    _ => Offset::End,
                };
                (e.partition(), offset)
            })
            .collect());
    }
    let offset = match args.offset {
        Some(o) => Offset::Offset(o),
        None => Offset::Beginning,
    };
    Ok(chosen.iter().map(|p| (*p, offset)).collect())
}
