//! `Log::read` returns whole batches, honours `max_bytes` on batch boundaries, and
//! tells the end of the log from outside it.

use sluice_core::record::Record;
use sluice_core::{Error, NewTopic};

use crate::common::{append, batches, decode_all, open, record};

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
