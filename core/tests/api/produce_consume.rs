//! The embedded producer and consumer end to end: partitioning, every compression
//! codec, and several consumers reading one topic independently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use sluice_core::record::{BatchIter, Header, Record, partition_for_key};
use sluice_core::{
    Compression, ConsumerConfig, NewTopic, Payload, ProducerConfig, ProducerRecord, Seek,
    TopicPartition,
};

use crate::common::{append_with, open, poll_n, read_all, read_from};

#[test]
fn producer_consumer_round_trip() {
    // Guards against records landing in a partition other than Kafka's murmur2 choice,
    // unkeyed records piling onto one partition, deliveries missing their offsets, and the
    // consumer losing or reordering keys, values, headers or timestamps.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("rt", 4)).unwrap();
    // A long linger: batches ship only when full (5 records) or on flush, so the sticky
    // partitioner's moves are deterministic.
    let producer = log
        .producer(
            ProducerConfig::default()
                .batch_records(5)
                .linger(Duration::from_secs(600)),
        )
        .unwrap();

    let mut sent = Vec::new();
    for i in 0..100i64 {
        let key = format!("user-{}", i % 17);
        let r = ProducerRecord::to("rt")
            .key(key.clone())
            .value(format!("keyed-{i}"))
            .timestamp(1_700_000_000_000 + i)
            .header("seq", i.to_string())
            .header("kind", "keyed");
        sent.push((
            Some(key),
            format!("keyed-{i}"),
            1_700_000_000_000 + i,
            r.clone(),
        ));
    }
    for i in 0..40i64 {
        let r = ProducerRecord::to("rt")
            .value(format!("unkeyed-{i}"))
            .timestamp(1_700_000_100_000 + i);
        sent.push((None, format!("unkeyed-{i}"), 1_700_000_100_000 + i, r));
    }
    let deliveries: Vec<_> = sent
        .iter()
        .map(|(_, _, _, r)| producer.send(r.clone()).unwrap())
        .collect();
    producer.flush().unwrap();

    // (partition, offset) -> what was sent there.
    let mut expected: BTreeMap<(i32, i64), &ProducerRecord> = BTreeMap::new();
    let mut unkeyed_partitions = BTreeSet::new();
    for ((key, _, ts, r), d) in sent.iter().zip(&deliveries) {
        let meta = d.result().expect("flushed").unwrap();
        assert_eq!(meta.topic, "rt");
        assert_eq!(meta.timestamp, *ts);
        match key {
            Some(k) => assert_eq!(meta.partition, partition_for_key(k.as_bytes(), 4), "{k}"),
            None => {
                unkeyed_partitions.insert(meta.partition);
            }
        }
        assert!(
            expected.insert((meta.partition, meta.offset), r).is_none(),
            "two records got {}-{}",
            meta.partition,
            meta.offset
        );
    }
    assert_eq!(
        unkeyed_partitions,
        (0..4).collect(),
        "unkeyed records should spread over every partition"
    );

    // Offsets in each partition are exactly 0..n.
    for p in 0..4 {
        let offsets: Vec<i64> = expected
            .keys()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
        assert_eq!(
            log.partition("rt", p).unwrap().log_end_offset(),
            offsets.len() as i64
        );
    }

    let mut consumer = log.consumer(ConsumerConfig::default());
    consumer
        .assign((0..4).map(|p| TopicPartition::new("rt", p)).collect())
        .unwrap();
    let got = poll_n(&mut consumer, sent.len());
    assert_eq!(got.len(), sent.len());
    let mut last: HashMap<i32, i64> = HashMap::new();
    for r in &got {
        let prev = last.insert(r.partition, r.offset).unwrap_or(-1);
        assert!(r.offset > prev, "partition {} out of order", r.partition);
        let want = expected[&(r.partition, r.offset)];
        assert_eq!(r.topic, "rt");
        assert_eq!(r.key, want.key);
        assert_eq!(r.value, want.value);
        assert_eq!(Some(r.timestamp), want.timestamp);
        assert_eq!(r.headers, want.headers);
    }
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
}

