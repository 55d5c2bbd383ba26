//! The transaction APIs: each checks the producer id and epoch against the coordinator and
//! answers with Kafka's error codes (PRODUCER_FENCED for an older epoch,
//! INVALID_PRODUCER_ID_MAPPING for an unknown id, CONCURRENT_TRANSACTIONS while a commit or
//! abort is being written, INVALID_TXN_STATE for offsets outside a transaction).
//! TxnOffsetCommit v3 also checks the consumer's member id and generation against the
//! broker's group coordinator (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION), as Kafka does.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdResponse, ProducerId,
    RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use crate::broker::server::Context;
use crate::txn::StagedOffset;

fn code<T>(result: Result<T, kafka_protocol::ResponseError>) -> i16 {
    result.err().map_or(0, |e| e.code())
}

/// InitProducerId for a transactional id (from `coordinator::init_producer_id`).
pub(crate) fn init_transactional_producer(
    ctx: &Context,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let result = tokio::task::block_in_place(|| {
        ctx.txn
            .init_producer(transactional_id, timeout_ms, expected, false)
    });
    match result {
        Ok((id, epoch)) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => response.with_error_code(e.code()),
    }
}

pub(crate) async fn add_partitions_to_txn(
    ctx: &Context,
    _header: &RequestHeader,
    request: AddPartitionsToTxnRequest,
    _version: i16,
) -> AddPartitionsToTxnResponse {
    let id = request.v3_and_below_transactional_id.0.to_string();
    let wanted: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let codes = tokio::task::block_in_place(|| {
        ctx.txn.add_partitions(
            &id,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &wanted,
        )
    });
    let mut codes = codes.into_iter();
    let results = request
        .v3_and_below_topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name)
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

pub(crate) async fn add_offsets_to_txn(
    ctx: &Context,
    _header: &RequestHeader,
    request: AddOffsetsToTxnRequest,
    _version: i16,
) -> AddOffsetsToTxnResponse {
    let result = tokio::task::block_in_place(|| {
        ctx.txn.add_offsets(
            &request.transactional_id.0,
            request.producer_id.0,
            request.producer_epoch,
            &request.group_id.0,
        )
    });
    AddOffsetsToTxnResponse::default().with_error_code(code(result))
}

pub(crate) async fn txn_offset_commit(
    ctx: &Context,
    _header: &RequestHeader,
    request: TxnOffsetCommitRequest,
    _version: i16,
) -> TxnOffsetCommitResponse {
    let staged: Vec<StagedOffset> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| StagedOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    // v3 names the consumer's member and generation: a zombie member's offsets are refused
    // before anything is staged.
    let refused = ctx.groups.validate_txn_commit(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
    );
    let error = match refused {
        Some(e) => e.code(),
        None => code(tokio::task::block_in_place(|| {
            ctx.txn.stage_offsets(
                &request.transactional_id.0,
                request.producer_id.0,
                request.producer_epoch,
                &request.group_id.0,
                staged,
            )
        })),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub(crate) async fn end_txn(
    ctx: &Context,
    _header: &RequestHeader,
    request: EndTxnRequest,
    _version: i16,
) -> EndTxnResponse {
    let result = tokio::task::block_in_place(|| {
        ctx.txn.end(
            &request.transactional_id.0,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
        )
    });
    EndTxnResponse::default().with_error_code(code(result))
}
