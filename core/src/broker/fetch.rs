//! Fetch (v4-12): whole stored batches, long-polled.
//!
//! Each partition returns the batches from its fetch offset (the whole batch holding it)
//! up to its `partition_max_bytes`, within the request's `max_bytes` — always at least one
//! batch for the first partition with data, as Kafka does, so a batch larger than the
//! limits still gets through. If fewer than `min_bytes` are ready, the request waits for
//! an append (any partition) or `max_wait_ms`, whichever comes first. Sessions (KIP-227)
//! are not kept: every response is a full one (session id 0), which clients accept.
//!
//! read_committed (isolation level 1) returns only whole batches below the partition's last
//! stable offset, and with them the aborted transactions (producer id, first offset) that
//! overlap the returned range, so the client can drop aborted records; markers are stored
//! control batches the client skips. read_uncommitted returns everything below the high
//! watermark and no aborted list.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, RequestHeader};

use super::errors::code;
use super::server::Context;

/// Longest a fetch may park, whatever the client asks: bounds how long shutdown waits.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

pub(crate) async fn handle(
    ctx: &Context,
    _header: &RequestHeader,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    let response = long_poll(ctx, &request, version).await;
    for topic in &response.responses {
        for p in &topic.partitions {
            if let Some(records) = &p.records {
                ctx.metrics.fetched(&topic.topic.0, records);
            }
        }
    }
    response
}

/// Reads until `min_bytes` are ready, an error, shutdown or `max_wait_ms`.
async fn long_poll(ctx: &Context, request: &FetchRequest, version: i16) -> FetchResponse {
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(1) as usize;
    loop {
        let mut changed = ctx.log.notifier().subscribe();
        let (response, bytes, errors) = read_once(ctx, request, version);
        let now = Instant::now();
        if bytes >= min_bytes || errors || now >= deadline {
            return response;
        }
        let mut stopping = ctx.stopping.clone();
        if *stopping.borrow() {
            return response;
        }
        tokio::select! {
            woke = tokio::time::timeout(deadline - now, changed.changed()) => {
                if woke.is_err() {
                    return response;
                }
            }
            // Shutting down: answer with what there is instead of holding shutdown up.
            _ = stopping.changed() => return response,
        }
    }
}

/// Reads every requested partition once. Returns the response, the bytes in it and
/// whether any partition had an error (which answers at once).
fn read_once(ctx: &Context, request: &FetchRequest, version: i16) -> (FetchResponse, usize, bool) {
    // log_start_offset exists from v5.
    let start_of = |p: &crate::log::Partition| {
        if version >= 5 {
            p.log_start_offset()
        } else {
            -1
        }
    };
    let read_committed = request.isolation_level == 1;
    let mut budget = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.topic.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_aborted_transactions(Some(Vec::new()));
            let partition = match ctx.log.partition(&name, p.partition) {
                Ok(partition) => partition,
                Err(e) => {
                    errors = true;
                    partitions.push(
                        data.with_error_code(code(&e))
                            .with_records(Some(Bytes::new())),
                    );
                    continue;
                }
            };
            // At least one batch for the first partition with data; after that, only
            // what fits in what is left of the request's max_bytes.
            let limit = (p.partition_max_bytes.max(0) as usize).min(if total == 0 {
                usize::MAX
            } else {
                budget
            });
            let lso = partition.last_stable_offset();
            let result = if limit == 0 && total > 0 {
                Ok(None)
            } else {
                partition.read(p.fetch_offset, limit.max(1)).map(Some)
            };
            data = match result {
                Ok(read) => {
                    let hw = partition.log_end_offset();
                    let mut records = read.map(|r| r.records).unwrap_or_default();
                    let mut aborted = Vec::new();
                    if read_committed {
                        let (stable, aborted_txns) =
                            partition.stable_part(records, p.fetch_offset, lso);
                        records = stable;
                        aborted = aborted_txns
                            .into_iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset)
                            })
                            .collect();
                    }
                    total += records.len();
                    budget = budget.saturating_sub(records.len());
                    data.with_high_watermark(hw)
                        .with_last_stable_offset(lso.min(hw))
                        .with_aborted_transactions(Some(aborted))
                        .with_log_start_offset(start_of(&partition))
                        .with_records(Some(records))
                }
                Err(e) => {
                    errors = true;
                    let error = if matches!(e, crate::Error::OffsetOutOfRange { .. }) {
                        ResponseError::OffsetOutOfRange.code()
                    } else {
                        tracing::warn!(topic = %name, partition = p.partition, "fetch failed: {e}");
                        code(&e)
                    };
                    data.with_error_code(error)
                        .with_high_watermark(partition.log_end_offset())
                        .with_last_stable_offset(lso)
                        .with_log_start_offset(start_of(&partition))
                        .with_records(Some(Bytes::new()))
                }
            };
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
    )
}
