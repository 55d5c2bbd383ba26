//! Metadata as librdkafka sees it: the broker list, topics with their partition counts and
//! leaders, and topics created on first produce.

use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;

use crate::harness::{
    AUTO_CREATE_PARTITIONS, CLIENT_TIMEOUT, NODE_ID, TestBroker, delivered, topic_partitions,
};

#[test]
fn metadata_lists_topics_with_partition_counts() {
    // Proves a Metadata request names this broker at its real address and lists every
    // topic with its partition count, each partition led by this broker; without the
    // broker entry and leaders a client cannot route a single produce or fetch.
    let broker = TestBroker::start();
    broker.create_topic("alpha", 1);
    broker.create_topic("beta", 3);
    broker.create_topic("gamma", 8);
    let consumer = broker.consumer("metadata");
    let metadata = consumer.fetch_metadata(None, CLIENT_TIMEOUT).unwrap();

    let brokers: Vec<(i32, String, i32)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    assert_eq!(
        brokers,
        vec![(
            NODE_ID,
            "127.0.0.1".to_string(),
            i32::from(broker.addr().port())
        )]
    );
    for (name, partitions) in [("alpha", 1), ("beta", 3), ("gamma", 8)] {
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .unwrap_or_else(|| panic!("topic {name} missing from metadata"));
        assert_eq!(topic.error(), None, "topic {name}");
        assert_eq!(topic.partitions().len(), partitions, "topic {name}");
        for (i, p) in topic.partitions().iter().enumerate() {
            assert_eq!(p.id(), i as i32, "topic {name}");
            assert_eq!(p.leader(), NODE_ID, "topic {name} partition {i}");
            assert_eq!(p.error(), None, "topic {name} partition {i}");
        }
    }
}

#[tokio::test]
async fn producing_to_unknown_topic_auto_creates_it() {
    // Proves Kafka's auto.create.topics.enable behaviour: the first produce to a topic that
    // does not exist creates it (with the broker's default partition count) and delivers.
    const TOPIC: &str = "born-on-first-write";
    let broker = TestBroker::start();
    let producer = broker.producer(&[]);
    let record = FutureRecord::<(), _>::to(TOPIC).payload("first");
    let delivery = delivered(producer.send(record, CLIENT_TIMEOUT)).await;
    assert_eq!(delivery.offset, 0);

    let consumer = broker.consumer("auto-create");
    let topics = topic_partitions(&consumer);
    assert_eq!(
        topics.get(TOPIC).copied(),
        Some(AUTO_CREATE_PARTITIONS as usize),
        "metadata: {topics:?}"
    );
    assert!(broker.log().list_topics().iter().any(|t| t == TOPIC));
}
