//! Helpers shared by the API tests: a log opened without background work, records and
//! batches to append, whole-log reads, and polling and seeking consumers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::record::{BatchIter, ProducerStamp, Record, decode_batch, encode_batch};
use sluice_core::{AppendInfo, Compression, ConsumerRecord, Log, Seek, TopicPartition};

/// Opens a log without the background thread, so retention and compaction run only when a
/// test asks for them.
pub(crate) fn open(dir: &Path) -> Log {
    Log::options().background(false).open(dir).unwrap()
}

/// A record for `encode_batch`: `offset` is relative to the batch start.
pub(crate) fn record(
    offset: i64,
    timestamp: i64,
    key: Option<&str>,
    value: Option<&str>,
) -> Record {
    Record {
        offset,
        timestamp,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Vec::new(),
    }
}

/// Encodes `records` as one plain (non-idempotent) batch and appends it.
pub(crate) fn append(log: &Log, topic: &str, partition: i32, records: &[Record]) -> AppendInfo {
    append_with(log, topic, partition, records, Compression::None)
}

pub(crate) fn append_with(
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
pub(crate) fn batches(bytes: &Bytes) -> Vec<(i64, i64, usize)> {
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
pub(crate) fn decode_all(bytes: &Bytes) -> Vec<Record> {
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
pub(crate) fn read_from(
    log: &Log,
    topic: &str,
    partition: i32,
    from: i64,
    max_bytes: usize,
) -> Vec<Record> {
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
pub(crate) fn read_all(log: &Log, topic: &str, partition: i32) -> Vec<Record> {
    let start = log.partition(topic, partition).unwrap().log_start_offset();
    read_from(log, topic, partition, start, 4096)
}

/// Polls until `n` records arrived (or fails after a generous deadline).
pub(crate) fn poll_n(consumer: &mut sluice_core::Consumer, n: usize) -> Vec<ConsumerRecord> {
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
pub(crate) fn segment_files(dir: &Path) -> Vec<(i64, u64)> {
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

pub(crate) fn partition_dir(log: &Log, topic: &str, partition: i32) -> PathBuf {
    log.partition(topic, partition).unwrap().dir().to_path_buf()
}

pub(crate) fn segments(log: &Log, topic: &str, partition: i32) -> usize {
    log.describe_topic(topic).unwrap().partitions[partition as usize].segments
}

/// Seeks one partition and returns the offset of the first record polled after it.
pub(crate) fn first_after(
    consumer: &mut sluice_core::Consumer,
    tp: &TopicPartition,
    to: Seek,
) -> Option<i64> {
    consumer.seek(tp, to).unwrap();
    consumer
        .poll(Duration::from_millis(30))
        .unwrap()
        .first()
        .map(|r| r.offset)
}
