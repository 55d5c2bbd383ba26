//! Log compaction (`cleanup.policy=compact`): newest value per key, tombstone expiry,
//! and compaction running alongside readers and writers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use sluice_core::record::{BatchIter, ProducerStamp, Record, decode_batch, encode_batch};
use sluice_core::{Compression, ConsumerConfig, Log, NewTopic, Seek, TopicPartition};

use crate::common::{
    append, batches, decode_all, open, partition_dir, poll_n, read_all, record, segments,
};

#[test]
fn compaction_keeps_newest_per_key_and_expires_tombstones() {
    // Guards against compaction keeping a stale value, dropping the newest one, moving
    // offsets, or removing a tombstone before delete.retention.ms has passed (consumers
    // that were behind would then never learn of the delete).
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("cmp", 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "1024")
            .config("delete.retention.ms", "10000"),
    )
    .unwrap();
    const T0: i64 = 1_000_000;
    const T1: i64 = 2_000_000;
    // Model: every record written, by offset.
    let mut model: Vec<(i64, String, Option<String>)> = Vec::new();
    let mut write = |log: &Log, items: &[(String, Option<String>, i64)]| {
        let recs: Vec<Record> = items
            .iter()
            .enumerate()
            .map(|(i, (k, v, t))| record(i as i64, *t, Some(k), v.as_deref()))
            .collect();
        let info = append(log, "cmp", 0, &recs);
        for (i, (k, v, _)) in items.iter().enumerate() {
            model.push((info.base_offset + i as i64, k.clone(), v.clone()));
        }
    };
    let mut seq = 0i64;
    for _ in 0..60 {
        let items: Vec<_> = (0..3)
            .map(|_| {
                seq += 1;
                let key = format!("k{}", (seq * 7) % 10);
                (key.clone(), Some(format!("{key}-v{seq}")), T0 + seq)
            })
            .collect();
        write(&log, &items);
    }
    write(&log, &[("k3".into(), None, T1), ("k7".into(), None, T1)]);
    write(&log, &[("k1".into(), Some("k1-last".into()), T1 + 1)]);
    // A batch larger than segment.bytes sits alone in the active segment, so everything
    // above was closed and is eligible.
    let filler = "f".repeat(1500);
    write(&log, &[("filler".into(), Some(filler), T1 + 2)]);
    let filler_offset = model.last().unwrap().0;
    let end = log.partition("cmp", 0).unwrap().log_end_offset();

    let newest: BTreeMap<String, (i64, Option<String>)> = model
        .iter()
        .map(|(o, k, v)| (k.clone(), (*o, v.clone())))
        .collect();
    let check = |log: &Log, tombstones_kept: bool| {
        let surviving = read_all(log, "cmp", 0);
        let mut keys = BTreeMap::new();
        for r in &surviving {
            let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
            let value = r
                .value
                .clone()
                .map(|v| String::from_utf8(v.to_vec()).unwrap());
            // Offsets unchanged: the record at this offset is the one written there.
            let (o, k, v) = &model[r.offset as usize];
            assert_eq!((o, k, v), (&r.offset, &key, &value));
            assert!(
                keys.insert(key.clone(), r.offset).is_none(),
                "{key} kept twice"
            );
        }
        for (key, (offset, value)) in &newest {
            let expect_present = value.is_some() || tombstones_kept;
            assert_eq!(
                keys.get(key).copied(),
                expect_present.then_some(*offset),
                "key {key}"
            );
        }
        assert_eq!(log.partition("cmp", 0).unwrap().log_end_offset(), end);
        assert!(keys.contains_key("filler"));
        assert_eq!(keys["filler"], filler_offset);
    };

    // Tombstones are younger than delete.retention.ms: they stay, the values they deleted go.
    let (_, c) = log.run_cleaner_at(T1 + 5_000).unwrap();
    assert!(c.segments_cleaned > 0 && c.records_removed > 0 && c.bytes_freed > 0);
    check(&log, true);
    // A consumer seeking into a compacted gap moves on to the next surviving record.
    let mut consumer = log.consumer(ConsumerConfig::default());
    let tp = TopicPartition::new("cmp", 0);
    consumer.assign(vec![tp.clone()]).unwrap();
    consumer.seek(&tp, Seek::Offset(1)).unwrap();
    let first = consumer.poll(Duration::from_secs(1)).unwrap()[0].offset;
    let survivors: Vec<i64> = read_all(&log, "cmp", 0).iter().map(|r| r.offset).collect();
    assert_eq!(Some(&first), survivors.iter().find(|o| **o >= 1));

    // Past delete.retention.ms the tombstones go too.
    let (_, c) = log.run_cleaner_at(T1 + 20_000).unwrap();
    assert_eq!(c.records_removed, 2);
    check(&log, false);
    // A pass with nothing to do changes nothing.
    let (_, c) = log.run_cleaner_at(T1 + 30_000).unwrap();
    assert_eq!(c.records_removed, 0);

    log.close().unwrap();
    drop(consumer);
    drop(log);
    let log = open(dir.path());
    check(&log, false);
}

