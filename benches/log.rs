//! Micro-benchmarks of the log's hot paths: batch validation (CRC32C), Kafka's murmur2
//! partitioner, batch encoding and a single append to a `Durability::None` partition.
//!
//! `sluice bench log` measures the log end to end against the disk; these isolate the CPU
//! cost of each step. Kept short (10 samples, 2 s) so that `cargo bench --bench log` is a
//! quick check and `cargo bench --bench log -- --test` (one iteration each) fits in CI.
//! The method and recorded results are in `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_core::record::{
    BatchHeader, ProducerStamp, Record, encode_batch, murmur2, partition_for_key,
};
use sluice_core::{Compression, Durability, LogConfig, LogOptions, NewTopic};

/// The shape the targets are stated for: 1000 records of 100 bytes per batch.
const RECORDS_PER_BATCH: i64 = 1000;
const VALUE_BYTES: usize = 100;
/// Appends truncate the partition back to empty (untimed) past this many records, so a
/// long measurement doesn't fill the disk or roll a segment.
const APPEND_RECORDS_MAX: i64 = 2_000_000;

fn records() -> Vec<Record> {
    (0..RECORDS_PER_BATCH)
        .map(|offset| Record {
            offset,
            timestamp: 1_700_000_000_000 + offset,
            key: None,
            value: Some(Bytes::from(
                (0..VALUE_BYTES)
                    .map(|i| b'a' + ((offset as usize * 7 + i * 13) % 26) as u8)
                    .collect::<Vec<u8>>(),
            )),
            headers: Vec::new(),
        })
        .collect()
}

fn batch() -> Vec<u8> {
    encode_batch(&records(), Compression::None, ProducerStamp::default())
        .expect("a 1000-record batch encodes")
        .to_vec()
}

/// Header validation is the append path's main CPU cost: CRC32C over the whole batch.
fn header_parse(c: &mut Criterion) {
    let batch = batch();
    let mut group = c.benchmark_group("batch_header");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("parse_1000x100B", |b| {
        b.iter(|| BatchHeader::parse(black_box(&batch)).map(|h| h.record_count()))
    });
    group.bench_function("peek_1000x100B", |b| {
        b.iter(|| BatchHeader::peek(black_box(&batch)).map(|h| h.record_count()))
    });
    group.finish();
}

/// Kafka's default partitioner, once per keyed record a producer sends.
fn partitioner(c: &mut Criterion) {
    let mut group = c.benchmark_group("murmur2");
    for key_bytes in [16usize, 100] {
        let key: Vec<u8> = (0..key_bytes).map(|i| (i * 31) as u8).collect();
        group.throughput(Throughput::Bytes(key_bytes as u64));
        group.bench_function(format!("hash_{key_bytes}B"), |b| {
            b.iter(|| murmur2(black_box(&key)))
        });
    }
    let key = b"customer-0000042";
    group.throughput(Throughput::Elements(1));
    group.bench_function("partition_for_key_16B_of_12", |b| {
        b.iter(|| partition_for_key(black_box(key), black_box(12)))
    });
    group.finish();
}

/// Building a batch through the kafka-protocol codec: the producer's side of an append.
fn encode(c: &mut Criterion) {
    let records = records();
    let mut group = c.benchmark_group("encode_batch");
    group.throughput(Throughput::Elements(RECORDS_PER_BATCH as u64));
    group.bench_function("1000x100B_none", |b| {
        b.iter(|| {
            encode_batch(
                black_box(&records),
                Compression::None,
                ProducerStamp::default(),
            )
        })
    });
    group.finish();
}

/// One `Partition::append` of a 1000 x 100 B batch with `Durability::None`: validation,
/// offset assignment, index update and the write into the page cache.
fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = LogConfig::default().with_durability(Durability::None);
    let log = LogOptions::new()
        .config(config)
        .background(false)
        .open(dir.path())
        .expect("open log");
    log.create_topic(NewTopic::new("bench", 1))
        .expect("create topic");
    let partition = log.partition("bench", 0).expect("partition 0");
    let mut batch = batch();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(RECORDS_PER_BATCH as u64));
    group.bench_function("1000x100B_durability_none", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                if partition.log_end_offset() >= APPEND_RECORDS_MAX {
                    partition.truncate_to(0).expect("truncate");
                }
                let start = Instant::now();
                let info = partition.append(&mut batch).expect("append");
                timed += start.elapsed();
                black_box(info);
            }
            timed
        })
    });
    group.finish();
    log.close().expect("close log");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = header_parse, partitioner, encode, append
}
criterion_main!(benches);
