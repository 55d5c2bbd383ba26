//! Unit tests of the transaction coordinator over a real log: fencing, the timeout abort
//! and finishing a prepared commit after a restart.

#![allow(clippy::unwrap_used)]

use kafka_protocol::ResponseError;

use super::coordinator::{Phase, StagedOffset};
use crate::log::{Log, NewTopic};
use crate::record::{ProducerStamp, Record, encode_batch};

fn open(dir: &std::path::Path) -> Log {
    let log = Log::options().background(false).open(dir).unwrap();
    log.ensure_topic(NewTopic::new("t", 1)).unwrap();
    log
}

fn txn_append(log: &Log, pid: i64, epoch: i16, seq: i32) {
    let record = Record {
        offset: 0,
        timestamp: 1,
        key: None,
        value: Some(bytes::Bytes::from_static(b"v")),
        headers: Vec::new(),
    };
    let stamp = ProducerStamp {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional: true,
    };
    let mut batch = encode_batch(&[record], crate::Compression::None, stamp).unwrap();
    log.append("t", 0, &mut batch).unwrap();
}

// Proves a second InitProducerId fences the first epoch and aborts its open transaction.
#[test]
fn init_fences_and_aborts_the_previous_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let c = log.txn_coordinator().unwrap();
    let (pid, epoch) = c.init_producer("a", 60_000, None, false).unwrap();
    assert_eq!(
        c.add_partitions("a", pid, epoch, &[("t".into(), 0)]),
        vec![0]
    );
    txn_append(&log, pid, epoch, 0);
    assert_eq!(log.partition("t", 0).unwrap().last_stable_offset(), 0);

    let (pid2, epoch2) = c.init_producer("a", 60_000, None, false).unwrap();
    assert_eq!((pid2, epoch2), (pid, epoch + 1));
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert_eq!(p.aborted_transactions(0, 10), vec![(pid, 0)]);
    assert_eq!(
        c.end("a", pid, epoch, true),
        Err(ResponseError::ProducerFenced)
    );
    assert_eq!(
        c.init_producer("a", 0, None, false),
        Err(ResponseError::InvalidTransactionTimeout)
    );
}

// Proves the timer aborts a transaction past its timeout, bumps the epoch, and lets the
// timed-out producer (only it) re-initialise with its old epoch.
#[test]
fn expiry_aborts_and_bumps_the_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let c = log.txn_coordinator().unwrap();
    let (pid, epoch) = c.init_producer("slow", 1_000, None, false).unwrap();
    c.add_partitions("slow", pid, epoch, &[("t".into(), 0)]);
    txn_append(&log, pid, epoch, 0);
    assert_eq!(c.expire(crate::now_ms()), 0);
    assert_eq!(c.expire(crate::now_ms() + 5_000), 1);
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.aborted_transactions(0, 10).len(), 1);
    assert_eq!(
        c.add_offsets("slow", pid, epoch, "g"),
        Err(ResponseError::ProducerFenced)
    );
    assert_eq!(
        c.init_producer("slow", 1_000, Some((pid, epoch)), false),
        Ok((pid, epoch + 2))
    );
}

// Proves state survives a reload, and a commit interrupted after it was prepared is
// finished when the log reopens (the coordinator loads with it): markers written, staged
// offsets applied.
#[test]
fn reload_finishes_a_prepared_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, epoch) = {
        let log = open(dir.path());
        let c = log.txn_coordinator().unwrap();
        let (pid, epoch) = c.init_producer("x", 60_000, None, false).unwrap();
        c.add_partitions("x", pid, epoch, &[("t".into(), 0)]);
        c.add_offsets("x", pid, epoch, "g").unwrap();
        let staged = vec![StagedOffset {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            metadata: String::new(),
        }];
        c.stage_offsets("x", pid, epoch, "g", staged).unwrap();
        txn_append(&log, pid, epoch, 0);
        c.force_phase("x", Phase::PrepareCommit);
        log.close().unwrap();
        (pid, epoch)
    };
    let log = open(dir.path());
    let c = log.txn_coordinator().unwrap();
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert!(p.aborted_transactions(0, 10).is_empty());
    assert_eq!(log.committed_offset("g", "t", 0).map(|c| c.offset), Some(1));
    assert_eq!(c.end("x", pid, epoch, true), Ok(()));
    assert_eq!(
        c.init_producer("x", 60_000, None, false),
        Ok((pid, epoch + 1))
    );
}

// Proves reopening the log aborts a transaction an embedded producer left open (it died
// with its process) but keeps a Kafka client's, which may outlive the restart.
#[test]
fn reload_aborts_only_embedded_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let (client, embedded) = {
        let log = open(dir.path());
        let c = log.txn_coordinator().unwrap();
        let client = c.init_producer("client", 60_000, None, false).unwrap();
        let embedded = c.init_producer("embedded", 60_000, None, true).unwrap();
        for (id, (pid, epoch)) in [("client", client), ("embedded", embedded)] {
            assert_eq!(
                c.add_partitions(id, pid, epoch, &[("t".into(), 0)]),
                vec![0]
            );
            txn_append(&log, pid, epoch, 0);
        }
        log.close().unwrap();
        (client, embedded)
    };
    let log = open(dir.path());
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.aborted_transactions(0, 10), vec![(embedded.0, 1)]);
    assert_eq!(p.last_stable_offset(), 0);
    let c = log.txn_coordinator().unwrap();
    assert_eq!(c.end("client", client.0, client.1, true), Ok(()));
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    assert_eq!(
        c.end("embedded", embedded.0, embedded.1, true),
        Err(ResponseError::ProducerFenced)
    );
}