#[test]
fn compaction_runs_under_concurrent_reads_and_appends() {
    // Guards against compaction's segment swap breaking readers mid-scan (errors, records
    // at the wrong offset) or letting a key's value go backwards, and against it blocking
    // or corrupting appends made while it runs.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("live", 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "2048"),
    )
    .unwrap();
    const KEYS: u64 = 20;
    let done = Arc::new(AtomicBool::new(false));
    let parse = |r: &Record| -> (u64, u64) {
        let key: u64 = std::str::from_utf8(r.key.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let value = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
        let (k, version) = value.split_once(':').unwrap();
        assert_eq!(k.parse::<u64>().unwrap(), key, "value under the wrong key");
        (key, version.parse().unwrap())
    };

    let reader = {
        let log = log.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last_final: BTreeMap<u64, u64> = BTreeMap::new();
            let mut scans = 0;
            while !done.load(Ordering::Acquire) || scans < 3 {
                let mut offset = 0i64;
                let mut this_scan: BTreeMap<u64, u64> = BTreeMap::new();
                let mut previous_offset = -1;
                loop {
                    let read = log.read("live", 0, offset, 1500).unwrap();
                    if read.records.is_empty() {
                        break;
                    }
                    for r in decode_all(&read.records) {
                        if r.offset < offset {
                            continue;
                        }
                        assert!(r.offset > previous_offset);
                        previous_offset = r.offset;
                        let (key, version) = parse(&r);
                        // Versions grow with offsets: within a scan, a key only moves forward.
                        let prev = this_scan.insert(key, version);
                        assert!(prev.is_none_or(|p| p < version), "key {key} went back");
                    }
                    offset = batches(&read.records).last().unwrap().1 + 1;
                }
                // Across scans, the newest value seen for a key never goes backwards and no
                // key disappears.
                for (key, version) in &last_final {
                    let now = this_scan.get(key).copied();
                    assert!(
                        now.is_some_and(|n| n >= *version),
                        "key {key}: {version} then {now:?}"
                    );
                }
                last_final = this_scan;
                scans += 1;
            }
            scans
        })
    };
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut version = 0u64;
            let mut expected_next = 0i64;
            for _ in 0..1500 {
                let recs: Vec<Record> = (0..4)
                    .map(|i| {
                        version += 1;
                        let key = (version * 7) % KEYS;
                        record(
                            i as i64,
                            sluice_core::now_ms(),
                            Some(&key.to_string()),
                            Some(&format!("{key}:{version}")),
                        )
                    })
                    .collect();
                let info = append(&log, "live", 0, &recs);
                assert_eq!(info.base_offset, expected_next);
                expected_next = info.last_offset + 1;
            }
            version
        })
    };
    let mut removed = 0;
    let mut passes = 0;
    while !writer.is_finished() {
        let (_, c) = log.run_cleaner_at(sluice_core::now_ms() + 1_000).unwrap();
        removed += c.records_removed;
        passes += 1;
    }
    let versions = writer.join().unwrap();
    let (_, c) = log.run_cleaner_at(sluice_core::now_ms() + 1_000).unwrap();
    removed += c.records_removed;
    done.store(true, Ordering::Release);
    let scans = reader.join().unwrap();
    assert!(removed > 0, "compaction removed nothing in {passes} passes");
    eprintln!("{passes} compaction passes, {scans} reader scans, {removed} records removed");

    // Every key's newest value survived; the log end never moved back.
    let end = log.partition("live", 0).unwrap().log_end_offset();
    assert_eq!(end, versions as i64);
    let mut newest: BTreeMap<u64, u64> = BTreeMap::new();
    for r in read_all(&log, "live", 0) {
        let (key, version) = parse(&r);
        newest.insert(key, version);
    }
    assert_eq!(newest.len(), KEYS as usize);
    // The newest version of each key is among the last KEYS*4 written: check precisely by
    // replaying the writer's key schedule.
    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    let mut v = 0u64;
    for _ in 0..1500 {
        for _ in 0..4 {
            v += 1;
            want.insert((v * 7) % KEYS, v);
        }
    }
    assert_eq!(newest, want);
}

