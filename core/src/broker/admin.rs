//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions (grow a topic) and
//! DeleteRecords (advance a partition's log start offset).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::code;
use super::server::Context;
use crate::config::TopicConfig;
use crate::group::CONSUMER_OFFSETS_TOPIC;
use crate::log::{NewTopic, validate_topic_name};

fn message(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

pub(crate) async fn create_topics(
    ctx: &Context,
    _header: &RequestHeader,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let message = |s: String| if version >= 1 { message(s) } else { None };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            if topic.replication_factor > 1 {
                return result
                    .with_error_code(ResponseError::InvalidReplicationFactor.code())
                    .with_error_message(message(format!(
                        "replication factor {} is larger than this single-node cluster (1)",
                        topic.replication_factor
                    )));
            }
            let partitions = if topic.num_partitions == -1 {
                ctx.log.config().default_partitions
            } else if !topic.assignments.is_empty() {
                topic.assignments.len() as i32
            } else {
                topic.num_partitions
            };
            if partitions < 1 {
                return result
                    .with_error_code(ResponseError::InvalidPartitions.code())
                    .with_error_message(message(format!(
                        "{partitions} partitions: a topic needs at least 1"
                    )));
            }
            let config: BTreeMap<String, String> = topic
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let checked = validate_topic_name(&name)
                .and_then(|()| TopicConfig::resolve(ctx.log.config(), &config));
            let outcome = match checked {
                Err(e) => Err(e),
                Ok(_) if request.validate_only => {
                    if ctx.log.partition_count(&name).is_ok() {
                        Err(crate::Error::TopicExists {
                            topic: name.clone(),
                        })
                    } else {
                        Ok(())
                    }
                }
                Ok(_) => ctx.log.create_topic(NewTopic {
                    name: name.clone(),
                    partitions,
                    config,
                }),
            };
            match outcome {
                Ok(()) if version >= 5 => result
                    .with_num_partitions(partitions)
                    .with_replication_factor(1),
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(code(&e))
                    .with_error_message(message(e.to_string())),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

pub(crate) async fn delete_topics(
    ctx: &Context,
    _header: &RequestHeader,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let message = |s: String| if version >= 5 { message(s) } else { None };
    // v0-5 name topics in `topic_names`; v6 in `topics` (by name; ids are not kept).
    let names: Vec<Option<String>> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| Some(n.0.to_string()))
            .collect()
    };
    let responses = names
        .into_iter()
        .map(|name| {
            let Some(name) = name else {
                return DeletableTopicResult::default()
                    .with_error_code(ResponseError::UnknownTopicId.code())
                    .with_error_message(message("this broker deletes topics by name only".into()));
            };
            let result = DeletableTopicResult::default().with_name(Some(
                kafka_protocol::messages::TopicName(StrBytes::from_string(name.clone())),
            ));
            match ctx.log.delete_topic(&name) {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(code(&e))
                    .with_error_message(message(e.to_string())),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// CreatePartitions: grows topics. Every partition is led by this node with one replica,
/// so explicit assignments may name only this node.
pub(crate) async fn create_partitions(
    ctx: &Context,
    _header: &RequestHeader,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let mut mentions: BTreeMap<&str, usize> = BTreeMap::new();
    for topic in &request.topics {
        *mentions.entry(topic.name.0.as_str()).or_default() += 1;
    }
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let outcome = if mentions.get(topic.name.0.as_str()) > Some(&1) {
                Err((
                    ResponseError::InvalidRequest.code(),
                    format!(
                        "topic '{}' appears more than once in the request",
                        topic.name.0
                    ),
                ))
            } else {
                grow(ctx, topic, request.validate_only)
            };
            match outcome {
                Ok(()) => result,
                Err((error, text)) => result
                    .with_error_code(error)
                    .with_error_message(message(text)),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

fn grow(
    ctx: &Context,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let name = topic.name.0.as_str();
    let refused = |e: crate::Error| (code(&e), e.to_string());
    let current = ctx.log.partition_count(name).map_err(refused)?;
    if topic.count <= current {
        return Err(refused(crate::Error::PartitionCountNotIncreased {
            topic: name.to_string(),
            current,
            requested: topic.count,
        }));
    }
    if let Some(assignments) = &topic.assignments {
        let added = topic.count - current;
        let node = ctx.config.node_id;
        if assignments.len() != added as usize {
            return Err((
                ResponseError::InvalidReplicaAssignment.code(),
                format!(
                    "{} assignments for {added} new partitions of '{name}': give one per new partition, or none",
                    assignments.len()
                ),
            ));
        }
        if let Some(bad) = assignments
            .iter()
            .find(|a| a.broker_ids != [BrokerId(node)])
        {
            let ids: Vec<i32> = bad.broker_ids.iter().map(|b| b.0).collect();
            return Err((
                ResponseError::InvalidReplicaAssignment.code(),
                format!(
                    "replicas {ids:?} for '{name}': this single-node cluster can only assign [{node}]"
                ),
            ));
        }
    }
    if validate_only {
        return Ok(());
    }
    ctx.log
        .create_partitions(name, topic.count)
        .map_err(refused)
}

/// DeleteRecords' offset meaning "everything currently in the partition".
const HIGH_WATERMARK: i64 = -1;

/// DeleteRecords: advances each partition's log start offset; records below it are no
/// longer served and their segments are deleted by the cleaner. Answers with the new low
/// watermark, or -1 and an error (OFFSET_OUT_OF_RANGE past the end).
pub(crate) async fn delete_records(
    ctx: &Context,
    _header: &RequestHeader,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    // As in Kafka: trimming them would lose committed offsets or
                    // transaction state on the next start, which rebuilds them from their
                    // records.
                    if name == CONSUMER_OFFSETS_TOPIC || name == super::TRANSACTION_STATE_TOPIC {
                        return result
                            .with_low_watermark(-1)
                            .with_error_code(ResponseError::InvalidTopicException.code());
                    }
                    match delete_before(ctx, name, p.partition_index, p.offset) {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(e) => {
                            tracing::debug!(
                                topic = name,
                                partition = p.partition_index,
                                "DeleteRecords refused: {e}"
                            );
                            result.with_low_watermark(-1).with_error_code(code(&e))
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

fn delete_before(ctx: &Context, topic: &str, partition: i32, offset: i64) -> crate::Result<i64> {
    let partition = ctx.log.partition(topic, partition)?;
    let offset = if offset == HIGH_WATERMARK {
        partition.log_end_offset()
    } else {
        offset
    };
    partition.delete_records_before(offset)
}
