//! Black-box tests of `sluice-core`'s public API on real files: the embedded producer and
//! consumer, batch reads, segment rolls, seeks, consumer groups, idempotence, retention,
//! compaction, topic administration and configuration parsing.

// Tests fail loudly on the first unexpected error.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::record::{
    BatchIter, Header, ProducerStamp, Record, decode_batch, encode_batch, partition_for_key,
};
use sluice_core::{
    AppendInfo, Compression, Config, ConsumerConfig, ConsumerRecord, Error, Log, NewTopic,
    OffsetReset, ProducerConfig, ProducerRecord, Seek, TopicPartition,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Opens a log without the background thread, so retention and compaction run only when a
/// test asks for them.
fn open(dir: &Path) -> Log {
    Log::options().background(false).open(dir).unwrap()
}

/// A record for `encode_batch`: `offset` is relative to the batch start.
fn record(offset: i64, timestamp: i64, key: Option<&str>, value: Option<&str>) -> Record {
    Record {
        offset,
        timestamp,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Vec::new(),
    }
}

/// Encodes `records` as one plain (non-idempotent) batch and appends it.
fn append(log: &Log, topic: &str, partition: i32, records: &[Record]) -> AppendInfo {
    append_with(log, topic, partition, records, Compression::None)
}

fn append_with(
    log: &Log,
    topic: &str,
    partition: i32,
    records: &[Record],
    codec: Compression,
) -> AppendInfo {
    let mut bytes = encode_batch(records, codec, ProducerStamp::default()).unwrap();
    log.append(topic, partition, &mut bytes).unwrap()
}

/// `(base offset, last offset, bytes)` of every batch in a read result.
fn batches(bytes: &Bytes) -> Vec<(i64, i64, usize)> {
    BatchIter::new(bytes)
        .map(|item| {
            let (_, header) = item.unwrap();
            (
                header.base_offset(),
                header.last_offset(),
                header.batch_bytes(),
            )
        })
        .collect()
}

/// Decodes every record of every batch in a read result.
fn decode_all(bytes: &Bytes) -> Vec<Record> {
    let mut out = Vec::new();
    for item in BatchIter::new(bytes) {
        let (start, header) = item.unwrap();
        if header.attributes().control() {
            continue;
        }
        out.extend(decode_batch(bytes.slice(start..start + header.batch_bytes())).unwrap());
    }
    out
}

/// Every record of a partition from `from` to the end, read with `max_bytes` per read.
fn read_from(log: &Log, topic: &str, partition: i32, from: i64, max_bytes: usize) -> Vec<Record> {
    let mut offset = from;
    let mut out = Vec::new();
    loop {
        let read = log.read(topic, partition, offset, max_bytes).unwrap();
        if read.records.is_empty() {
            assert_eq!(offset, read.high_watermark, "empty read before the end");
            return out;
        }
        for item in BatchIter::new(&read.records) {
            let (start, header) = item.unwrap();
            let batch = read.records.slice(start..start + header.batch_bytes());
            out.extend(
                decode_batch(batch)
                    .unwrap()
                    .into_iter()
                    .filter(|r| r.offset >= offset),
            );
            offset = offset.max(header.last_offset() + 1);
        }
    }
}

/// Every record of a partition, from its log start offset.
fn read_all(log: &Log, topic: &str, partition: i32) -> Vec<Record> {
    let start = log.partition(topic, partition).unwrap().log_start_offset();
    read_from(log, topic, partition, start, 4096)
}

/// Polls until `n` records arrived (or fails after a generous deadline).
fn poll_n(consumer: &mut sluice_core::Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records arrived",
            out.len()
        );
        out.extend(consumer.poll(Duration::from_millis(100)).unwrap());
    }
    out
}

/// The `.log` files of a partition directory, sorted by base offset: `(base, bytes)`.
fn segment_files(dir: &Path) -> Vec<(i64, u64)> {
    let mut files: Vec<(i64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            let base = name.strip_suffix(".log")?.parse::<i64>().ok()?;
            Some((base, e.metadata().unwrap().len()))
        })
        .collect();
    files.sort_unstable();
    files
}

fn partition_dir(log: &Log, topic: &str, partition: i32) -> PathBuf {
    log.partition(topic, partition).unwrap().dir().to_path_buf()
}

fn segments(log: &Log, topic: &str, partition: i32) -> usize {
    log.describe_topic(topic).unwrap().partitions[partition as usize].segments
}

// ---------------------------------------------------------------------------------------
// Producer and consumer
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------

