//! Idempotent producers: duplicate detection, sequence gaps, epoch fencing, and their
//! state across a reopen.

use sluice_core::record::{ProducerStamp, Record, encode_batch};
use sluice_core::{Compression, Error, Log, NewTopic};

use crate::common::{open, record};

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