#[test]
fn every_compression_codec_round_trips() {
    // Guards against a codec that encodes but does not decode (or silently stores records
    // uncompressed) on the append and read paths, including tombstones, null keys and headers.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let records: Vec<Record> = (0..300i64)
        .map(|i| Record {
            offset: i % 100,
            timestamp: 5_000 + i,
            key: (i % 7 != 0).then(|| Bytes::from(format!("key-{}", i % 13))),
            value: (i % 11 != 0).then(|| Bytes::from("abcdefgh".repeat(1 + (i % 20) as usize))),
            headers: vec![Header {
                key: format!("h{}", i % 3),
                value: (i % 2 == 0).then(|| Bytes::from(i.to_string())),
            }],
        })
        .collect();
    let mut sizes = BTreeMap::new();
    for codec in Compression::ALL {
        let topic = format!("codec-{codec:?}").to_lowercase();
        log.create_topic(NewTopic::new(&topic, 1)).unwrap();
        for (n, chunk) in records.chunks(100).enumerate() {
            let info = append_with(&log, &topic, 0, chunk, codec);
            assert_eq!(info.base_offset, n as i64 * 100);
            assert_eq!(info.last_offset, n as i64 * 100 + 99);
        }
        let read = log.read(&topic, 0, 0, 1 << 20).unwrap();
        for item in BatchIter::new(&read.records) {
            let (_, header) = item.unwrap();
            assert_eq!(header.attributes().compression_id(), codec as i16);
        }
        let back = read_all(&log, &topic, 0);
        assert_eq!(back.len(), records.len(), "{codec:?}");
        for (i, (got, sent)) in back.iter().zip(&records).enumerate() {
            assert_eq!(got.offset, i as i64, "{codec:?}");
            assert_eq!(
                (&got.key, &got.value, got.timestamp, &got.headers),
                (&sent.key, &sent.value, sent.timestamp, &sent.headers),
                "{codec:?} offset {i}"
            );
        }
        sizes.insert(
            format!("{codec:?}"),
            log.describe_topic(&topic).unwrap().partitions[0].size_bytes,
        );

        // The producer path with the same codec.
        let producer = log
            .producer(ProducerConfig::default().compression(codec))
            .unwrap();
        for i in 0..20 {
            producer
                .send(
                    ProducerRecord::to(&topic)
                        .key("p")
                        .value(format!("via-producer-{i}")),
                )
                .unwrap();
        }
        producer.flush().unwrap();
        let tail = read_from(&log, &topic, 0, 300, 1 << 20);
        let values: Vec<_> = tail.iter().map(|r| r.value.clone().unwrap()).collect();
        let want: Vec<_> = (0..20)
            .map(|i| Bytes::from(format!("via-producer-{i}")))
            .collect();
        assert_eq!(values, want, "{codec:?}");
    }
    // The values are highly repetitive: every real codec must beat storing them raw.
    let none = sizes["None"];
    for (codec, size) in &sizes {
        if codec != "None" {
            assert!(*size < none, "{codec} stored {size} bytes, none {none}");
        }
    }
}

#[test]
fn many_consumers_read_independently() {
    // Guards against consumers sharing state: each of several concurrent consumers (with no
    // group) must see every record of the topic, in order, while a producer is writing.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("fan", 3)).unwrap();
    const N: usize = 3_000;
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut c = log.consumer(ConsumerConfig::default());
                c.assign((0..3).map(|p| TopicPartition::new("fan", p)).collect())
                    .unwrap();
                poll_n(&mut c, N)
            })
        })
        .collect();
    let producer = log
        .producer(ProducerConfig::default().batch_records(50))
        .unwrap();
    for i in 0..N {
        producer
            .send(
                ProducerRecord::to("fan")
                    .key(format!("k{i}"))
                    .value(format!("v{i}")),
            )
            .unwrap();
    }
    producer.flush().unwrap();
    for reader in readers {
        let got = reader.join().unwrap();
        assert_eq!(got.len(), N);
        let mut seen = BTreeSet::new();
        let mut last: HashMap<i32, i64> = HashMap::new();
        for r in &got {
            assert!(seen.insert((r.partition, r.offset)));
            assert!(r.offset > last.insert(r.partition, r.offset).unwrap_or(-1));
            let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
            let value = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
            assert_eq!(key[1..], value[1..]);
        }
    }
}