#[test]
fn reads_return_whole_batches() {
    // Guards against reads that cut batches, start at the wrong batch when the offset is
    // inside one, return nothing when max_bytes is smaller than a batch, or blur the
    // difference between the end of the log (empty) and outside it (OffsetOutOfRange).
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("reads", 1)).unwrap();
    let value = "x".repeat(50);
    let make = |n: i64| -> Vec<Record> {
        (0..n)
            .map(|i| record(i, 1_000 + i, Some("k"), Some(&value)))
            .collect()
    };
    let a = append(&log, "reads", 0, &make(5));
    let b = append(&log, "reads", 0, &make(3));
    let c = append(&log, "reads", 0, &make(10));
    assert_eq!((a.base_offset, a.last_offset), (0, 4));
    assert_eq!((b.base_offset, b.last_offset), (5, 7));
    assert_eq!((c.base_offset, c.last_offset), (8, 17));
    assert!(!a.duplicate && a.log_append_time.is_none());

    let all = log.read("reads", 0, 0, 1 << 20).unwrap();
    let all_batches = batches(&all.records);
    let spans: Vec<(i64, i64)> = all_batches.iter().map(|b| (b.0, b.1)).collect();
    assert_eq!(spans, vec![(0, 4), (5, 7), (8, 17)]);
    assert_eq!(all.high_watermark, 18);
    assert_eq!(all.log_start_offset, 0);
    let (size_a, size_b) = (all_batches[0].2, all_batches[1].2);
    assert_eq!(
        all.records.len(),
        all_batches.iter().map(|b| b.2).sum::<usize>()
    );

    let spans_of = |offset: i64, max: usize| -> Vec<(i64, i64)> {
        batches(&log.read("reads", 0, offset, max).unwrap().records)
            .iter()
            .map(|b| (b.0, b.1))
            .collect()
    };
    // Inside a batch: the whole batch holding it comes back.
    assert_eq!(spans_of(6, 1 << 20), vec![(5, 7), (8, 17)]);
    assert_eq!(spans_of(17, 1 << 20), vec![(8, 17)]);
    // max_bytes below one batch still returns that one batch.
    assert_eq!(spans_of(0, 1), vec![(0, 4)]);
    assert_eq!(spans_of(6, 1), vec![(5, 7)]);
    assert_eq!(spans_of(12, 0), vec![(8, 17)]);
    // max_bytes is respected on batch boundaries.
    assert_eq!(spans_of(0, size_a + size_b), vec![(0, 4), (5, 7)]);
    assert_eq!(spans_of(0, size_a + size_b - 1), vec![(0, 4)]);
    // Every returned record decodes and has the offsets the batch says.
    let recs = decode_all(&log.read("reads", 0, 6, 1 << 20).unwrap().records);
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (5..18).collect::<Vec<_>>()
    );

    // At the end: empty. Past it or below zero: out of range.
    let end = log.read("reads", 0, 18, 1 << 20).unwrap();
    assert!(end.records.is_empty());
    assert_eq!(end.high_watermark, 18);
    for bad in [19, 1_000, -1] {
        match log.read("reads", 0, bad, 1 << 20) {
            Err(Error::OffsetOutOfRange {
                offset,
                log_start_offset: 0,
                log_end_offset: 18,
                ..
            }) => assert_eq!(offset, bad),
            other => panic!("read at {bad}: {other:?}"),
        }
    }

    // Below the log start offset: out of range, naming the new start.
    let p = log.partition("reads", 0).unwrap();
    assert_eq!(p.delete_records_before(5).unwrap(), 5);
    match log.read("reads", 0, 4, 1 << 20) {
        Err(Error::OffsetOutOfRange {
            offset: 4,
            log_start_offset: 5,
            ..
        }) => {}
        other => panic!("read below start: {other:?}"),
    }
    let from_start = log.read("reads", 0, 5, 1 << 20).unwrap();
    assert_eq!(from_start.log_start_offset, 5);
    assert_eq!(batches(&from_start.records)[0].0, 5);

    assert!(matches!(
        log.read("reads", 1, 0, 10),
        Err(Error::UnknownPartition { partition: 1, .. })
    ));
    assert!(matches!(
        log.read("nope", 0, 0, 10),
        Err(Error::UnknownTopic { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Segments
// ---------------------------------------------------------------------------------------

#[test]
fn segments_roll_by_size_and_survive_reopen() {
    // Guards against segments that grow past segment.bytes, reads that stop at a segment
    // boundary, and data or offsets lost across a close and reopen.
    let dir = tempfile::tempdir().unwrap();
    let expected: Vec<(i64, String)> = (0..600)
        .map(|i| (i, format!("value-{i:05}-{}", "p".repeat(40))))
        .collect();
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("roll", 1).config("segment.bytes", "1024"))
            .unwrap();
        for chunk in expected.chunks(2) {
            let recs: Vec<Record> = chunk
                .iter()
                .enumerate()
                .map(|(i, (o, v))| record(i as i64, 1_000 + o, Some("k"), Some(v)))
                .collect();
            let info = append(&log, "roll", 0, &recs);
            assert_eq!(info.base_offset, chunk[0].0);
        }
        let files = segment_files(&partition_dir(&log, "roll", 0));
        assert!(files.len() > 50, "only {} segments", files.len());
        assert_eq!(segments(&log, "roll", 0), files.len());
        for (base, size) in &files {
            assert!(*size <= 1024, "segment {base} is {size} bytes");
        }
        // Small reads walk across every segment boundary.
        let back = read_from(&log, "roll", 0, 0, 100);
        let got: Vec<(i64, String)> = back
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected);
        log.close().unwrap();
        assert!(matches!(
            log.create_topic(NewTopic::new("late", 1)),
            Err(Error::Closed)
        ));
    }
    let log = open(dir.path());
    let info = log.describe_topic("roll").unwrap().partitions[0].clone();
    assert_eq!(info.log_end_offset, 600);
    assert_eq!(info.log_start_offset, 0);
    assert_eq!(
        info.segments,
        segment_files(&partition_dir(&log, "roll", 0)).len()
    );
    let back = read_from(&log, "roll", 0, 0, 100);
    assert_eq!(back.len(), 600);
    for (r, (o, v)) in back.iter().zip(&expected) {
        assert_eq!(r.offset, *o);
        assert_eq!(r.value.as_deref(), Some(v.as_bytes()));
    }
    // Appends continue where the log left off.
    let next = append(&log, "roll", 0, &[record(0, 9, None, Some("after"))]);
    assert_eq!(next.base_offset, 600);
}

#[test]
fn segments_roll_by_age() {
    // Guards against segment.ms being ignored: an old active segment must be rolled on the
    // next append, and reads must still span the resulting segments.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("aged", 1).config("segment.ms", "1"))
            .unwrap();
        for i in 0..5 {
            append(
                &log,
                "aged",
                0,
                &[record(0, i, Some("k"), Some(&format!("v{i}")))],
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(segments(&log, "aged", 0), 5);
        let values: Vec<_> = read_all(&log, "aged", 0)
            .into_iter()
            .map(|r| r.value.unwrap())
            .collect();
        assert_eq!(values.len(), 5);
    }
    let log = open(dir.path());
    assert_eq!(segments(&log, "aged", 0), 5);
    let offsets: Vec<i64> = read_all(&log, "aged", 0).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------------------
// Seeks
// ---------------------------------------------------------------------------------------

/// Seeks one partition and returns the offset of the first record polled after it.
fn first_after(consumer: &mut sluice_core::Consumer, tp: &TopicPartition, to: Seek) -> Option<i64> {
    consumer.seek(tp, to).unwrap();
    consumer
        .poll(Duration::from_millis(30))
        .unwrap()
        .first()
        .map(|r| r.offset)
}

#[test]
fn seek_by_offset_timestamp_beginning_and_end() {
    // Guards against Seek::Timestamp landing on a batch start instead of the first record
    // at or after the time, missing it across segments or after reopen (index files), and
    // against Offset / Beginning / End seeks landing anywhere but where they say.
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("seek", 0);
    let ts = |j: i64| 10_000 + 10 * j;
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("seek", 1).config("segment.bytes", "512"))
            .unwrap();
        // 30 batches of 4 records; record j has timestamp 10_000 + 10 j.
        for b in 0..30 {
            let recs: Vec<Record> = (0..4)
                .map(|i| record(i, ts(b * 4 + i), Some("k"), Some("value-value")))
                .collect();
            append(&log, "seek", 0, &recs);
        }
        assert!(segments(&log, "seek", 0) > 3);
        let mut c = log.consumer(ConsumerConfig::default().max_poll_records(1));
        c.assign(vec![tp.clone()]).unwrap();

        assert_eq!(first_after(&mut c, &tp, Seek::Offset(7)), Some(7));
        assert_eq!(first_after(&mut c, &tp, Seek::Offset(0)), Some(0));
        for j in 0..120 {
            // Exactly on a record's time, and between the previous record's and its own.
            assert_eq!(first_after(&mut c, &tp, Seek::Timestamp(ts(j))), Some(j));
            assert_eq!(
                first_after(&mut c, &tp, Seek::Timestamp(ts(j) - 3)),
                Some(j)
            );
        }
        assert_eq!(first_after(&mut c, &tp, Seek::Timestamp(0)), Some(0));
        assert_eq!(first_after(&mut c, &tp, Seek::Timestamp(ts(119) + 1)), None);
        assert_eq!(c.position(&tp).unwrap(), 120);
        assert_eq!(first_after(&mut c, &tp, Seek::Beginning), Some(0));
        assert_eq!(first_after(&mut c, &tp, Seek::End), None);
        append(
            &log,
            "seek",
            0,
            &[record(0, ts(120), Some("k"), Some("late"))],
        );
        let next = c.poll(Duration::from_secs(2)).unwrap();
        assert_eq!(next.first().map(|r| r.offset), Some(120));

        // Past the end: clamped to the end when read, so nothing appended later is skipped.
        assert_eq!(first_after(&mut c, &tp, Seek::Offset(500)), None);
        append(
            &log,
            "seek",
            0,
            &[record(0, ts(121), Some("k"), Some("later"))],
        );
        let next = c.poll(Duration::from_secs(2)).unwrap();
        assert_eq!(next.first().map(|r| r.offset), Some(121));

        // Beginning follows the log start offset.
        log.partition("seek", 0)
            .unwrap()
            .delete_records_before(10)
            .unwrap();
        assert_eq!(first_after(&mut c, &tp, Seek::Beginning), Some(10));
        // Seeking an unassigned partition is refused.
        assert!(
            c.seek(&TopicPartition::new("seek", 1), Seek::Beginning)
                .is_err()
        );
        log.close().unwrap();
    }
    // After reopen the time index comes from disk (closed segments) or a rescan.
    let log = open(dir.path());
    let mut c = log.consumer(ConsumerConfig::default().max_poll_records(1));
    c.assign(vec![tp.clone()]).unwrap();
    for j in 10..121 {
        assert_eq!(
            first_after(&mut c, &tp, Seek::Timestamp(ts(j) - 5)),
            Some(j)
        );
    }
    assert_eq!(first_after(&mut c, &tp, Seek::Timestamp(0)), Some(10));
    assert_eq!(first_after(&mut c, &tp, Seek::Beginning), Some(10));
}

#[test]
fn seek_by_timestamp_with_out_of_order_timestamps() {
    // Guards against a time lookup that assumes timestamps grow with offsets: the answer is
    // the first offset whose timestamp is at or after the target.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("ooo", 1).config("segment.bytes", "128"))
        .unwrap();
    let stamps = [[100, 300], [200, 400], [50, 60], [500, 70]];
    for pair in stamps {
        let recs: Vec<Record> = pair
            .iter()
            .enumerate()
            .map(|(i, t)| record(i as i64, *t, Some("k"), Some("v")))
            .collect();
        append(&log, "ooo", 0, &recs);
    }
    let all: Vec<i64> = stamps.iter().flatten().copied().collect();
    let tp = TopicPartition::new("ooo", 0);
    let mut c = log.consumer(ConsumerConfig::default());
    c.assign(vec![tp.clone()]).unwrap();
    for target in [0, 55, 60, 65, 100, 150, 250, 300, 350, 400, 450, 500, 501] {
        let want = all.iter().position(|t| *t >= target).map(|i| i as i64);
        assert_eq!(
            first_after(&mut c, &tp, Seek::Timestamp(target)),
            want,
            "target {target}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Many consumers
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Consumer groups
// ---------------------------------------------------------------------------------------

fn group_member(log: &Log, group: &str, topic: &str) -> sluice_core::Consumer {
    let mut c = log.consumer(
        ConsumerConfig::default()
            .group(group)
            .enable_auto_commit(false)
            .max_poll_records(7),
    );
    c.subscribe(&[topic]).unwrap();
    c
}

#[test]
fn consumer_group_delivers_each_record_once_without_crashes() {
    // Guards against a rebalance losing records (a partition handed over past what was
    // processed) or duplicating them (handed over before what was committed), and against
    // committed offsets that do not survive a reopen of the log.
    //
    // The members are driven from one thread, each committing right after processing what
    // a poll returned; joins and leaves happen between polls. Under that schedule the
    // in-process coordinator gives exactly-once delivery. (Members on separate threads
    // only get at-least-once: see `consumer_group_on_threads_is_at_least_once`.)
    let dir = tempfile::tempdir().unwrap();
    let mut produced: BTreeSet<(i32, i64)> = BTreeSet::new();
    let committed_before_close: BTreeMap<(String, i32), i64>;
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("grp", 6)).unwrap();
        let producer = log
            .producer(
                ProducerConfig::default()
                    .batch_records(4)
                    .linger(Duration::from_secs(600)),
            )
            .unwrap();
        let produce = |n: usize, produced: &mut BTreeSet<(i32, i64)>| {
            let ds: Vec<_> = (0..n)
                .map(|j| {
                    let key = format!("key-{}-{j}", produced.len());
                    producer
                        .send(ProducerRecord::to("grp").key(key).value("v"))
                        .unwrap()
                })
                .collect();
            producer.flush().unwrap();
            for d in ds {
                let m = d.result().unwrap().unwrap();
                assert!(produced.insert((m.partition, m.offset)));
            }
        };

        let mut members: Vec<(usize, sluice_core::Consumer)> = Vec::new();
        let mut next_id = 0;
        let mut received: Vec<(i32, i64, usize)> = Vec::new();
        let poll_and_commit = |members: &mut Vec<(usize, sluice_core::Consumer)>,
                               received: &mut Vec<_>| {
            for (id, m) in members.iter_mut() {
                for r in m.poll(Duration::from_millis(5)).unwrap() {
                    received.push((r.partition, r.offset, *id));
                }
                m.commit().unwrap();
            }
        };
        for round in 0..14 {
            match round {
                0 | 2 | 4 | 9 => {
                    members.push((next_id, group_member(&log, "g1", "grp")));
                    next_id += 1;
                }
                6 | 11 => {
                    // The oldest member leaves after committing what it processed.
                    let (_, mut m) = members.remove(0);
                    m.commit().unwrap();
                    m.close().unwrap();
                }
                _ => {}
            }
            produce(40, &mut produced);
            poll_and_commit(&mut members, &mut received);
            // After everyone synced, the members' assignments partition the topic.
            let mut owned: Vec<i32> = members
                .iter()
                .flat_map(|(_, m)| m.assignment().iter().map(|tp| tp.partition))
                .collect();
            owned.sort_unstable();
            assert_eq!(owned, (0..6).collect::<Vec<_>>(), "round {round}");
            assert_eq!(log.group_members("g1").len(), members.len());
        }
        // Drain.
        let deadline = Instant::now() + Duration::from_secs(20);
        while received.len() < produced.len() && Instant::now() < deadline {
            poll_and_commit(&mut members, &mut received);
        }
        poll_and_commit(&mut members, &mut received);

        let mut seen = BTreeSet::new();
        let duplicates: Vec<_> = received
            .iter()
            .filter(|(p, o, _)| !seen.insert((*p, *o)))
            .collect();
        assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");
        assert_eq!(seen, produced, "every record delivered");
        // Every member, including those that left, was given records to process.
        let by_member: BTreeSet<usize> = received.iter().map(|r| r.2).collect();
        assert_eq!(by_member.len(), next_id);

        // Commits now point at the end of every partition.
        for p in 0..6 {
            let end = log.partition("grp", p).unwrap().log_end_offset();
            assert_eq!(log.committed_offset("g1", "grp", p).unwrap().offset, end);
        }
        for (_, mut m) in members.drain(..) {
            m.commit().unwrap();
            m.close().unwrap();
        }
        assert!(log.group_members("g1").is_empty());
        assert_eq!(log.list_groups(), vec!["g1".to_string()]);

        // Produce more that nobody reads yet, and move partition 0's commit back by one
        // (an explicit commit of an arbitrary position) so the resume point is not just
        // "the end as of the last poll".
        produce(30, &mut produced);
        let p0 = log.committed_offset("g1", "grp", 0).unwrap().offset;
        log.commit_offsets("g1", &[("grp".to_string(), 0, p0 - 1)])
            .unwrap();
        committed_before_close = log
            .group_offsets("g1")
            .into_iter()
            .map(|(k, v)| (k, v.offset))
            .collect();
        drop(producer);
        log.close().unwrap();
    }

    let log = open(dir.path());
    let after: BTreeMap<(String, i32), i64> = log
        .group_offsets("g1")
        .into_iter()
        .map(|(k, v)| (k, v.offset))
        .collect();
    assert_eq!(after, committed_before_close, "commits are durable");
    // A new member resumes from the commits: it gets exactly the records at or after them.
    let unread: BTreeSet<(i32, i64)> = produced
        .iter()
        .filter(|(p, o)| *o >= after[&("grp".to_string(), *p)])
        .copied()
        .collect();
    assert_eq!(unread.len(), 31);
    let mut m = group_member(&log, "g1", "grp");
    let got = poll_n(&mut m, unread.len());
    let got_set: BTreeSet<(i32, i64)> = got.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(got.len(), got_set.len());
    assert_eq!(got_set, unread);
    assert!(m.poll(Duration::from_millis(50)).unwrap().is_empty());
}

#[test]
fn consumer_group_on_threads_is_at_least_once() {
    // Guards against records lost when members on their own threads join and leave while
    // records are produced. The in-process coordinator hands a partition to its new owner
    // at once, without waiting for the old owner to commit and let go (no rebalance
    // barrier), so a record can reach two members around a rebalance: delivery here is
    // at-least-once, and the test asserts exactly that.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("grpt", 6)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let log = log.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut got: Vec<(i32, i64)> = Vec::new();
                let mut session = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let mut c = group_member(&log, "g2", "grpt");
                    // Stay a while, then leave: every worker churns at its own pace.
                    let polls = 5 + (session * 7 + w) % 11;
                    for _ in 0..polls {
                        for r in c.poll(Duration::from_millis(3)).unwrap() {
                            got.push((r.partition, r.offset));
                        }
                        c.commit().unwrap();
                    }
                    c.close().unwrap();
                    session += 1;
                }
                // Final drain as a stable member.
                let mut c = group_member(&log, "g2", "grpt");
                let mut idle = 0;
                while idle < 30 {
                    let batch = c.poll(Duration::from_millis(10)).unwrap();
                    idle = if batch.is_empty() { idle + 1 } else { 0 };
                    got.extend(batch.iter().map(|r| (r.partition, r.offset)));
                    c.commit().unwrap();
                }
                got
            })
        })
        .collect();
    let producer = log
        .producer(ProducerConfig::default().batch_records(8))
        .unwrap();
    let mut produced = BTreeSet::new();
    for round in 0..60 {
        let ds: Vec<_> = (0..25)
            .map(|i| {
                producer
                    .send(
                        ProducerRecord::to("grpt")
                            .key(format!("{round}-{i}"))
                            .value("v"),
                    )
                    .unwrap()
            })
            .collect();
        producer.flush().unwrap();
        for d in ds {
            let m = d.result().unwrap().unwrap();
            produced.insert((m.partition, m.offset));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Release);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    // The workers' last members may leave while a partition just moved to one of them;
    // whatever they left uncommitted goes to the next member, as it would in a real group.
    let mut last = group_member(&log, "g2", "grpt");
    loop {
        let batch = last.poll(Duration::from_millis(100)).unwrap();
        if batch.is_empty() {
            break;
        }
        all.extend(batch.iter().map(|r| (r.partition, r.offset)));
        last.commit().unwrap();
    }
    let delivered: BTreeSet<(i32, i64)> = all.iter().copied().collect();
    assert_eq!(delivered, produced, "every record reached some member");
    eprintln!(
        "threaded group: {} records, {} deliveries ({} duplicates)",
        produced.len(),
        all.len(),
        all.len() - delivered.len()
    );
}

