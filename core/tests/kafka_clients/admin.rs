//! Topic administration through librdkafka's AdminClient (CreateTopics, DeleteTopics).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaErrorCode;

use crate::harness::{CLIENT_TIMEOUT, TestBroker, topic_partitions};

/// Awaits an admin request, failing the test if it errs as a whole or takes too long.
async fn with_deadline<T>(request: impl Future<Output = KafkaResult<T>>) -> T {
    tokio::time::timeout(CLIENT_TIMEOUT * 2, request)
        .await
        .expect("admin request timed out")
        .expect("admin request failed")
}

#[tokio::test]
async fn admin_creates_and_deletes_topics() {
    // Proves CreateTopics and DeleteTopics from a Kafka admin client change the log and
    // the metadata clients see, and that their per-topic errors are Kafka's
    // (TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION), which tools branch on. Config
    // sent with CreateTopics becomes the topic's override.
    const TOPIC: &str = "made-by-admin";
    let broker = TestBroker::start();
    let admin: AdminClient<DefaultClientContext> = broker.client_config().create().unwrap();
    let options = AdminOptions::new()
        .request_timeout(Some(CLIENT_TIMEOUT))
        .operation_timeout(Some(CLIENT_TIMEOUT));

    let new_topic =
        NewTopic::new(TOPIC, 4, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let created = with_deadline(admin.create_topics([&new_topic], &options)).await;
    assert_eq!(created, vec![Ok(TOPIC.to_string())]);
    let described = broker.log().describe_topic(TOPIC).unwrap();
    assert_eq!(described.partitions.len(), 4);
    assert_eq!(
        described.overrides.get("retention.ms").map(String::as_str),
        Some("3600000"),
        "the topic config sent with CreateTopics"
    );
    let consumer = broker.consumer("admin");
    assert_eq!(topic_partitions(&consumer).get(TOPIC).copied(), Some(4));

    let again = with_deadline(admin.create_topics([&new_topic], &options)).await;
    assert_eq!(
        again,
        vec![Err((
            TOPIC.to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    let deleted = with_deadline(admin.delete_topics(&[TOPIC], &options)).await;
    assert_eq!(deleted, vec![Ok(TOPIC.to_string())]);
    assert!(!broker.log().list_topics().iter().any(|t| t == TOPIC));
    assert_eq!(topic_partitions(&consumer).get(TOPIC), None);

    let again = with_deadline(admin.delete_topics(&[TOPIC], &options)).await;
    assert_eq!(
        again,
        vec![Err((
            TOPIC.to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
}
