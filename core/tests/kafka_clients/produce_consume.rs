//! Producing with librdkafka and consuming it back: keys, values, headers, partitions and
//! offsets survive the trip; every acks level and every codec delivers; an idempotent
//! producer writes each record exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_core::record::partition_for_key;

use crate::harness::{CLIENT_TIMEOUT, Sent, TestBroker, assert_nothing_more, consume, delivered};

/// Assigns every partition of `topic` from the beginning.
fn assign_all(consumer: &rdkafka::consumer::BaseConsumer, topic: &str, partitions: i32) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
}

/// Offsets by partition of consumed messages, in arrival order.
fn offsets_by_partition(messages: &[rdkafka::message::OwnedMessage]) -> BTreeMap<i32, Vec<i64>> {
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for m in messages {
        by_partition
            .entry(m.partition())
            .or_default()
            .push(m.offset());
    }
    by_partition
}

#[tokio::test]
async fn keyed_records_round_trip_with_acks_all() {
    // Proves the basic Kafka contract with a real client: records produced with acks=all
    // come back with the same key, value and headers, each keyed record sits in the
    // partition Kafka's murmur2 partitioner picks (so Java and librdkafka producers agree
    // with Sluice's embedded producer), and each partition's offsets are 0, 1, 2, ...
    const TOPIC: &str = "orders";
    const PARTITIONS: i32 = 4;
    const RECORDS: usize = 200;
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, PARTITIONS);
    let producer = broker.producer(&[]);

    let mut sent = BTreeMap::new();
    let mut reports = Vec::new();
    for i in 0..RECORDS {
        let key = format!("customer-{}", i % 37);
        let value = format!("order {i}");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "index",
                value: Some(&i.to_string()),
            })
            .insert(Header {
                key: "empty",
                value: None::<&str>,
            });
        let record = FutureRecord::to(TOPIC)
            .key(&key)
            .payload(&value)
            .headers(headers);
        reports.push((
            key.clone(),
            producer.send_result(record).map_err(|(e, _)| e).unwrap(),
        ));
        sent.insert(
            value.clone().into_bytes(),
            Sent {
                key: Some(key.into_bytes()),
                value: Some(value.into_bytes()),
                headers: vec![
                    ("index".into(), Some(i.to_string().into_bytes())),
                    ("empty".into(), None),
                ],
            },
        );
    }
    for (key, report) in reports {
        let delivery = delivered(async { report.await.unwrap() }).await;
        assert_eq!(
            delivery.partition,
            partition_for_key(key.as_bytes(), PARTITIONS),
            "key {key} delivered to the wrong partition"
        );
    }

    let consumer = broker.consumer("round-trip");
    assign_all(&consumer, TOPIC, PARTITIONS);
    let messages = consume(&consumer, RECORDS, CLIENT_TIMEOUT);
    for m in &messages {
        let key = m.key().unwrap();
        assert_eq!(m.partition(), partition_for_key(key, PARTITIONS));
        let expected = sent.get(m.payload().unwrap()).expect("a record we sent");
        assert_eq!(&Sent::of(m), expected);
    }
    for (partition, offsets) in offsets_by_partition(&messages) {
        let contiguous: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, contiguous, "offsets of partition {partition}");
    }
    assert_nothing_more(&consumer, Duration::from_millis(300));
}

/// Produces 50 records with `acks` through a BaseProducer and consumes them back.
fn acks_deliver(acks: &str) {
    const TOPIC: &str = "acks";
    const RECORDS: usize = 50;
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, 1);
    let mut config = broker.producer_config();
    config.set("acks", acks);
    let producer: BaseProducer = config.create().unwrap();
    for i in 0..RECORDS {
        let value = format!("acks={acks} record {i}");
        producer
            .send(BaseRecord::<(), _>::to(TOPIC).partition(0).payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    // flush() waits out every delivery report (with acks=0, "written to the socket");
    // whether the records really landed is what the consumer checks below.
    producer.flush(CLIENT_TIMEOUT).unwrap();

    let consumer = broker.consumer("acks");
    assign_all(&consumer, TOPIC, 1);
    let messages = consume(&consumer, RECORDS, CLIENT_TIMEOUT);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert_eq!(
            m.payload().unwrap(),
            format!("acks={acks} record {i}").as_bytes()
        );
    }
}

#[test]
fn acks_0_delivers() {
    // Proves acks=0 produce requests are appended and, per the protocol, get no response:
    // a response would arrive with an unexpected correlation id and librdkafka would drop
    // the connection, losing or reordering later records.
    acks_deliver("0");
}