// ---------------------------------------------------------------------------------------
// Idempotence
// ---------------------------------------------------------------------------------------

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: i64, tag: &str) -> bytes::BytesMut {
    let recs: Vec<Record> = (0..n)
        .map(|i| record(i, 1_000 + i, Some("k"), Some(&format!("{tag}-{i}"))))
        .collect();
    encode_batch(
        &recs,
        Compression::None,
        ProducerStamp {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            transactional: false,
        },
    )
    .unwrap()
}

#[test]
fn idempotent_appends_dedupe_fence_and_survive_reopen() {
    // Guards against a retried idempotent batch being written twice, sequence gaps and
    // zombie (older-epoch) producers being accepted, and duplicate detection forgetting
    // its state across a reopen (from the snapshot, or rebuilt from the log without it).
    let dir = tempfile::tempdir().unwrap();
    let (pid, epoch);
    let later_batch;
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("idem", 1)).unwrap();
        (pid, epoch) = log.init_producer_id().unwrap();
        assert_eq!(epoch, 0);
        let (other, _) = log.init_producer_id().unwrap();
        assert_ne!(other, pid);

        let first = idempotent_batch(pid, epoch, 0, 3, "a");
        let info = log.append("idem", 0, &mut first.clone()).unwrap();
        assert_eq!(
            (info.base_offset, info.last_offset, info.duplicate),
            (0, 2, false)
        );
        let retry = log.append("idem", 0, &mut first.clone()).unwrap();
        assert_eq!(
            (retry.base_offset, retry.last_offset, retry.duplicate),
            (0, 2, true)
        );
        assert_eq!(log.partition("idem", 0).unwrap().log_end_offset(), 3);

        let second = idempotent_batch(pid, epoch, 3, 2, "b");
        let info = log.append("idem", 0, &mut second.clone()).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (3, 4));
        // The first batch is still remembered after a later one.
        assert!(log.append("idem", 0, &mut first.clone()).unwrap().duplicate);

        match log.append("idem", 0, &mut idempotent_batch(pid, epoch, 10, 1, "gap")) {
            Err(Error::OutOfOrderSequence {
                producer_id,
                expected: 5,
                received: 10,
                ..
            }) => assert_eq!(producer_id, pid),
            other => panic!("sequence gap: {other:?}"),
        }
        assert_eq!(log.partition("idem", 0).unwrap().log_end_offset(), 5);

        // A new epoch starts at sequence 0 and fences the old one.
        later_batch = idempotent_batch(pid, epoch + 1, 0, 1, "c");
        let info = log.append("idem", 0, &mut later_batch.clone()).unwrap();
        assert_eq!((info.base_offset, info.duplicate), (5, false));
        match log.append("idem", 0, &mut idempotent_batch(pid, epoch, 5, 1, "zombie")) {
            Err(Error::ProducerFenced {
                epoch: 0,
                current_epoch: 1,
                ..
            }) => {}
            other => panic!("old epoch: {other:?}"),
        }
        assert_eq!(log.partition("idem", 0).unwrap().log_end_offset(), 6);
        log.close().unwrap();
    }
    let check = |log: &Log, end: i64| {
        let dup = log.append("idem", 0, &mut later_batch.clone()).unwrap();
        assert_eq!(
            (dup.base_offset, dup.last_offset, dup.duplicate),
            (5, 5, true)
        );
        assert!(matches!(
            log.append("idem", 0, &mut idempotent_batch(pid, epoch, 5, 1, "zombie")),
            Err(Error::ProducerFenced { .. })
        ));
        assert!(matches!(
            log.append(
                "idem",
                0,
                &mut idempotent_batch(pid, epoch + 1, 7, 1, "gap")
            ),
            Err(Error::OutOfOrderSequence { .. })
        ));
        assert_eq!(log.partition("idem", 0).unwrap().log_end_offset(), end);
    };
    {
        let log = open(dir.path());
        check(&log, 6);
        let info = log
            .append("idem", 0, &mut idempotent_batch(pid, epoch + 1, 1, 2, "d"))
            .unwrap();
        assert_eq!((info.base_offset, info.duplicate), (6, false));
        // Producer ids are never reused across a reopen.
        let (fresh, _) = log.init_producer_id().unwrap();
        assert!(fresh > pid + 1);
        log.close().unwrap();
    }
    // Without the snapshot the state is rebuilt from the batches in the log.
    let snapshot = dir.path().join("topics/idem/0/producer-state.json");
    if snapshot.exists() {
        std::fs::remove_file(&snapshot).unwrap();
    }
    let log = open(dir.path());
    check(&log, 8);
    let dup = log
        .append("idem", 0, &mut idempotent_batch(pid, epoch + 1, 1, 2, "d"))
        .unwrap();
    assert_eq!(
        (dup.base_offset, dup.last_offset, dup.duplicate),
        (6, 7, true)
    );
}

