//! Recovery after a crash: a torn tail of any length and garbage after a clean log are cut
//! back to the last whole batch; a bit flip in an interior batch, in its length, or at the
//! end of a segment that later segments follow refuses to open, naming the file and byte.

use std::path::Path;

use sluice_core::Error;

use crate::common::{
    Rng, TOPIC, append_at, assert_records, copy_dir, create_topic, open, options, read_all,
    remove_recovery_point, segment_file,
};
use crate::disk::{
    CRC_POS, CRC_START, LEADER_EPOCH, LENGTH_POS, LOG_OVERHEAD, append_batches, append_bytes,
    file_len, tempdir, truncate_file,
};

// ---------------------------------------------------------------------------------------
// Torn tails and trailing garbage
// ---------------------------------------------------------------------------------------

#[test]
fn torn_tail_of_every_length_is_cut_back_to_the_last_whole_batch() {
    // Guards against recovery refusing to open, keeping part of a torn batch, or dropping a
    // whole batch before it, when a crash (before any checkpoint) tore the last write at
    // any byte.
    let pristine = tempdir();
    // Each length costs an open with its fsyncs, so the last batch is a small one (one
    // record): every header field and the record are still cut at every byte.
    let counts = [3, 2, 2, 1];
    let log = open(pristine.path());
    create_topic(&log, &[]);
    let (starts, end_of_last) = append_batches(&log, &counts);
    log.close().expect("close");
    drop(log);
    let start_of_last = *starts.last().expect("batches");
    let kept_end: i64 = counts[..counts.len() - 1].iter().sum();

    for len in start_of_last..end_of_last {
        let work = tempdir();
        copy_dir(pristine.path(), work.path());
        let file = segment_file(work.path(), TOPIC, 0, 0);
        truncate_file(&file, len);
        remove_recovery_point(work.path());

        let log = open(work.path());
        let partition = log.partition(TOPIC, 0).expect("partition");
        assert_eq!(partition.log_end_offset(), kept_end, "torn at byte {len}");
        assert_records(&read_all(&log), kept_end);
        assert_eq!(file_len(&file), start_of_last, "torn bytes left at {len}");
        append_at(&log, kept_end, 2);
        assert_records(&read_all(&log), kept_end + 2);
        log.close().expect("close");
        drop(log);

        let log = open(work.path());
        assert_records(&read_all(&log), kept_end + 2);
    }
}

