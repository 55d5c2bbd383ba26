//! Model-based property test of one partition: random appends (every codec), reads at
//! random offsets with random byte limits, truncations, segment-size changes and reopens run
//! against a real `Log` on disk and against an in-memory list of records; after every
//! operation the two must agree.

// Tests fail loudly on the first unexpected error.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_core::record::{BatchIter, Header, ProducerStamp, Record, decode_batch, encode_batch};
use sluice_core::{Compression, Error, Log, NewTopic};

const TOPIC: &str = "model";

/// One record as generated: key, value, timestamp, optional header value.
type Gen = (Option<Vec<u8>>, Option<Vec<u8>>, i64, Option<Vec<u8>>);

#[derive(Debug, Clone)]
enum Op {
    /// Append one batch of these records with `Compression::ALL[codec]`.
    Append { records: Vec<Gen>, codec: usize },
    /// Read at `pick % (end + 2)`: anywhere in the log, at its end, or one past it.
    Read { pick: u32, max_bytes: usize },
    /// Close the log and open it again.
    Reopen,
    /// `truncate_to(pick % (end + 1))`.
    Truncate { pick: u32 },
    /// Set `segment.bytes` to the minimum (every append rolls) or back to 1 MiB.
    SegmentBytes { tiny: bool },
}

fn gen_record() -> impl Strategy<Value = Gen> {
    (
        prop::option::weighted(0.8, prop::collection::vec(b'a'..=b'e', 0..6)),
        prop::option::weighted(0.9, prop::collection::vec(any::<u8>(), 0..300)),
        0i64..2_000_000_000_000,
        prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..8)),
    )
}

fn gen_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(gen_record(), 1..=20), 0..Compression::ALL.len())
            .prop_map(|(records, codec)| Op::Append { records, codec }),
        4 => (any::<u32>(), prop_oneof![0usize..200, 200usize..5_000, Just(1 << 20)])
            .prop_map(|(pick, max_bytes)| Op::Read { pick, max_bytes }),
        1 => Just(Op::Reopen),
        1 => any::<u32>().prop_map(|pick| Op::Truncate { pick }),
        1 => any::<bool>().prop_map(|tiny| Op::SegmentBytes { tiny }),
    ]
}

/// What the log should hold: every record by offset, and each batch's offset span.
#[derive(Default)]
struct Model {
    records: Vec<Record>,
    batches: Vec<(i64, i64)>,
}

impl Model {
    fn end(&self) -> i64 {
        self.records.len() as i64
    }
    /// Index of the batch holding `offset`.
    fn batch_of(&self, offset: i64) -> usize {
        self.batches.partition_point(|(_, last)| *last < offset)
    }
}

fn open(dir: &std::path::Path) -> Log {
    Log::options().background(false).open(dir).unwrap()
}

fn to_record(offset: i64, (key, value, ts, header): &Gen) -> Record {
    Record {
        offset,
        timestamp: *ts,
        key: key.clone().map(Bytes::from),
        value: value.clone().map(Bytes::from),
        headers: header
            .iter()
            .map(|v| Header {
                key: "h".into(),
                value: Some(Bytes::from(v.clone())),
            })
            .collect(),
    }
}