// ---------------------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------------------

const T_OLD: i64 = 1_000_000;
const T_NEW: i64 = 10_000_000;

#[test]
fn retention_by_time_deletes_old_segments_then_everything() {
    // Guards against retention.ms deleting segments that still hold young records, leaving
    // expired ones behind, not advancing the log start offset, or keeping an all-expired
    // active segment forever.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("ret", 1)
            .config("segment.bytes", "1024")
            .config("retention.ms", "60000"),
    )
    .unwrap();
    let value = "r".repeat(60);
    for b in 0..40 {
        let recs: Vec<Record> = (0..3)
            .map(|i| record(i, T_OLD + b * 3 + i, Some("k"), Some(&value)))
            .collect();
        append(&log, "ret", 0, &recs);
    }
    let first_new = log.partition("ret", 0).unwrap().log_end_offset();
    for b in 0..20 {
        let recs: Vec<Record> = (0..3)
            .map(|i| record(i, T_NEW + b * 3 + i, Some("k"), Some(&value)))
            .collect();
        append(&log, "ret", 0, &recs);
    }
    let end = log.partition("ret", 0).unwrap().log_end_offset();
    let before = segments(&log, "ret", 0);

    // Nothing is old enough yet.
    let (r, _) = log.run_cleaner_at(T_OLD + 1_000).unwrap();
    assert_eq!(r.segments_deleted, 0);

    let (r, _) = log.run_cleaner_at(T_NEW + 30_000).unwrap();
    assert!(r.segments_deleted > 0 && r.bytes_deleted > 0);
    let p = log.partition("ret", 0).unwrap();
    let start = p.log_start_offset();
    assert!(
        start > 0 && start <= first_new,
        "start {start}, first new {first_new}"
    );
    let files = segment_files(p.dir());
    assert_eq!(files.len(), before - r.segments_deleted);
    assert_eq!(
        files[0].0, start,
        "log start is the first remaining segment's base"
    );
    // Everything from the start is still readable; nothing below it is.
    let offsets: Vec<i64> = read_all(&log, "ret", 0).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (start..end).collect::<Vec<_>>());
    assert!(matches!(
        log.read("ret", 0, start - 1, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));

    // Once every record expired, the active segment is rolled and deleted too.
    let (r, _) = log.run_cleaner_at(T_NEW + 10_000_000).unwrap();
    assert!(r.segments_deleted > 0);
    assert_eq!(p.log_start_offset(), end);
    assert_eq!(p.log_end_offset(), end);
    assert_eq!(segments(&log, "ret", 0), 1);
    assert!(log.read("ret", 0, end, 100).unwrap().records.is_empty());
    let info = append(&log, "ret", 0, &[record(0, T_NEW, None, Some("again"))]);
    assert_eq!(info.base_offset, end);
    assert_eq!(read_all(&log, "ret", 0).len(), 1);
    // The start offset survives a reopen.
    drop(p);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.partition("ret", 0).unwrap().log_start_offset(), end);
}

