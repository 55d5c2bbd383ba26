//! CreateTopics and DeleteTopics.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::code;
use super::server::Context;
use crate::config::TopicConfig;
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
