//! Transactions at the log level: transactional batches open a transaction, markers close
//! it, the last stable offset and the aborted-transaction index follow, and both survive a
//! reopen (from the snapshot, or rebuilt from the log when the snapshot is gone).

use sluice_core::record::{BatchIter, ProducerStamp, encode_batch};
use sluice_core::{Error, Log, NewTopic};

use crate::common::{open, partition_dir, record};

/// A transactional batch of `n` records from `pid` at `epoch`, sequences from `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, n: i64) -> bytes::BytesMut {
    let records: Vec<_> = (0..n)
        .map(|i| record(i, 1_000 + i, Some("k"), Some("v")))
        .collect();
    let stamp = ProducerStamp {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional: true,
    };
    encode_batch(&records, sluice_core::Compression::None, stamp).unwrap()
}

fn append_txn(log: &Log, pid: i64, epoch: i16, seq: i32, n: i64) -> i64 {
    let mut bytes = txn_batch(pid, epoch, seq, n);
    log.append("t", 0, &mut bytes).unwrap().base_offset
}

fn plain(log: &Log) -> i64 {
    crate::common::append(log, "t", 0, &[record(0, 1, None, Some("plain"))]).base_offset
}

// Proves the LSO stops at the oldest open transaction, a commit adds nothing to the
// aborted index and an abort adds (pid, first offset), with markers stored as control
// batches carrying the producer's id and epoch.
#[test]
fn markers_move_lso_and_index_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("t", 1)).unwrap();
    let p = log.partition("t", 0).unwrap();
    assert_eq!(plain(&log), 0);
    let a_first = append_txn(&log, 10, 0, 0, 2); // 1..=2
    let b_first = append_txn(&log, 11, 0, 0, 1); // 3
    assert_eq!(plain(&log), 4);
    assert_eq!(p.last_stable_offset(), a_first);
    let commit = p.append_marker(10, 0, true).unwrap();
    assert_eq!(commit, 5);
    assert_eq!(p.last_stable_offset(), b_first);
    append_txn(&log, 11, 0, 1, 1); // 6
    let abort = p.append_marker(11, 0, false).unwrap();
    assert_eq!(abort, 7);
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert_eq!(p.aborted_transactions(0, 8), vec![(11, b_first)]);
    assert!(p.aborted_transactions(8, 9).is_empty());
    assert!(p.aborted_transactions(0, b_first).is_empty());
    let aborted = p.aborted_transactions_full(0, 100);
    assert_eq!(aborted[0].last_offset, abort);

    // A second marker without an open transaction (a retried EndTxn) changes nothing.
    p.append_marker(11, 0, false).unwrap();
    assert_eq!(p.aborted_transactions(0, 100).len(), 1);

    let read = log.read("t", 0, commit, 1 << 20).unwrap();
    let (_, header) = BatchIter::new(&read.records).next().unwrap().unwrap();
    assert!(header.attributes().control() && header.attributes().transactional());
    assert_eq!((header.producer_id(), header.producer_epoch()), (10, 0));
    assert_eq!(header.base_sequence(), -1);
}

// Proves producers can't write control batches: markers come only from the coordinator.
#[test]
fn produced_control_batches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("t", 1)).unwrap();
    let p = log.partition("t", 0).unwrap();
    p.append_marker(1, 0, true).unwrap();
    let read = log.read("t", 0, 0, 1 << 20).unwrap();
    let mut bytes = read.records.to_vec();
    let err = log.append("t", 0, &mut bytes).unwrap_err();
    assert!(matches!(err, Error::InvalidBatch { .. }), "{err}");
}

// Proves a marker at a newer epoch fences the producer's older epoch in that partition.
#[test]
fn marker_epoch_fences_older_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("t", 1)).unwrap();
    let p = log.partition("t", 0).unwrap();
    append_txn(&log, 5, 0, 0, 1);
    p.append_marker(5, 1, false).unwrap();
    let mut bytes = txn_batch(5, 0, 1, 1);
    let err = log.append("t", 0, &mut bytes).unwrap_err();
    assert!(matches!(err, Error::ProducerFenced { .. }), "{err}");
    append_txn(&log, 5, 1, 0, 1);
}