#[test]
fn retention_keeps_the_active_segment_unless_everything_expired() {
    // Guards against retention deleting the segment being written to while it still holds
    // unexpired records.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("act", 1).config("retention.ms", "60000"))
        .unwrap();
    append(&log, "act", 0, &[record(0, T_OLD, Some("k"), Some("old"))]);
    append(&log, "act", 0, &[record(0, T_NEW, Some("k"), Some("new"))]);
    let (r, _) = log.run_cleaner_at(T_NEW + 1_000).unwrap();
    assert_eq!(r.segments_deleted, 0);
    assert_eq!(log.partition("act", 0).unwrap().log_start_offset(), 0);
    assert_eq!(read_all(&log, "act", 0).len(), 2);
    // Once both are expired, everything goes.
    let (r, _) = log.run_cleaner_at(T_NEW + 61_000).unwrap();
    assert_eq!(r.segments_deleted, 1);
    let p = log.partition("act", 0).unwrap();
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (2, 2));

    // retention.ms=-1 keeps everything however old.
    log.create_topic(NewTopic::new("forever", 1).config("retention.ms", "-1"))
        .unwrap();
    append(
        &log,
        "forever",
        0,
        &[record(0, 1, Some("k"), Some("ancient"))],
    );
    let (r, _) = log.run_cleaner_at(T_NEW).unwrap();
    assert_eq!(r.segments_deleted, 0);
    assert_eq!(read_all(&log, "forever", 0).len(), 1);
}

#[test]
fn retention_by_size_and_consumer_resets() {
    // Guards against retention.bytes deleting too much or too little, and consumers left
    // positioned below the new log start offset: they must reset as OffsetReset says.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("size", 1)
            .config("segment.bytes", "1024")
            .config("retention.bytes", "3000")
            .config("retention.ms", "-1"),
    )
    .unwrap();
    let value = "s".repeat(100);
    for _ in 0..100 {
        append(&log, "size", 0, &[record(0, 1, Some("k"), Some(&value))]);
    }
    let tp = TopicPartition::new("size", 0);
    let make = |reset| {
        let mut c = log.consumer(ConsumerConfig::default().auto_offset_reset(reset));
        c.assign(vec![tp.clone()]).unwrap();
        c.seek(&tp, Seek::Offset(0)).unwrap();
        c
    };
    let (mut earliest, mut latest, mut none) = (
        make(OffsetReset::Earliest),
        make(OffsetReset::Latest),
        make(OffsetReset::None),
    );

    let (r, _) = log.run_cleaner_at(sluice_core::now_ms()).unwrap();
    assert!(r.segments_deleted > 0);
    let p = log.partition("size", 0).unwrap();
    let files = segment_files(p.dir());
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert_eq!(total, p.info().size_bytes);
    assert!(total >= 3000, "deleted too much: {total} bytes left");
    assert!(
        total - files[0].1 < 3000,
        "deleted too little: {total} bytes left"
    );
    let start = p.log_start_offset();
    assert_eq!(files[0].0, start);
    assert!(start > 0);

    // Earliest: jumps to the new start.
    let got = earliest.poll(Duration::from_secs(2)).unwrap();
    assert_eq!(got.first().map(|r| r.offset), Some(start));
    // Latest: jumps to the end and sees only what comes next.
    assert!(latest.poll(Duration::from_millis(50)).unwrap().is_empty());
    let next = append(&log, "size", 0, &[record(0, 1, Some("k"), Some("next"))]);
    let got = latest.poll(Duration::from_secs(2)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].offset, next.base_offset);
    // None: the error reaches the caller.
    match none.poll(Duration::from_millis(50)) {
        Err(Error::OffsetOutOfRange {
            offset: 0,
            log_start_offset,
            ..
        }) => {
            assert_eq!(log_start_offset, start)
        }
        other => panic!("reset none: {other:?}"),
    }
}