/// What a test needs to know about one stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchSummary {
    base_offset: i64,
    last_offset: i64,
    record_count: i32,
    producer_id: i64,
    base_sequence: i32,
    last_sequence: i32,
    log_append_time: bool,
    max_timestamp: i64,
}

/// Every batch of a partition, read through `Partition::read`, keyed by last offset, with
/// the offsets and timestamps `decode_batch` gives its records.
fn stored_batches(log: &Log, topic: &str) -> BTreeMap<i64, (BatchSummary, Vec<(i64, i64)>)> {
    let partition = log.partition(topic, 0).unwrap();
    let read = partition
        .read(partition.log_start_offset(), 1 << 20)
        .unwrap();
    let mut out = BTreeMap::new();
    for item in BatchIter::new(&read.records) {
        let (start, header) = item.unwrap();
        let summary = BatchSummary {
            base_offset: header.base_offset(),
            last_offset: header.last_offset(),
            record_count: header.record_count(),
            producer_id: header.producer_id(),
            base_sequence: header.base_sequence(),
            last_sequence: header.last_sequence(),
            log_append_time: header.attributes().log_append_time(),
            max_timestamp: header.max_timestamp(),
        };
        let records = decode_batch(read.records.slice(start..start + header.batch_bytes()))
            .unwrap()
            .iter()
            .map(|r| (r.offset, r.timestamp))
            .collect();
        out.insert(summary.last_offset, (summary, records));
    }
    out
}

/// Records keyed `{prefix}{k}` for each `k` in `keys`, with offsets from 0.
fn keyed_records(prefix: &str, keys: &[usize], tag: &str) -> Vec<Record> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let key = format!("{prefix}{k}");
            let value = format!("{key}-{tag}");
            record(i as i64, 1_000 + i as i64, Some(&key), Some(&value))
        })
        .collect()
}

/// One batch of `keyed_records`, stamped with `stamp`.
fn keyed_batch(stamp: ProducerStamp, prefix: &str, keys: &[usize], tag: &str) -> BytesMut {
    encode_batch(&keyed_records(prefix, keys, tag), Compression::None, stamp).unwrap()
}

