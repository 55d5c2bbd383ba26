//! Metadata: brokers (just this one), topics, partitions and their leader (this node).
//! Unknown topics named by a client are created when auto-creation is on, as Kafka does.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::server::Context;
use crate::log::NewTopic;

pub(crate) async fn handle(
    ctx: &Context,
    _header: &RequestHeader,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let node = BrokerId(ctx.config.node_id);
    let names: Vec<String> = match &request.topics {
        // v0: an empty list means all topics; v1+: null means all.
        None => ctx.log.list_topics(),
        Some(list) if list.is_empty() && version == 0 => ctx.log.list_topics(),
        Some(list) => list
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
    };
    // Before v4 there is no flag: auto-creation follows the broker setting.
    let may_create =
        ctx.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let topics = names
        .into_iter()
        .map(|name| {
            describe(
                ctx,
                &name,
                may_create && request.topics.is_some(),
                node,
                version,
            )
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(node)
                .with_host(StrBytes::from_string(ctx.advertised_host.clone()))
                .with_port(ctx.advertised_port),
        ])
        .with_cluster_id((version >= 2).then(|| StrBytes::from_static_str("sluice")))
        .with_controller_id(if version >= 1 { node } else { BrokerId(-1) })
        .with_topics(topics)
}

fn describe(
    ctx: &Context,
    name: &str,
    may_create: bool,
    node: BrokerId,
    version: i16,
) -> MetadataResponseTopic {
    let topic_name = Some(TopicName(StrBytes::from_string(name.to_string())));
    let mut count = ctx.log.partition_count(name);
    if count.is_err() && may_create {
        let partitions = if ctx.config.default_partitions > 0 {
            ctx.config.default_partitions
        } else {
            ctx.log.config().default_partitions
        };
        match ctx.log.ensure_topic(NewTopic::new(name, partitions)) {
            Ok(_) => {
                tracing::info!(
                    topic = name,
                    partitions,
                    "auto-created topic on metadata request"
                );
                count = ctx.log.partition_count(name);
            }
            Err(e) => {
                return MetadataResponseTopic::default()
                    .with_name(topic_name)
                    .with_error_code(super::errors::code(&e));
            }
        }
    }
    match count {
        Ok(count) => MetadataResponseTopic::default()
            .with_name(topic_name)
            .with_is_internal(version >= 1 && name.starts_with("__"))
            .with_partitions(
                (0..count)
                    .map(|p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(node)
                            .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                            .with_replica_nodes(vec![node])
                            .with_isr_nodes(vec![node])
                    })
                    .collect(),
            ),
        Err(_) => MetadataResponseTopic::default()
            .with_name(topic_name)
            .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
    }
}
