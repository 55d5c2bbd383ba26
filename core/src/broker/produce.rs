//! Produce (v0-9): append each partition's records as they arrived.
//!
//! Only the v2 record format is accepted (what every client since Kafka 0.11 sends); older
//! message sets are rejected per partition with an error. acks=0 gets no response; acks=1
//! and acks=all both answer once the append returned, which under the partition's
//! durability mode is what acknowledged means (docs/durability.md; one node has no
//! replicas to wait for).
//!
//! A transactional batch is appended only if its producer id and epoch are current for
//! its transactional id and the partition was added to the open transaction
//! (INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE otherwise), under the coordinator's lock so
//! no marker can overtake it.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::errors::code;
use super::server::Context;

pub(crate) async fn handle(
    ctx: &Context,
    _header: &RequestHeader,
    request: ProduceRequest,
    version: i16,
) -> ProduceResponse {
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let mut response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let Some(records) = data.records else {
                partitions.push(
                    response.with_error_code(kafka_protocol::ResponseError::InvalidRecord.code()),
                );
                continue;
            };
            // The append writes base offsets into the buffer, so it needs its own copy.
            let mut bytes = records.to_vec();
            let transactional = crate::record::BatchHeader::peek(&bytes)
                .ok()
                .filter(|h| h.attributes().transactional())
                .map(|h| (h.producer_id(), h.producer_epoch()));
            let outcome = tokio::task::block_in_place(|| match transactional {
                Some((producer_id, epoch)) => ctx
                    .txn
                    .produce(producer_id, epoch, &name, data.index, || {
                        ctx.log.append(&name, data.index, &mut bytes)
                    })
                    .map_err(|e| e.code()),
                None => Ok(ctx.log.append(&name, data.index, &mut bytes)),
            });
            let outcome = match outcome {
                Ok(result) => result,
                Err(error) => {
                    partitions.push(response.with_error_code(error));
                    continue;
                }
            };
            response = match outcome {
                Ok(info) => {
                    ctx.metrics.produced(&name, &bytes);
                    let start = ctx
                        .log
                        .partition(&name, data.index)
                        .map_or(-1, |p| p.log_start_offset());
                    response
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(if version >= 2 {
                            info.log_append_time.unwrap_or(-1)
                        } else {
                            -1
                        })
                        .with_log_start_offset(if version >= 5 { start } else { -1 })
                }
                Err(e) => {
                    tracing::debug!(topic = %name, partition = data.index, "produce rejected: {e}");
                    response.with_error_code(code(&e)).with_error_message(
                        (version >= 8).then(|| StrBytes::from_string(e.to_string())),
                    )
                }
            };
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    ProduceResponse::default().with_responses(responses)
}