#[test]
fn delete_records_before_advances_start_and_cleaner_removes_segments() {
    // Guards against DeleteRecords leaving records readable below the new start, the cleaner
    // deleting a segment that still holds records at or above it, and the start offset not
    // being durable.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic(
            NewTopic::new("dr", 1)
                .config("segment.bytes", "1024")
                .config("retention.ms", "-1"),
        )
        .unwrap();
        let value = "d".repeat(50);
        for _ in 0..50 {
            let recs: Vec<Record> = (0..4)
                .map(|i| record(i, 1, Some("k"), Some(&value)))
                .collect();
            append(&log, "dr", 0, &recs);
        }
        let p = log.partition("dr", 0).unwrap();
        let files_before = segment_files(p.dir());
        assert_eq!(p.delete_records_before(102).unwrap(), 102);
        // Lowering it is a no-op; past the end is refused.
        assert_eq!(p.delete_records_before(50).unwrap(), 102);
        assert!(matches!(
            p.delete_records_before(201),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert_eq!(p.log_start_offset(), 102);
        assert!(log.read("dr", 0, 101, 100).is_err());
        // The batch holding the start comes back whole; a consumer skips below the start.
        let read = log.read("dr", 0, 102, 1).unwrap();
        assert_eq!(batches(&read.records)[0].0, 100);
        let mut c = log.consumer(ConsumerConfig::default());
        c.assign(vec![TopicPartition::new("dr", 0)]).unwrap();
        assert_eq!(c.poll(Duration::from_secs(1)).unwrap()[0].offset, 102);

        let (r, _) = log.run_cleaner_at(sluice_core::now_ms()).unwrap();
        let files = segment_files(p.dir());
        assert_eq!(files.len(), files_before.len() - r.segments_deleted);
        assert!(r.segments_deleted > 0);
        // Only whole segments below the start went: the first left holds offset 102.
        assert!(files[0].0 <= 102);
        assert!(files.get(1).is_none_or(|f| f.0 > 102));
        let deleted: Vec<_> = files_before.iter().filter(|f| f.0 < files[0].0).collect();
        assert_eq!(deleted.len(), r.segments_deleted);
        assert_eq!(read_all(&log, "dr", 0).first().map(|r| r.offset), Some(102));
        log.close().unwrap();
    }
    let log = open(dir.path());
    let p = log.partition("dr", 0).unwrap();
    assert_eq!(p.log_start_offset(), 102);
    assert_eq!(read_all(&log, "dr", 0).len(), 200 - 102);
}

// ---------------------------------------------------------------------------------------
// Compaction
// ---------------------------------------------------------------------------------------

#[test]
fn compaction_keeps_newest_per_key_and_expires_tombstones() {
    // Guards against compaction keeping a stale value, dropping the newest one, moving
    // offsets, or removing a tombstone before delete.retention.ms has passed (consumers
    // that were behind would then never learn of the delete).
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("cmp", 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "1024")
            .config("delete.retention.ms", "10000"),
    )
    .unwrap();
    const T0: i64 = 1_000_000;
    const T1: i64 = 2_000_000;
    // Model: every record written, by offset.
    let mut model: Vec<(i64, String, Option<String>)> = Vec::new();
    let mut write = |log: &Log, items: &[(String, Option<String>, i64)]| {
        let recs: Vec<Record> = items
            .iter()
            .enumerate()
            .map(|(i, (k, v, t))| record(i as i64, *t, Some(k), v.as_deref()))
            .collect();
        let info = append(log, "cmp", 0, &recs);
        for (i, (k, v, _)) in items.iter().enumerate() {
            model.push((info.base_offset + i as i64, k.clone(), v.clone()));
        }
    };
    let mut seq = 0i64;
    for _ in 0..60 {
        let items: Vec<_> = (0..3)
            .map(|_| {
                seq += 1;
                let key = format!("k{}", (seq * 7) % 10);
                (key.clone(), Some(format!("{key}-v{seq}")), T0 + seq)
            })
            .collect();
        write(&log, &items);
    }
    write(&log, &[("k3".into(), None, T1), ("k7".into(), None, T1)]);
    write(&log, &[("k1".into(), Some("k1-last".into()), T1 + 1)]);
    // A batch larger than segment.bytes sits alone in the active segment, so everything
    // above was closed and is eligible.
    let filler = "f".repeat(1500);
    write(&log, &[("filler".into(), Some(filler), T1 + 2)]);
    let filler_offset = model.last().unwrap().0;
    let end = log.partition("cmp", 0).unwrap().log_end_offset();

    let newest: BTreeMap<String, (i64, Option<String>)> = model
        .iter()
        .map(|(o, k, v)| (k.clone(), (*o, v.clone())))
        .collect();
    let check = |log: &Log, tombstones_kept: bool| {
        let surviving = read_all(log, "cmp", 0);
        let mut keys = BTreeMap::new();
        for r in &surviving {
            let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
            let value = r
                .value
                .clone()
                .map(|v| String::from_utf8(v.to_vec()).unwrap());
            // Offsets unchanged: the record at this offset is the one written there.
            let (o, k, v) = &model[r.offset as usize];
            assert_eq!((o, k, v), (&r.offset, &key, &value));
            assert!(
                keys.insert(key.clone(), r.offset).is_none(),
                "{key} kept twice"
            );
        }
        for (key, (offset, value)) in &newest {
            let expect_present = value.is_some() || tombstones_kept;
            assert_eq!(
                keys.get(key).copied(),
                expect_present.then_some(*offset),
                "key {key}"
            );
        }
        assert_eq!(log.partition("cmp", 0).unwrap().log_end_offset(), end);
        assert!(keys.contains_key("filler"));
        assert_eq!(keys["filler"], filler_offset);
    };

    // Tombstones are younger than delete.retention.ms: they stay, the values they deleted go.
    let (_, c) = log.run_cleaner_at(T1 + 5_000).unwrap();
    assert!(c.segments_cleaned > 0 && c.records_removed > 0 && c.bytes_freed > 0);
    check(&log, true);
    // A consumer seeking into a compacted gap moves on to the next surviving record.
    let mut consumer = log.consumer(ConsumerConfig::default());
    let tp = TopicPartition::new("cmp", 0);
    consumer.assign(vec![tp.clone()]).unwrap();
    consumer.seek(&tp, Seek::Offset(1)).unwrap();
    let first = consumer.poll(Duration::from_secs(1)).unwrap()[0].offset;
    let survivors: Vec<i64> = read_all(&log, "cmp", 0).iter().map(|r| r.offset).collect();
    assert_eq!(Some(&first), survivors.iter().find(|o| **o >= 1));

    // Past delete.retention.ms the tombstones go too.
    let (_, c) = log.run_cleaner_at(T1 + 20_000).unwrap();
    assert_eq!(c.records_removed, 2);
    check(&log, false);
    // A pass with nothing to do changes nothing.
    let (_, c) = log.run_cleaner_at(T1 + 30_000).unwrap();
    assert_eq!(c.records_removed, 0);

    log.close().unwrap();
    drop(consumer);
    drop(log);
    let log = open(dir.path());
    check(&log, false);
}