/// Deletes every producer-state snapshot under `dir`, so a reopen rebuilds the producer
/// state from the batch headers in the log alone.
fn remove_producer_snapshots(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            remove_producer_snapshots(&path);
        } else if path.file_name().is_some_and(|n| n == "producer-state.json") {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// An idempotent producer's batch of five records (keys `a0`..`a4`, offsets 0..=4,
/// sequences 0..=4) after a plain batch overwrote the keys in `overwritten` and the cleaner
/// compacted it, with the log reopened without its producer-state snapshot so the state
/// was rebuilt from the batch headers alone.
struct CompactedIdempotentBatch {
    log: Log,
    stamp: ProducerStamp,
    /// The batch as the producer sent it, for retries.
    sent: BytesMut,
    before: BatchSummary,
    after: BatchSummary,
    /// Offsets of the records the compacted batch still holds.
    kept: Vec<i64>,
    /// The log end offset after compaction.
    end: i64,
}

fn compact_idempotent_batch(dir: &Path, overwritten: &[usize]) -> CompactedIdempotentBatch {
    let log = open(dir);
    log.create_topic(
        NewTopic::new("cmp-idem", 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "1024"),
    )
    .unwrap();
    let (producer_id, producer_epoch) = log.init_producer_id().unwrap();
    let stamp = ProducerStamp {
        producer_id,
        producer_epoch,
        base_sequence: 0,
        transactional: false,
    };
    let sent = keyed_batch(stamp, "a", &[0, 1, 2, 3, 4], "old");
    let info = log.append("cmp-idem", 0, &mut sent.clone()).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 4));
    append(&log, "cmp-idem", 0, &keyed_records("a", overwritten, "new"));
    // A batch larger than segment.bytes sits alone in the active segment, so the batches
    // above are in a closed segment the cleaner may rewrite.
    let filler = "f".repeat(1500);
    append(
        &log,
        "cmp-idem",
        0,
        &[record(0, 3_000, Some("filler"), Some(&filler))],
    );
    let end = log.partition("cmp-idem", 0).unwrap().log_end_offset();
    assert!(segments(&log, "cmp-idem", 0) >= 2);
    let (before, _) = stored_batches(&log, "cmp-idem")[&4];

    let (_, c) = log.run_cleaner_at(sluice_core::now_ms()).unwrap();
    assert_eq!(c.records_removed, overwritten.len() as u64);
    let (after, records) = stored_batches(&log, "cmp-idem")
        .into_values()
        .find(|(b, _)| b.producer_id == producer_id)
        .expect("the compacted batch is still in the log");
    assert_eq!(log.partition("cmp-idem", 0).unwrap().log_end_offset(), end);

    let partition_dir = partition_dir(&log, "cmp-idem", 0);
    log.close().unwrap();
    drop(log);
    remove_producer_snapshots(&partition_dir);
    let log = open(dir);
    assert_eq!(log.partition("cmp-idem", 0).unwrap().log_end_offset(), end);
    CompactedIdempotentBatch {
        log,
        stamp,
        sent,
        before,
        after,
        kept: records.iter().map(|r| r.0).collect(),
        end,
    }
}

#[test]
fn compaction_keeps_an_idempotent_batch_s_last_offset_and_sequence() {
    // Guards against compaction re-encoding an idempotent producer's batch with a shorter
    // span: once its last record is dropped, the rewritten header must still end at the
    // original last offset (widened last_offset_delta) and so the original last sequence.
    // Otherwise producer state rebuilt from the log (no snapshot) expects the wrong next
    // sequence, rejects the producer's next in-order batch as OutOfOrderSequence, and no
    // longer recognises a retry of the batch as a duplicate.
    let dir = tempfile::tempdir().unwrap();
    let s = compact_idempotent_batch(dir.path(), &[2, 4]);
    assert_eq!(
        (
            s.before.record_count,
            s.before.last_offset,
            s.before.last_sequence
        ),
        (5, 4, 4)
    );
    // Same span and sequences, fewer records.
    assert_eq!(s.after.record_count, 3);
    assert_eq!(s.kept, vec![0, 1, 3]);
    assert_eq!(s.after.last_offset, s.before.last_offset);
    assert_eq!(s.after.last_sequence, s.before.last_sequence);
    assert_eq!(
        (
            s.after.base_offset,
            s.after.base_sequence,
            s.after.producer_id
        ),
        (0, 0, s.stamp.producer_id)
    );

    // A retry of the compacted batch (the producer's last) is answered with its offsets.
    let retry = s.log.append("cmp-idem", 0, &mut s.sent.clone()).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.duplicate),
        (0, 4, true)
    );
    // The next in-order batch is accepted, and a retry of it is a duplicate.
    let next_stamp = ProducerStamp {
        base_sequence: 5,
        ..s.stamp
    };
    let next = keyed_batch(next_stamp, "a", &[5, 6], "next");
    let info = s.log.append("cmp-idem", 0, &mut next.clone()).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.duplicate),
        (s.end, s.end + 1, false)
    );
    let retry = s.log.append("cmp-idem", 0, &mut next.clone()).unwrap();
    assert_eq!((retry.base_offset, retry.duplicate), (s.end, true));
    assert!(
        s.log
            .append("cmp-idem", 0, &mut s.sent.clone())
            .unwrap()
            .duplicate
    );
    assert_eq!(
        s.log.partition("cmp-idem", 0).unwrap().log_end_offset(),
        s.end + 2
    );
}

