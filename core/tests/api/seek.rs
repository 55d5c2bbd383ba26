//! Consumer seeks by offset, timestamp, beginning and end, across segments and a
//! reopen.

use std::time::Duration;

use sluice_core::record::Record;
use sluice_core::{ConsumerConfig, NewTopic, Seek, TopicPartition};

use crate::common::{append, first_after, open, record, segments};

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

#[test]
fn position_counts_buffered_records_as_unconsumed() {
    // Guards against `position` reporting where the next read from the log starts
    // (past records fetched but not yet handed out) instead of the next record `poll`
    // returns. A loop "poll until position reaches the end" then stopped with records
    // still buffered: a streams task restoring its store that way lost the tail of its
    // changelog after a crash, and resumed counting from a stale value.
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("pos", 0);
    let log = open(dir.path());
    log.create_topic(NewTopic::new("pos", 1)).unwrap();
    // One batch of 100 records: one read buffers all of them.
    let recs: Vec<Record> = (0..100)
        .map(|i| record(i, 1_000 + i, Some("k"), Some("v")))
        .collect();
    append(&log, "pos", 0, &recs);
    let mut c = log.consumer(ConsumerConfig::default().max_poll_records(30));
    c.assign(vec![tp.clone()]).unwrap();
    c.seek(&tp, Seek::Beginning).unwrap();
    let end = log.partition("pos", 0).unwrap().log_end_offset();
    let mut seen = Vec::new();
    while c.position(&tp).unwrap() < end {
        let got = c.poll(Duration::from_secs(1)).unwrap();
        assert!(got.len() <= 30);
        seen.extend(got.iter().map(|r| r.offset));
        let next = got.last().map_or(0, |r| r.offset + 1);
        assert_eq!(
            c.position(&tp).unwrap(),
            next,
            "after {} records",
            seen.len()
        );
    }
    assert_eq!(seen, (0..100).collect::<Vec<i64>>());
}