#[test]
fn compaction_runs_under_concurrent_reads_and_appends() {
    // Guards against compaction's segment swap breaking readers mid-scan (errors, records
    // at the wrong offset) or letting a key's value go backwards, and against it blocking
    // or corrupting appends made while it runs.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("live", 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "2048"),
    )
    .unwrap();
    const KEYS: u64 = 20;
    let done = Arc::new(AtomicBool::new(false));
    let parse = |r: &Record| -> (u64, u64) {
        let key: u64 = std::str::from_utf8(r.key.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let value = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
        let (k, version) = value.split_once(':').unwrap();
        assert_eq!(k.parse::<u64>().unwrap(), key, "value under the wrong key");
        (key, version.parse().unwrap())
    };

    let reader = {
        let log = log.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last_final: BTreeMap<u64, u64> = BTreeMap::new();
            let mut scans = 0;
            while !done.load(Ordering::Acquire) || scans < 3 {
                let mut offset = 0i64;
                let mut this_scan: BTreeMap<u64, u64> = BTreeMap::new();
                let mut previous_offset = -1;
                loop {
                    let read = log.read("live", 0, offset, 1500).unwrap();
                    if read.records.is_empty() {
                        break;
                    }
                    for r in decode_all(&read.records) {
                        if r.offset < offset {
                            continue;
                        }
                        assert!(r.offset > previous_offset);
                        previous_offset = r.offset;
                        let (key, version) = parse(&r);
                        // Versions grow with offsets: within a scan, a key only moves forward.
                        let prev = this_scan.insert(key, version);
                        assert!(prev.is_none_or(|p| p < version), "key {key} went back");
                    }
                    offset = batches(&read.records).last().unwrap().1 + 1;
                }
                // Across scans, the newest value seen for a key never goes backwards and no
                // key disappears.
                for (key, version) in &last_final {
                    let now = this_scan.get(key).copied();
                    assert!(
                        now.is_some_and(|n| n >= *version),
                        "key {key}: {version} then {now:?}"
                    );
                }
                last_final = this_scan;
                scans += 1;
            }
            scans
        })
    };
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut version = 0u64;
            let mut expected_next = 0i64;
            for _ in 0..1500 {
                let recs: Vec<Record> = (0..4)
                    .map(|i| {
                        version += 1;
                        let key = (version * 7) % KEYS;
                        record(
                            i as i64,
                            sluice_core::now_ms(),
                            Some(&key.to_string()),
                            Some(&format!("{key}:{version}")),
                        )
                    })
                    .collect();
                let info = append(&log, "live", 0, &recs);
                assert_eq!(info.base_offset, expected_next);
                expected_next = info.last_offset + 1;
            }
            version
        })
    };
    let mut removed = 0;
    let mut passes = 0;
    while !writer.is_finished() {
        let (_, c) = log.run_cleaner_at(sluice_core::now_ms() + 1_000).unwrap();
        removed += c.records_removed;
        passes += 1;
    }
    let versions = writer.join().unwrap();
    let (_, c) = log.run_cleaner_at(sluice_core::now_ms() + 1_000).unwrap();
    removed += c.records_removed;
    done.store(true, Ordering::Release);
    let scans = reader.join().unwrap();
    assert!(removed > 0, "compaction removed nothing in {passes} passes");
    eprintln!("{passes} compaction passes, {scans} reader scans, {removed} records removed");

    // Every key's newest value survived; the log end never moved back.
    let end = log.partition("live", 0).unwrap().log_end_offset();
    assert_eq!(end, versions as i64);
    let mut newest: BTreeMap<u64, u64> = BTreeMap::new();
    for r in read_all(&log, "live", 0) {
        let (key, version) = parse(&r);
        newest.insert(key, version);
    }
    assert_eq!(newest.len(), KEYS as usize);
    // The newest version of each key is among the last KEYS*4 written: check precisely by
    // replaying the writer's key schedule.
    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    let mut v = 0u64;
    for _ in 0..1500 {
        for _ in 0..4 {
            v += 1;
            want.insert((v * 7) % KEYS, v);
        }
    }
    assert_eq!(newest, want);
}

// ---------------------------------------------------------------------------------------
// Topic administration
// ---------------------------------------------------------------------------------------