/// Checks one read at `offset` against the model; returns the offset after what it got.
fn check_read(
    log: &Log,
    model: &Model,
    offset: i64,
    max_bytes: usize,
) -> Result<i64, TestCaseError> {
    let end = model.end();
    let read = log.read(TOPIC, 0, offset, max_bytes);
    if offset > end {
        prop_assert!(
            matches!(read, Err(Error::OffsetOutOfRange { .. })),
            "read past the end at {offset}: {read:?}"
        );
        return Ok(offset);
    }
    let read = read.unwrap();
    prop_assert_eq!(read.high_watermark, end);
    prop_assert_eq!(read.log_start_offset, 0);
    if offset == end {
        prop_assert!(read.records.is_empty(), "read at the end returned data");
        return Ok(offset);
    }
    prop_assert!(
        !read.records.is_empty(),
        "empty read at {offset} below end {end}"
    );
    let mut expected_batch = model.batch_of(offset);
    let mut total = 0usize;
    let mut count = 0usize;
    for item in BatchIter::new(&read.records) {
        let (start, header) = item.unwrap();
        let span = (header.base_offset(), header.last_offset());
        // Whole batches, exactly the model's, in order, starting with the one holding offset.
        prop_assert_eq!(Some(&span), model.batches.get(expected_batch));
        expected_batch += 1;
        total += header.batch_bytes();
        count += 1;
        let batch = read.records.slice(start..start + header.batch_bytes());
        let records = decode_batch(batch).unwrap();
        prop_assert!(records.first().is_some_and(|r| r.offset <= offset) || count > 1);
        for r in records {
            prop_assert_eq!(&r, &model.records[r.offset as usize]);
        }
    }
    prop_assert_eq!(total, read.records.len());
    prop_assert!(
        count == 1 || total <= max_bytes,
        "{count} batches, {total} bytes > {max_bytes}"
    );
    Ok(model.batches[expected_batch - 1].1 + 1)
}

/// Reads the whole partition in small steps and compares it with the model.
fn check_all(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    let p = log.partition(TOPIC, 0).unwrap();
    prop_assert_eq!(p.log_end_offset(), model.end());
    prop_assert_eq!(p.log_start_offset(), 0);
    let mut offset = 0;
    while offset < model.end() {
        offset = check_read(log, model, offset, 700)?;
    }
    check_read(log, model, model.end(), 700)?;
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    log.create_topic(NewTopic::new(TOPIC, 1)).unwrap();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append { records, codec } => {
                let batch: Vec<Record> = records
                    .iter()
                    .enumerate()
                    .map(|(i, g)| to_record(i as i64, g))
                    .collect();
                let mut bytes =
                    encode_batch(&batch, Compression::ALL[codec], ProducerStamp::default())
                        .unwrap();
                let info = log.append(TOPIC, 0, &mut bytes).unwrap();
                prop_assert_eq!(info.base_offset, model.end());
                prop_assert_eq!(info.last_offset, model.end() + records.len() as i64 - 1);
                let base = model.end();
                model.batches.push((base, info.last_offset));
                model.records.extend(
                    records
                        .iter()
                        .enumerate()
                        .map(|(i, g)| to_record(base + i as i64, g)),
                );
            }
            Op::Read { pick, max_bytes } => {
                let offset = i64::from(pick) % (model.end() + 2);
                check_read(&log, &model, offset, max_bytes)?;
            }
            Op::Reopen => {
                log.close().unwrap();
                drop(log);
                log = open(dir.path());
            }
            Op::Truncate { pick } => {
                let offset = i64::from(pick) % (model.end() + 1);
                log.partition(TOPIC, 0)
                    .unwrap()
                    .truncate_to(offset)
                    .unwrap();
                if offset < model.end() {
                    // Cut at the start of the batch holding the offset.
                    let b = model.batch_of(offset);
                    let base = model.batches[b].0;
                    model.batches.truncate(b);
                    model.records.truncate(base as usize);
                }
            }
            Op::SegmentBytes { tiny } => {
                let size = if tiny { "128" } else { "1048576" };
                let overrides: BTreeMap<String, String> =
                    [("segment.bytes".to_string(), size.to_string())].into();
                log.alter_topic_config(TOPIC, overrides).unwrap();
            }
        }
        check_all(&log, &model)?;
    }
    // Whatever the sequence, a final reopen serves the same log.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    check_all(&log, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_in_memory_model(ops in prop::collection::vec(gen_op(), 1..=40)) {
        // Guards against any sequence of appends, reads, truncations, segment rolls and
        // reopens leaving the log disagreeing with a plain list of records: wrong end
        // offset, lost or resurrected records, cut or misplaced batches, reads that do not
        // start with the batch holding the requested offset.
        run(ops)?;
    }
}