#[test]
fn acks_1_delivers() {
    // Proves acks=1 (leader-only) produce requests are appended and acknowledged.
    acks_deliver("1");
}

/// Produces compressible records with `codec`, consumes them back, and checks the stored
/// batches carry the codec (so the compressed path really ran both ways).
async fn codec_round_trips(codec: &str, compression_id: i16) {
    const RECORDS: usize = 40;
    let topic = format!("codec-{codec}");
    let broker = TestBroker::start();
    broker.create_topic(&topic, 1);
    let producer = broker.producer(&[("compression.codec", codec), ("linger.ms", "50")]);
    let values: Vec<String> = (0..RECORDS)
        .map(|i| format!("{i:04} {}", "sluice compresses well ".repeat(20)))
        .collect();
    let mut reports = Vec::new();
    for value in &values {
        let record = FutureRecord::<(), _>::to(&topic)
            .partition(0)
            .payload(value);
        reports.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for report in reports {
        delivered(async { report.await.unwrap() }).await;
    }

    let consumer = broker.consumer("codecs");
    assign_all(&consumer, &topic, 1);
    let messages = consume(&consumer, RECORDS, CLIENT_TIMEOUT);
    for (m, value) in messages.iter().zip(&values) {
        assert_eq!(m.payload().unwrap(), value.as_bytes(), "codec {codec}");
    }
    let batches = broker.stored_batches(&topic, 0);
    assert!(!batches.is_empty());
    for batch in batches {
        assert_eq!(
            batch.compression_id, compression_id,
            "codec {codec}: stored batch at offset {} has compression id {}",
            batch.base_offset, batch.compression_id
        );
    }
}

#[tokio::test]
async fn codec_none_round_trips() {
    // Proves uncompressed batches from librdkafka are stored and served as sent.
    codec_round_trips("none", 0).await;
}

#[tokio::test]
async fn codec_gzip_round_trips() {
    // Proves gzip batches from librdkafka are accepted and served back decodable.
    codec_round_trips("gzip", 1).await;
}

#[tokio::test]
async fn codec_snappy_round_trips() {
    // Proves snappy (xerial framing as librdkafka writes it) batches round-trip.
    codec_round_trips("snappy", 2).await;
}

#[tokio::test]
async fn codec_lz4_round_trips() {
    // Proves LZ4-frame batches from librdkafka round-trip.
    codec_round_trips("lz4", 3).await;
}

#[tokio::test]
async fn codec_zstd_round_trips() {
    // Proves zstd batches round-trip (librdkafka needs Produce v7+ for zstd, so this also
    // proves the broker advertises it).
    codec_round_trips("zstd", 4).await;
}

#[tokio::test]
async fn idempotent_producer_writes_each_record_once() {
    // Proves enable.idempotence=true works end to end: librdkafka gets a producer id
    // (InitProducerId), its batches are stored with that id and gap-free sequences, and
    // every record is in the log exactly once.
    const TOPIC: &str = "idempotent";
    const PARTITIONS: i32 = 2;
    const RECORDS: usize = 100;
    let broker = TestBroker::start();
    broker.create_topic(TOPIC, PARTITIONS);
    let producer = broker.producer(&[("enable.idempotence", "true")]);
    let mut reports = Vec::new();
    for i in 0..RECORDS {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let record = FutureRecord::to(TOPIC).key(&key).payload(&value);
        reports.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for report in reports {
        delivered(async { report.await.unwrap() }).await;
    }

    let consumer = broker.consumer("idempotent");
    assign_all(&consumer, TOPIC, PARTITIONS);
    let messages = consume(&consumer, RECORDS, CLIENT_TIMEOUT);
    assert_nothing_more(&consumer, Duration::from_millis(300));
    let mut values: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| m.payload().unwrap().to_vec())
        .collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), RECORDS, "a record was duplicated or lost");

    let mut producer_ids = Vec::new();
    for partition in 0..PARTITIONS {
        let mut next_sequence = 0;
        for batch in broker.stored_batches(TOPIC, partition) {
            assert!(
                batch.producer_id >= 0,
                "batch without a producer id: {batch:?}"
            );
            assert_eq!(
                batch.base_sequence, next_sequence,
                "partition {partition}: {batch:?}"
            );
            next_sequence += batch.record_count;
            producer_ids.push(batch.producer_id);
        }
    }
    producer_ids.sort_unstable();
    producer_ids.dedup();
    assert_eq!(
        producer_ids.len(),
        1,
        "one producer, one id: {producer_ids:?}"
    );
}