#[test]
fn send_all_places_records_as_send_does_and_flush_reports_its_failures() {
    // Guards `Producer::send_all` (no delivery per record) against placing records
    // differently from `send` (murmur2, sticky moves, batch boundaries, sequences), and
    // against losing a failed batch: with no delivery to hold it, the next flush must.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("one-by-one", 3)).unwrap();
    log.create_topic(NewTopic::new("all-at-once", 3)).unwrap();
    log.create_topic(NewTopic::new("payloads", 3)).unwrap();
    let config = ProducerConfig::default()
        .batch_records(5)
        .linger(Duration::from_secs(600));
    let records = |topic: &'static str| {
        (0..40i64).map(move |i| {
            let r = ProducerRecord::to(topic)
                .value(format!("v{i}"))
                .timestamp(1_700_000_000_000 + i);
            if i % 3 == 0 {
                r
            } else {
                r.key(format!("k{}", i % 7))
            }
        })
    };
    let single = log.producer(config.clone()).unwrap();
    for r in records("one-by-one") {
        single.send(r).unwrap();
    }
    single.flush().unwrap();
    let many = log.producer(config.clone()).unwrap();
    many.send_all(records("all-at-once")).unwrap();
    many.flush().unwrap();
    // `send_all_to`: the same records as payloads of one topic.
    let payloads = log.producer(config.clone()).unwrap();
    let owned: Vec<_> = records("payloads").collect();
    payloads
        .send_all_to(
            "payloads",
            owned.iter().map(|r| Payload {
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                timestamp: r.timestamp,
            }),
        )
        .unwrap();
    payloads.flush().unwrap();
    for p in 0..3 {
        let a = read_all(&log, "one-by-one", p);
        let b = read_all(&log, "all-at-once", p);
        let c = read_all(&log, "payloads", p);
        let fields = |rs: &[Record]| -> Vec<_> {
            rs.iter()
                .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
                .collect()
        };
        assert_eq!(fields(&a), fields(&b), "partition {p}");
        assert_eq!(fields(&a), fields(&c), "partition {p}");
    }
    assert!(
        payloads
            .send_all_to("no-such-topic", [Payload::default()])
            .is_err(),
        "a missing topic is an error"
    );

    log.create_topic(NewTopic::new("doomed", 1)).unwrap();
    many.send_all([ProducerRecord::to("doomed").value("lost")])
        .unwrap();
    log.delete_topic("doomed").unwrap();
    assert!(
        many.flush().is_err(),
        "the failed batch must fail the flush"
    );
    many.flush().unwrap();
}

#[test]
fn sticky_partition_keeps_cycling() {
    // Guards against the sticky partitioner sticking to partition 0 once it has gone round
    // every partition (its counter passed the partition count and never matched again).
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("sticky", 3)).unwrap();
    let producer = log
        .producer(
            ProducerConfig::default()
                .batch_records(5)
                .linger(Duration::from_secs(600)),
        )
        .unwrap();
    let deliveries: Vec<_> = (0..60)
        .map(|i| {
            producer
                .send(ProducerRecord::to("sticky").value(format!("v{i}")))
                .unwrap()
        })
        .collect();
    producer.flush().unwrap();
    let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    for d in deliveries {
        *per_partition
            .entry(d.result().unwrap().unwrap().partition)
            .or_insert(0) += 1;
    }
    // Twelve full batches of 5, round robin: four per partition.
    assert_eq!(per_partition.into_values().collect::<Vec<_>>(), vec![20; 3]);
}

