//! The coordinator APIs a single node answers for itself: FindCoordinator (always this
//! node), InitProducerId (idempotent producers; transactional ids are handed to `txn/`),
//! OffsetCommit and OffsetFetch (committed offsets on `__consumer_offsets`, shared with
//! embedded consumers of the same log).
//!
//! A commit for a group with members (see `group/`) must come from a current member of the
//! current generation, and not while assignments are being handed out
//! (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS); a group without members
//! takes anonymous commits (generation -1), as from Kafka's "simple" consumers that `assign`
//! partitions themselves.

use std::collections::BTreeMap;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProducerId, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::code;
use super::server::Context;

pub(crate) async fn find_coordinator(
    ctx: &Context,
    _header: &RequestHeader,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let node = BrokerId(ctx.config.node_id);
    let host = StrBytes::from_string(ctx.advertised_host.clone());
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(ctx.advertised_port)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_node_id(node)
        .with_host(host)
        .with_port(ctx.advertised_port)
}

pub(crate) async fn init_producer_id(
    ctx: &Context,
    _header: &RequestHeader,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(id) = &request.transactional_id {
        // From v3 a producer may present its current id and epoch to have it bumped.
        let expected = (version >= 3 && request.producer_id.0 >= 0)
            .then_some((request.producer_id.0, request.producer_epoch));
        return super::txn::init_transactional_producer(
            ctx,
            &id.0,
            request.transaction_timeout_ms,
            expected,
        );
    }
    match ctx.log.init_producer_id() {
        Ok((id, epoch)) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => response.with_error_code(code(&e)),
    }
}

pub(crate) async fn offset_commit(
    ctx: &Context,
    _header: &RequestHeader,
    request: OffsetCommitRequest,
    _version: i16,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let refused = ctx.groups.validate_commit(
        &group,
        &request.member_id,
        request.generation_id_or_member_epoch,
    );
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        if let Some(error) = refused {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.code())
                })
                .collect();
            topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
            continue;
        }
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let metadata = p
                .committed_metadata
                .map(|m| m.to_string())
                .unwrap_or_default();
            let result = tokio::task::block_in_place(|| {
                ctx.log.inner.groups.commit(
                    &ctx.log,
                    &group,
                    &[(
                        name.clone(),
                        p.partition_index,
                        p.committed_offset,
                        metadata,
                    )],
                )
            });
            let error = match result {
                Ok(()) => 0,
                Err(e) => code(&e),
            };
            partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error),
            );
        }
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    OffsetCommitResponse::default().with_topics(topics)
}

pub(crate) async fn offset_fetch(
    ctx: &Context,
    _header: &RequestHeader,
    request: OffsetFetchRequest,
    _version: i16,
) -> OffsetFetchResponse {
    let group = request.group_id.0.to_string();
    let committed = ctx.log.group_offsets(&group);
    let wanted: Vec<(String, Vec<i32>)> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect(),
        None => {
            let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in committed.keys() {
                all.entry(topic.clone()).or_default().push(*partition);
            }
            all.into_iter().collect()
        }
    };
    let topics = wanted
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    let entry = committed.get(&(name.clone(), p));
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(entry.map_or(-1, |c| c.offset))
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(StrBytes::from_string(
                            entry.map(|c| c.metadata.clone()).unwrap_or_default(),
                        )))
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