#[test]
fn topic_admin_create_list_describe_alter_delete() {
    // Guards against the admin API accepting bad names or unknown settings, losing config
    // changes across reopen, a deleted-then-recreated topic resurrecting old data or old
    // commits, and two `Log`s writing one directory at once.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(log.list_topics(), vec!["__consumer_offsets".to_string()]);

    log.create_topic(NewTopic::new("orders", 3).config("retention.ms", "1234"))
        .unwrap();
    log.create_topic(NewTopic::new("a.b_c-d", 1)).unwrap();
    assert!(
        log.ensure_topic(NewTopic::new("orders", 3))
            .is_ok_and(|created| !created)
    );
    assert_eq!(
        log.list_topics(),
        vec!["__consumer_offsets", "a.b_c-d", "orders"]
    );
    let d = log.describe_topic("orders").unwrap();
    assert_eq!(d.name, "orders");
    assert_eq!(d.partitions.len(), 3);
    assert!(
        d.partitions
            .iter()
            .all(|p| p.log_end_offset == 0 && p.log_start_offset == 0)
    );
    assert_eq!(
        d.overrides.get("retention.ms").map(String::as_str),
        Some("1234")
    );
    assert_eq!(d.config["retention.ms"], "1234");
    assert_eq!(d.config["cleanup.policy"], "delete");
    assert_eq!(log.partition_count("orders").unwrap(), 3);
    let offsets = log.describe_topic("__consumer_offsets").unwrap();
    assert_eq!(offsets.config["cleanup.policy"], "compact");

    assert!(matches!(
        log.create_topic(NewTopic::new("orders", 1)),
        Err(Error::TopicExists { .. })
    ));
    for bad in [
        "",
        ".",
        "..",
        "has space",
        "slash/name",
        "ünï",
        &"x".repeat(250),
    ] {
        match log.create_topic(NewTopic::new(bad, 1)) {
            Err(Error::InvalidTopicName { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        log.create_topic(NewTopic::new("zero", 0)),
        Err(Error::InvalidArgument(_))
    ));
    let err = log
        .create_topic(NewTopic::new("typo", 1).config("retention.mss", "5"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));
    assert!(err.to_string().contains("retention.mss"), "{err}");
    for (key, value) in [
        ("segment.bytes", "10"),
        ("retention.ms", "-7"),
        ("cleanup.policy", "shred"),
        ("message.timestamp.type", "Whenever"),
        ("max.message.bytes", "lots"),
    ] {
        let err = log
            .create_topic(NewTopic::new("bad-value", 1).config(key, value))
            .unwrap_err();
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    assert!(!log.list_topics().contains(&"typo".to_string()));
    assert!(!log.list_topics().contains(&"bad-value".to_string()));
    assert!(!dir.path().join("topics/typo").exists());

    // Alter: validated first, nothing changes on error.
    let mut overrides = BTreeMap::new();
    overrides.insert("retention.ms".to_string(), "999".to_string());
    overrides.insert("segment.bytes".to_string(), "4096".to_string());
    log.alter_topic_config("orders", overrides.clone()).unwrap();
    let mut wrong = overrides.clone();
    wrong.insert("segment.bytez".to_string(), "1".to_string());
    let err = log.alter_topic_config("orders", wrong).unwrap_err();
    assert!(err.to_string().contains("segment.bytez"), "{err}");
    assert!(matches!(
        log.alter_topic_config("missing", overrides.clone()),
        Err(Error::UnknownTopic { .. })
    ));
    let d = log.describe_topic("orders").unwrap();
    assert_eq!(d.overrides, overrides);
    assert_eq!(d.config["retention.ms"], "999");
    assert_eq!(d.config["segment.bytes"], "4096");

    // Only one Log per directory.
    let err = Log::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("already open"), "{err}");

    // Delete, then recreate: empty again, and the group's old commits are gone.
    append(&log, "orders", 1, &[record(0, 1, Some("k"), Some("v"))]);
    log.commit_offsets("g", &[("orders".to_string(), 1, 1)])
        .unwrap();
    assert!(log.committed_offset("g", "orders", 1).is_some());
    log.delete_topic("orders").unwrap();
    assert!(!log.list_topics().contains(&"orders".to_string()));
    assert!(matches!(
        log.describe_topic("orders"),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.read("orders", 1, 0, 10),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.delete_topic("orders"),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(log.committed_offset("g", "orders", 1).is_none());
    log.create_topic(NewTopic::new("orders", 2)).unwrap();
    let d = log.describe_topic("orders").unwrap();
    assert_eq!(d.partitions.len(), 2);
    assert!(
        d.partitions
            .iter()
            .all(|p| p.log_end_offset == 0 && p.size_bytes == 0)
    );
    assert!(d.overrides.is_empty());
    assert!(log.read("orders", 1, 0, 10).unwrap().records.is_empty());
    assert!(log.committed_offset("g", "orders", 1).is_none());

    // Everything persists across a reopen.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(
        log.list_topics(),
        vec!["__consumer_offsets", "a.b_c-d", "orders"]
    );
    assert_eq!(log.partition_count("orders").unwrap(), 2);
    assert!(log.committed_offset("g", "orders", 1).is_none());
    log.alter_topic_config("a.b_c-d", overrides.clone())
        .unwrap();
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(
        log.describe_topic("a.b_c-d").unwrap().config["retention.ms"],
        "999"
    );
}

#[test]
fn log_append_time_topics_report_append_time() {
    // Guards against a LogAppendTime topic serving the producer's timestamps instead of the
    // time the log appended the batch (in deliveries, reads and time seeks).
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("lat", 1).config("message.timestamp.type", "LogAppendTime"))
        .unwrap();
    let before = sluice_core::now_ms();
    let info = append(
        &log,
        "lat",
        0,
        &[
            record(0, 42, Some("k"), Some("v")),
            record(1, 43, None, Some("w")),
        ],
    );
    let after = sluice_core::now_ms();
    let stamped = info.log_append_time.unwrap();
    assert!((before..=after).contains(&stamped));
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let meta = producer
        .send_and_wait(ProducerRecord::to("lat").value("x").timestamp(7))
        .unwrap();
    assert!(meta.timestamp >= stamped && meta.timestamp <= sluice_core::now_ms());

    let records = read_all(&log, "lat", 0);
    assert_eq!(records[0].timestamp, stamped);
    assert_eq!(records[1].timestamp, stamped);
    assert_eq!(records[2].timestamp, meta.timestamp);
    let tp = TopicPartition::new("lat", 0);
    let mut c = log.consumer(ConsumerConfig::default());
    c.assign(vec![tp.clone()]).unwrap();
    let got = poll_n(&mut c, 3);
    assert!(got.iter().all(|r| r.timestamp >= before));
    // Time seeks use the append time: 42 is before everything.
    assert_eq!(first_after(&mut c, &tp, Seek::Timestamp(42)), Some(0));
    assert_eq!(
        first_after(&mut c, &tp, Seek::Timestamp(meta.timestamp)),
        Some(2).filter(|_| meta.timestamp > stamped).or(Some(0))
    );
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[test]
fn config_from_toml_names_bad_keys_and_values() {
    // Guards against a typo or out-of-range value in sluice.toml being ignored, or an error
    // that does not say which setting is wrong.
    let config = Config::from_toml(
        "data_dir = \"/var/lib/sluice\"\n[log]\nsegment_bytes = 4096\ndurability = \"sync\"\nretention_ms = -1\n",
    )
    .unwrap();
    assert_eq!(config.data_dir, Some(PathBuf::from("/var/lib/sluice")));
    assert_eq!(config.log.segment_bytes, 4096);
    assert_eq!(config.log.retention_ms, -1);
    assert_eq!(Config::from_toml("").unwrap(), Config::default());

    let mut failures = Vec::new();
    for (text, key) in [
        ("[log]\nsegment_byts = 10\n", "log.segment_byts"),
        ("bogus = 1\n", "bogus"),
        ("[logs]\nsegment_bytes = 1\n", "logs"),
        ("[log]\nsegment_bytes = 3\n", "log.segment_bytes"),
        ("[log]\nsegment_bytes = 4294967296\n", "log.segment_bytes"),
        ("[log]\nsegment_bytes = \"big\"\n", "log.segment_bytes"),
        ("[log]\nretention_ms = -5\n", "log.retention_ms"),
        ("[log]\nretention_bytes = -2\n", "retention_bytes"),
        ("[log]\ndurability = \"sometimes\"\n", "log.durability"),
        ("[log]\ndurability = \"interval:0\"\n", "log.durability"),
        ("[log]\ndefault_partitions = 0\n", "log.default_partitions"),
        ("[log]\ncleanup_policy = \"shred\"\n", "log.cleanup_policy"),
        ("[log]\nmax_message_bytes = 10\n", "log.max_message_bytes"),
        (
            "[log]\ncleaner_interval_ms = 0\n",
            "log.cleaner_interval_ms",
        ),
        ("[log]\nsegment_ms = 0\n", "log.segment_ms"),
        ("log.segment_bytes = \"big\"\n", "log.segment_bytes"),
        ("data_dir = 5\n[log]\nsegment_bytes = 4096\n", "data_dir"),
        (
            "data_dir = \"/x\"\n\n[log]\n\nretention_ms = \"soon\"\n",
            "log.retention_ms",
        ),
    ] {
        match Config::from_toml(text) {
            Err(err @ Error::InvalidConfig { .. }) if err.to_string().contains(key) => {}
            other => failures.push(format!("{text:?} -> {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "errors not naming the key:\n{}",
        failures.join("\n")
    );

    // A bad LogConfig also stops Log::open.
    let dir = tempfile::tempdir().unwrap();
    let bad = sluice_core::LogConfig {
        segment_bytes: 1,
        ..Default::default()
    };
    let err = Log::options().config(bad).open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("segment_bytes"), "{err}");
}