#[test]
fn garbage_after_a_clean_log_is_cut_off() {
    // Guards against junk after the last batch (a crash after the file grew but before its
    // data landed, or a stale block) failing the open or being served as records.
    let pristine = tempdir();
    let counts = [3, 2, 4];
    let log = open(pristine.path());
    create_topic(&log, &[]);
    let (starts, clean_len) = append_batches(&log, &counts);
    log.close().expect("close");
    drop(log);
    let end: i64 = counts.iter().sum();
    let original = std::fs::read(segment_file(pristine.path(), TOPIC, 0, 0)).expect("read");

    let mut rng = Rng::new(0x5eed_6a6b);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for len in [1, 12, 60, 61, 62, 200, 4096] {
        cases.push((format!("{len} random bytes"), rng.bytes(len)));
    }
    for len in [1, 61, 4096] {
        cases.push((format!("{len} zero bytes"), vec![0; len]));
    }
    cases.push(("100 0xff bytes".into(), vec![0xff; 100]));
    // A stale copy of the last batch's header, and of a whole earlier batch: both look
    // like batches, but with offsets that go backwards.
    let last = starts[starts.len() - 1] as usize;
    cases.push(("a stale header".into(), original[last..last + 61].to_vec()));
    cases.push((
        "a stale whole batch".into(),
        original[..starts[1] as usize].to_vec(),
    ));

    for (name, garbage) in &cases {
        for keep_recovery_point in [false, true] {
            let name = format!("{name}, recovery point kept: {keep_recovery_point}");
            let work = tempdir();
            copy_dir(pristine.path(), work.path());
            let file = segment_file(work.path(), TOPIC, 0, 0);
            append_bytes(&file, garbage);
            if !keep_recovery_point {
                remove_recovery_point(work.path());
            }

            let log = options()
                .open(work.path())
                .unwrap_or_else(|e| panic!("{name}: open failed: {e}"));
            assert_records(&read_all(&log), end);
            assert_eq!(file_len(&file), clean_len, "{name}: garbage kept");
            append_at(&log, end, 1);
            log.close().expect("close");
            drop(log);
            let log = open(work.path());
            assert_records(&read_all(&log), end + 1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Interior corruption
// ---------------------------------------------------------------------------------------

/// Flips `bit` of byte `at` in `file` (whose intact contents are `original`), opens the
/// log, expects `Error::Corrupt` naming `file` and one of `positions`, and restores it.
fn expect_corrupt_open(
    dir: &Path,
    file: &Path,
    original: &[u8],
    at: usize,
    bit: u8,
    positions: &[u64],
) {
    let mut damaged = original.to_vec();
    damaged[at] ^= 1 << bit;
    std::fs::write(file, &damaged).expect("write damaged segment");
    let what = format!("bit {bit} of byte {at}");
    match options().open(dir) {
        Err(error @ Error::Corrupt { .. }) => {
            let Error::Corrupt { path, position, .. } = &error else {
                unreachable!()
            };
            assert_eq!(path, file, "{what}: {error}");
            assert!(
                positions.contains(position),
                "{what}: expected byte {positions:?}: {error}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&file.display().to_string()),
                "{what}: {message}"
            );
            assert!(
                message.contains(&format!("byte {position}")),
                "{what}: {message}"
            );
        }
        Err(other) => panic!("{what}: expected Error::Corrupt, got {other}"),
        Ok(log) => {
            let end = log.partition(TOPIC, 0).expect("partition").log_end_offset();
            panic!("{what}: the log opened (log end offset {end}) instead of refusing");
        }
    }
    std::fs::write(file, original).expect("restore segment");
}

#[test]
fn bit_flip_in_an_interior_batch_refuses_to_open_and_names_file_and_byte() {
    // Guards against recovery taking interior corruption for a torn tail and silently
    // truncating the committed batches that follow it.
    let dir = tempdir();
    let counts = [2, 3, 2, 3, 2];
    let log = open(dir.path());
    create_topic(&log, &[]);
    let (starts, _) = append_batches(&log, &counts);
    log.close().expect("close");
    drop(log);
    remove_recovery_point(dir.path());
    let file = segment_file(dir.path(), TOPIC, 0, 0);
    let original = std::fs::read(&file).expect("read segment");

    let victim = 2;
    let (start, end) = (starts[victim] as usize, starts[victim + 1] as usize);
    for at in start..end {
        let offset_in_batch = at - start;
        if LEADER_EPOCH.contains(&offset_in_batch) {
            continue;
        }
        // Every bit of the header, one bit of each byte after it.
        let bits: Vec<u8> = if offset_in_batch < 61 {
            (0..8).collect()
        } else {
            vec![(at % 8) as u8]
        };
        for bit in bits {
            // The base offset is outside the CRC: one raised by the flip is only noticed
            // when the next batch's offsets go backwards, so that batch is reported.
            let positions: &[u64] = if offset_in_batch < 8 {
                &[starts[victim], starts[victim + 1]]
            } else {
                &[starts[victim]]
            };
            expect_corrupt_open(dir.path(), &file, &original, at, bit, positions);
        }
    }

    // Intact again: opens and serves everything.
    let log = open(dir.path());
    assert_records(&read_all(&log), counts.iter().sum());
}

#[test]
fn bit_flip_in_the_length_of_an_interior_batch_refuses_to_open() {
    // Guards against a damaged length field making recovery skip to a wrong boundary, or
    // read it as the end of the data, and drop the batches after it.
    let dir = tempdir();
    let counts = [1, 2, 3, 1, 2];
    let log = open(dir.path());
    create_topic(&log, &[]);
    let (starts, _) = append_batches(&log, &counts);
    log.close().expect("close");
    drop(log);
    remove_recovery_point(dir.path());
    let file = segment_file(dir.path(), TOPIC, 0, 0);
    let original = std::fs::read(&file).expect("read segment");

    for victim in [0, 1, 3] {
        for at in starts[victim] as usize + LENGTH_POS..starts[victim] as usize + LENGTH_POS + 4 {
            for bit in 0..8 {
                expect_corrupt_open(dir.path(), &file, &original, at, bit, &[starts[victim]]);
            }
        }
    }
}

#[test]
fn bit_flip_at_the_end_of_a_segment_with_later_segments_refuses_to_open() {
    // Guards against the last batch of a closed segment being treated as a torn tail when
    // later segments hold data.
    let dir = tempdir();
    let log = open(dir.path());
    create_topic(&log, &[("segment.bytes", "1024")]);
    for i in 0..30 {
        append_at(&log, i * 2, 2);
    }
    let segments = log.partition(TOPIC, 0).expect("partition").info().segments;
    assert!(segments >= 3, "expected several segments, got {segments}");
    log.close().expect("close");
    drop(log);
    remove_recovery_point(dir.path());
    let file = segment_file(dir.path(), TOPIC, 0, 0);
    let original = std::fs::read(&file).expect("read segment");
    // Walk to the last batch of the first segment.
    let mut position = 0usize;
    let mut last = 0usize;
    while position < original.len() {
        last = position;
        let length = i32::from_be_bytes(
            original[position + LENGTH_POS..position + LENGTH_POS + 4]
                .try_into()
                .expect("4 bytes"),
        );
        position += LOG_OVERHEAD + length as usize;
    }
    for at in [last + CRC_POS, last + CRC_START + 5, original.len() - 1] {
        expect_corrupt_open(dir.path(), &file, &original, at, 3, &[last as u64]);
    }
}
