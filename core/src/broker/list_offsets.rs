//! ListOffsets (v1-6): earliest (-2), latest (-1), or the first record at or after a
//! timestamp. Latest is the high watermark, or for read_committed (isolation level 1,
//! from v2) the last stable offset, as in Kafka.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};

use super::errors::code;
use super::server::Context;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(crate) async fn handle(
    ctx: &Context,
    _header: &RequestHeader,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let read_committed = version >= 2 && request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(if version >= 4 { 0 } else { -1 });
                    let partition = match ctx.log.partition(&name, p.partition_index) {
                        Ok(partition) => partition,
                        Err(e) => return response.with_error_code(code(&e)),
                    };
                    match p.timestamp {
                        LATEST if read_committed => {
                            response.with_offset(partition.last_stable_offset())
                        }
                        LATEST => response.with_offset(partition.log_end_offset()),
                        EARLIEST => response.with_offset(partition.log_start_offset()),
                        ts => match partition.record_at_or_after(ts) {
                            Ok(Some((offset, timestamp))) => {
                                response.with_offset(offset).with_timestamp(timestamp)
                            }
                            Ok(None) => response,
                            Err(e) => response.with_error_code(code(&e)),
                        },
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
