//! Retention by time and size, `DeleteRecords`, and where consumers land when the log
//! start moves past them.

use std::time::Duration;

use sluice_core::record::Record;
use sluice_core::{ConsumerConfig, Error, NewTopic, OffsetReset, Seek, TopicPartition};

use crate::common::{append, batches, open, read_all, record, segment_files, segments};

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
