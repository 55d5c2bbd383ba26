//! Damaged index files of closed segments (deleted, truncated, random, zeroed, longer,
//! misaligned) are rebuilt on open, and every offset and timestamp lookup still answers
//! right.

use std::path::{Path, PathBuf};

use sluice_core::Log;

use crate::common::{
    Rng, TOPIC, append_at, assert_record, copy_dir, create_topic, decode_all, open, options,
    segment_file, timestamp_for,
};
use crate::disk::{file_len, segment_bases, tempdir, truncate_file};

#[derive(Debug, Clone, Copy)]
enum IndexDamage {
    Delete,
    TruncateOdd,
    TruncateZero,
    TruncateHalf,
    Random,
    Zeros,
    RandomLonger,
    /// Offset-index entries that pass every structural check but point into the middle
    /// of the first batch (every batch is longer than 30 bytes).
    Misaligned,
}

fn damage_index(path: &Path, damage: IndexDamage, rng: &mut Rng) {
    let len = file_len(path) as usize;
    match damage {
        IndexDamage::Delete => std::fs::remove_file(path).expect("delete index"),
        // 8- and 12-byte entries: an odd length is never whole entries.
        IndexDamage::TruncateOdd => truncate_file(path, len.saturating_sub(3) as u64 | 1),
        IndexDamage::TruncateZero => truncate_file(path, 0),
        IndexDamage::TruncateHalf => {
            let entry = if path.extension().is_some_and(|e| e == "index") {
                8
            } else {
                12
            };
            truncate_file(path, ((len / entry) / 2 * entry) as u64);
        }
        IndexDamage::Random => std::fs::write(path, rng.bytes(len)).expect("write"),
        IndexDamage::Zeros => std::fs::write(path, vec![0; len]).expect("write"),
        IndexDamage::RandomLonger => std::fs::write(path, rng.bytes(len + 24)).expect("write"),
        IndexDamage::Misaligned => {
            let mut entries = Vec::new();
            for (relative_offset, position) in [(0u32, 0u32), (1, 5), (2, 30)] {
                entries.extend_from_slice(&relative_offset.to_be_bytes());
                entries.extend_from_slice(&position.to_be_bytes());
            }
            std::fs::write(path, entries).expect("write");
        }
    }
}

fn index_files(dir: &Path, base_offset: i64) -> [PathBuf; 2] {
    let log = segment_file(dir, TOPIC, 0, base_offset);
    [log.with_extension("index"), log.with_extension("timeindex")]
}

/// Reads at every offset and looks up every record's timestamp, checking each answer.
fn check_every_offset_and_timestamp(log: &Log, end: i64, what: &str) {
    let partition = log.partition(TOPIC, 0).expect("partition");
    assert_eq!(partition.log_end_offset(), end, "{what}");
    for offset in 0..end {
        let read = log.read(TOPIC, 0, offset, 1).expect("read");
        let records = decode_all(&read.records);
        let first = records
            .first()
            .unwrap_or_else(|| panic!("{what}: nothing at {offset}"));
        assert!(
            first.offset <= offset,
            "{what}: read at {offset} starts at {}",
            first.offset
        );
        let record = records
            .iter()
            .find(|r| r.offset == offset)
            .unwrap_or_else(|| panic!("{what}: read at {offset} misses it"));
        assert_record(record, offset);

        let ts = timestamp_for(offset);
        assert_eq!(
            partition.offset_for_timestamp(ts).expect("lookup"),
            Some(offset),
            "{what}: ts of {offset}"
        );
        assert_eq!(
            partition.offset_for_timestamp(ts - 5).expect("lookup"),
            Some(offset),
            "{what}: before ts of {offset}"
        );
    }
    assert_eq!(
        partition
            .offset_for_timestamp(timestamp_for(0) - 1_000)
            .expect("lookup"),
        Some(0),
        "{what}"
    );
    assert_eq!(
        partition
            .offset_for_timestamp(timestamp_for(end))
            .expect("lookup"),
        None,
        "{what}"
    );
}

#[test]
fn damaged_index_files_of_closed_segments_are_rebuilt() {
    // Guards against a missing or damaged index (derived data) failing the open or giving
    // wrong reads or timestamp lookups, and against the rebuilt index not being written
    // back, which would make every later open rescan the segment.
    let pristine = tempdir();
    let log = open(pristine.path());
    create_topic(
        &log,
        &[("segment.bytes", "1024"), ("index.interval.bytes", "150")],
    );
    let mut end = 0;
    for i in 0..60 {
        let count = 1 + i % 3;
        append_at(&log, end, count);
        end += count;
    }
    log.close().expect("close");
    drop(log);
    let bases = segment_bases(pristine.path());
    assert!(
        bases.len() >= 5,
        "expected many segments, got {}",
        bases.len()
    );
    let closed = &bases[..bases.len() - 1];
    let originals: Vec<[Vec<u8>; 2]> = closed
        .iter()
        .map(|&b| index_files(pristine.path(), b).map(|p| std::fs::read(p).expect("read index")))
        .collect();
    assert!(
        originals.iter().any(|[o, _]| o.len() > 8),
        "the test wants segments with several index entries"
    );

    let mut rng = Rng::new(0x1de_c0de);
    let mut cases = Vec::new();
    for damage in [
        IndexDamage::Delete,
        IndexDamage::TruncateOdd,
        IndexDamage::TruncateZero,
        IndexDamage::TruncateHalf,
        IndexDamage::Random,
        IndexDamage::Zeros,
        IndexDamage::RandomLonger,
    ] {
        for which in [&[0usize][..], &[1], &[0, 1]] {
            cases.push((damage, which));
        }
    }
    cases.push((IndexDamage::Misaligned, &[0]));
    for (damage, which) in cases {
        let what = format!("{damage:?} of {which:?}");
        let work = tempdir();
        copy_dir(pristine.path(), work.path());
        for &base in closed {
            let files = index_files(work.path(), base);
            for &i in which {
                damage_index(&files[i], damage, &mut rng);
            }
        }
        let log = options()
            .open(work.path())
            .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        check_every_offset_and_timestamp(&log, end, &what);
        log.close().expect("close");
        drop(log);

        for (&base, [offsets, times]) in closed.iter().zip(&originals) {
            let [offset_path, time_path] = index_files(work.path(), base);
            let read = |path: &Path| {
                std::fs::read(path)
                    .unwrap_or_else(|e| panic!("{what}: {} not rewritten: {e}", path.display()))
            };
            assert_eq!(
                &read(&offset_path),
                offsets,
                "{what}: {} differs",
                offset_path.display()
            );
            // A time index cut short is taken as a sparser one (lookups then start earlier
            // and walk forward), so what is written back may lack entries, but every entry
            // in it must be a true one.
            let rewritten = read(&time_path);
            assert_eq!(rewritten.len() % 12, 0, "{what}: {}", time_path.display());
            for entry in rewritten.chunks(12) {
                assert!(
                    times.chunks(12).any(|t| t == entry),
                    "{what}: {} holds an entry the original lacks",
                    time_path.display()
                );
            }
        }
        // What was written back serves a second open just as well.
        let log = open(work.path());
        check_every_offset_and_timestamp(&log, end, &format!("{what}, reopened"));
    }
}
