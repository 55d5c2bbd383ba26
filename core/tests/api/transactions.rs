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