#[test]
fn poll_batch_lends_exactly_what_poll_returns() {
    // Guards against the borrowing poll diverging from `poll`: records lost or repeated
    // where a poll's worth ends inside a fetch, keys, values or headers pointing at the
    // wrong bytes (compressed batches are read from a decompressed copy), the wrong topic
    // or partition, and positions that skip records still held.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut partitions = Vec::new();
    for (topic, codec) in [("lend-a", Compression::None), ("lend-b", Compression::Lz4)] {
        log.create_topic(NewTopic::new(topic, 2)).unwrap();
        for p in 0..2 {
            partitions.push(TopicPartition::new(topic, p));
            for batch in 0..3i64 {
                let records: Vec<Record> = (0..7i64)
                    .map(|i| {
                        let n = batch * 7 + i;
                        Record {
                            offset: i,
                            timestamp: 1_000 + n,
                            key: (n % 3 != 0).then(|| Bytes::from(format!("k{topic}{p}-{n}"))),
                            value: (n % 5 != 0).then(|| Bytes::from(format!("v{topic}{p}-{n}"))),
                            headers: (n % 4 == 0)
                                .then(|| Header {
                                    key: format!("h{n}"),
                                    value: (n % 8 == 0).then(|| Bytes::from(n.to_string())),
                                })
                                .into_iter()
                                .collect(),
                        }
                    })
                    .collect();
                append_with(&log, topic, p, &records, codec);
            }
        }
    }
    let config = || ConsumerConfig::default().max_poll_records(5);
    let mut reference = log.consumer(config());
    reference.assign(partitions.clone()).unwrap();
    let want = poll_n(&mut reference, 84);
    assert_eq!(want.len(), 84);

    let mut lender = log.consumer(config());
    lender.assign(partitions.clone()).unwrap();
    let mut got = Vec::new();
    let mut round = 0;
    while got.len() < want.len() && round < 1_000 {
        round += 1;
        // Alternate the two polls on one consumer: they share its buffer.
        if round % 3 == 0 {
            got.extend(lender.poll(Duration::from_millis(100)).unwrap());
            continue;
        }
        let polled = lender.poll_batch(Duration::from_millis(100)).unwrap();
        assert!(polled.len() <= 5, "a poll's worth is max_poll_records");
        assert_eq!(polled.iter().len(), polled.len());
        for (i, r) in polled.iter().enumerate() {
            assert_eq!(polled.get(i), Some(r));
            // Held records are not consumed yet: the position is the first one held.
            let tp = TopicPartition::new(r.topic, r.partition);
            assert!(lender.position(&tp).unwrap() > r.offset);
        }
        let owned: Vec<_> = polled.iter().collect();
        let copies = polled.clone().into_records();
        for (r, copy) in owned.iter().zip(&copies) {
            assert_eq!(
                (r.topic, r.partition, r.offset, r.timestamp),
                (
                    copy.topic.as_str(),
                    copy.partition,
                    copy.offset,
                    copy.timestamp
                )
            );
            assert_eq!(r.key, copy.key.as_deref());
            assert_eq!(r.value, copy.value.as_deref());
            assert_eq!(r.headers, copy.headers.as_slice());
        }
        got.extend(copies);
    }
    assert_eq!(got, want);
    assert!(
        lender
            .poll_batch(Duration::from_millis(20))
            .unwrap()
            .is_empty()
    );

    // A seek drops what is held for that partition only.
    lender.seek_all(Seek::Beginning).unwrap();
    let first = lender.poll_batch(Duration::from_millis(100)).unwrap();
    let tp = TopicPartition::new(first.get(0).unwrap().topic, first.get(0).unwrap().partition);
    lender.seek(&tp, Seek::Offset(20)).unwrap();
    let mut rest = Vec::new();
    for _ in 0..100 {
        let polled = lender.poll_batch(Duration::from_millis(20)).unwrap();
        if polled.is_empty() {
            break;
        }
        rest.extend(polled.into_records());
    }
    let of_tp: Vec<i64> = rest
        .iter()
        .filter(|r| r.topic == tp.topic && r.partition == tp.partition)
        .map(|r| r.offset)
        .collect();
    assert_eq!(of_tp, vec![20], "after the seek, {tp} resumes at 20");
    // The other three partitions' 21 records each come whole.
    assert_eq!(rest.len(), 1 + 3 * 21);
}
