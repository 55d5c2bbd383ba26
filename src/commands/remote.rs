//! The `--bootstrap` backend: `topics`, `produce` and `consume` against a Kafka-protocol
//! broker (`sluice serve`, or any Kafka) through librdkafka, instead of an embedded log.
//!
//! Owns how clients are configured and the lookups every command needs first (does the
//! topic exist, how many partitions has it). Every broker round trip is bounded by
//! [`REQUEST_TIMEOUT`], so an unreachable broker ends a command with an error instead of
//! a hang.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;

/// Longest one metadata, admin or offset request may take before the command fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings every client starts from.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // A typo in a topic name must fail, not create a topic on brokers that allow it.
        .set("allow.auto.create.topics", "false")
        .set("socket.timeout.ms", REQUEST_TIMEOUT.as_millis().to_string());
    config
}

/// An admin client for `topics`.
pub fn admin(bootstrap: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    client_config(bootstrap)
        .create()
        .with_context(|| format!("creating a Kafka admin client for {bootstrap}"))
}

/// Waits for an admin future (librdkafka completes it from its own thread).
pub fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}

/// The error a missing topic gives, worded as the embedded log words it.
pub fn unknown_topic(topic: &str) -> anyhow::Error {
    anyhow::anyhow!("unknown topic '{topic}': create it first (sluice topics create {topic})")
}

/// How many partitions `topic` has; an error naming the topic if it does not exist.
pub fn partition_count<C: ClientContext>(client: &Client<C>, topic: &str) -> anyhow::Result<i32> {
    let metadata = client
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| {
            format!("fetching metadata of topic '{topic}' (is the broker up and reachable?)")
        })?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(unknown_topic(topic));
    };
    match t.error().map(RDKafkaErrorCode::from) {
        None => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Err(unknown_topic(topic)),
        Some(code) => bail!("fetching metadata of topic '{topic}': {code}"),
    }
    if t.partitions().is_empty() {
        return Err(unknown_topic(topic));
    }
    i32::try_from(t.partitions().len()).context("partition count out of range")
}

/// Closes (drops) a group consumer on a thread of its own, waiting at most `limit`.
///
/// librdkafka 2.12 can block a closing consumer for ever in `rd_kafka_assign`, when a
/// rebalance event reaches its queue after its group handler has stopped
/// (confluentinc/librdkafka#4884), and rust-rdkafka's `Drop` serves such events. A close
/// that takes longer than `limit` is left behind with a warning instead of hanging the
/// command; the group then expires the member after its session timeout.
pub fn close_within<C: ConsumerContext + 'static>(consumer: BaseConsumer<C>, limit: Duration) {
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = closed_tx.send(());
        });
    // Had the thread not started, the consumer was closed here, with the closure.
    if closing.is_ok() && closed_rx.recv_timeout(limit).is_err() {
        tracing::warn!(
            "the Kafka consumer did not close within {limit:?} (librdkafka#4884); left \
             behind, the group expires it after its session timeout"
        );
    }
}