// Proves open and aborted transactions survive a reopen, both from the snapshot written at
// close and rebuilt from the log alone when the snapshot is lost (a crash before it).
#[test]
fn transaction_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("t", 1)).unwrap();
        let p = log.partition("t", 0).unwrap();
        append_txn(&log, 1, 0, 0, 2); // 0..=1
        p.append_marker(1, 0, false).unwrap(); // 2
        append_txn(&log, 2, 0, 0, 1); // 3, left open
        plain(&log); // 4
        log.close().unwrap();
    }
    for without_snapshot in [false, true] {
        let log = open(dir.path());
        let p = log.partition("t", 0).unwrap();
        assert_eq!(
            p.last_stable_offset(),
            3,
            "without snapshot: {without_snapshot}"
        );
        assert_eq!(p.aborted_transactions(0, 5), vec![(1, 0)]);
        let path = partition_dir(&log, "t", 0).join("producer-state.json");
        log.close().unwrap();
        let _ = std::fs::remove_file(path);
    }
    // Committing the open one after the reopen releases the LSO.
    let log = open(dir.path());
    let p = log.partition("t", 0).unwrap();
    p.append_marker(2, 0, true).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
}

// Proves truncation below a marker reopens the transaction it closed.
#[test]
fn truncation_rebuilds_transaction_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(NewTopic::new("t", 1)).unwrap();
    let p = log.partition("t", 0).unwrap();
    append_txn(&log, 1, 0, 0, 1); // 0
    let marker = p.append_marker(1, 0, false).unwrap(); // 1
    assert_eq!(p.aborted_transactions(0, 2).len(), 1);
    p.truncate_to(marker).unwrap();
    assert!(p.aborted_transactions(0, 2).is_empty());
    assert_eq!(p.last_stable_offset(), 0);
}

// Proves compaction respects transactions: an aborted transactional write neither
// survives nor erases the committed value it shadowed, and segments at or past an open
// transaction are left alone until it ends.
#[test]
fn compaction_drops_aborted_records_and_waits_for_open_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("t", 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "256"),
    )
    .unwrap();
    let p = log.partition("t", 0).unwrap();
    let value_of = |log: &Log| -> Vec<(i64, Option<String>)> {
        crate::common::read_all(log, "t", 0)
            .into_iter()
            .filter(|r| r.key.as_deref() == Some(&b"k"[..]))
            .map(|r| {
                (
                    r.offset,
                    r.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                )
            })
            .collect()
    };
    // Committed "v" for key k (a plain write), then an aborted transactional write of k.
    let committed =
        crate::common::append(&log, "t", 0, &[record(0, 1, Some("k"), Some("v"))]).base_offset;
    let aborted_at = append_txn(&log, 7, 0, 0, 1);
    p.append_marker(7, 0, false).unwrap();
    // Roll a few segments past them so they are closed.
    for i in 0..6 {
        crate::common::append(
            &log,
            "t",
            0,
            &[record(
                0,
                10 + i,
                Some("filler"),
                Some("xxxxxxxxxxxxxxxxxxxxxxxx"),
            )],
        );
    }
    log.run_cleaner_at(sluice_core::now_ms()).unwrap();
    let k = value_of(&log);
    assert_eq!(
        k,
        vec![(committed, Some("v".to_string()))],
        "aborted write {aborted_at} must go, committed must stay"
    );

    // An open transaction blocks compaction of its segment and everything after it.
    let open_at = append_txn(&log, 8, 0, 0, 1);
    crate::common::append(&log, "t", 0, &[record(0, 100, Some("k"), Some("w"))]);
    for i in 0..6 {
        crate::common::append(
            &log,
            "t",
            0,
            &[record(
                0,
                200 + i,
                Some("filler"),
                Some("yyyyyyyyyyyyyyyyyyyyyyyy"),
            )],
        );
    }
    log.run_cleaner_at(sluice_core::now_ms()).unwrap();
    let before_end: Vec<i64> = value_of(&log).into_iter().map(|(o, _)| o).collect();
    assert!(
        before_end.contains(&committed),
        "compaction ran past the open transaction at {open_at}"
    );
    p.append_marker(8, 0, true).unwrap();
    for i in 0..6 {
        crate::common::append(
            &log,
            "t",
            0,
            &[record(
                0,
                300 + i,
                Some("filler"),
                Some("zzzzzzzzzzzzzzzzzzzzzzzz"),
            )],
        );
    }
    log.run_cleaner_at(sluice_core::now_ms()).unwrap();
    let after: Vec<Option<String>> = value_of(&log).into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        after,
        vec![Some("w".to_string())],
        "after the commit, only the newest committed value remains"
    );
}