#[test]
fn compaction_keeps_an_idempotent_batch_s_base_sequence() {
    // Guards against a retried idempotent batch being rejected after compaction dropped
    // its first record: the stored batch then starts at sequence 1 (the encoder bases a
    // batch at its first kept record), and producer state rebuilt from the log remembers
    // 1..=4. The duplicate check matches on the last sequence and gives the retry its
    // original offsets back.
    let dir = tempfile::tempdir().unwrap();
    let s = compact_idempotent_batch(dir.path(), &[0, 4]);
    assert_eq!(s.after.record_count, 3);
    assert_eq!(s.kept, vec![1, 2, 3]);
    assert_eq!(s.after.last_offset, s.before.last_offset);
    assert_eq!(s.after.last_sequence, s.before.last_sequence);

    // The next in-order batch is accepted: the last sequence survived.
    let next_stamp = ProducerStamp {
        base_sequence: 5,
        ..s.stamp
    };
    let next = keyed_batch(next_stamp, "a", &[5], "next");
    let info = s.log.append("cmp-idem", 0, &mut next.clone()).unwrap();
    assert_eq!((info.base_offset, info.duplicate), (s.end, false));
    // A retry of the compacted batch is answered with its original offsets.
    let retry = s.log.append("cmp-idem", 0, &mut s.sent.clone()).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.duplicate),
        (0, 4, true)
    );
    // On disk the batch starts at its first surviving record.
    assert_eq!(
        (s.after.base_offset, s.after.base_sequence),
        (1, s.before.base_sequence + 1)
    );
}

#[test]
fn compaction_keeps_log_append_time() {
    // Guards against compaction re-encoding a LogAppendTime batch as a CreateTime one:
    // consumers and `decode_batch` would then see the producer's timestamps instead of the
    // time the log appended the batch.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(
        NewTopic::new("cmp-lat", 1)
            .config("cleanup.policy", "compact")
            .config("segment.bytes", "1024")
            .config("message.timestamp.type", "LogAppendTime"),
    )
    .unwrap();
    let plain = ProducerStamp::default();
    let first = log
        .append(
            "cmp-lat",
            0,
            &mut keyed_batch(plain, "k", &[0, 1, 2, 3], "old"),
        )
        .unwrap();
    let stamped = first.log_append_time.unwrap();
    // Overwrites k0 and k3, the first and last records of the first batch.
    let second = log
        .append("cmp-lat", 0, &mut keyed_batch(plain, "k", &[0, 3], "new"))
        .unwrap();
    let filler = "f".repeat(1500);
    append(
        &log,
        "cmp-lat",
        0,
        &[record(0, 42, Some("filler"), Some(&filler))],
    );

    let (_, c) = log.run_cleaner_at(sluice_core::now_ms() + 1_000).unwrap();
    assert_eq!(c.records_removed, 2);
    let check = |log: &Log| {
        // The first batch, compacted down to offsets 1 and 2.
        let (summary, records) = stored_batches(log, "cmp-lat")
            .into_values()
            .find(|(b, _)| b.base_offset <= 1)
            .unwrap();
        assert!(summary.log_append_time, "{summary:?}");
        assert_eq!(summary.max_timestamp, stamped);
        assert_eq!(records, vec![(1, stamped), (2, stamped)]);
        assert_eq!(summary.record_count, 2);
        assert_eq!(summary.last_offset, first.last_offset);

        let mut consumer = log.consumer(ConsumerConfig::default());
        consumer
            .assign(vec![TopicPartition::new("cmp-lat", 0)])
            .unwrap();
        let got = poll_n(&mut consumer, 5);
        let times: Vec<(i64, i64)> = got.iter().map(|r| (r.offset, r.timestamp)).collect();
        let again = second.log_append_time.unwrap();
        assert_eq!(
            times[..4],
            [(1, stamped), (2, stamped), (4, again), (5, again)]
        );
        assert!(times[4].1 >= again, "filler stamped at {}", times[4].1);
    };
    check(&log);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path());
    check(&log);
}
