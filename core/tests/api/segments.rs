//! Segment rolls by size (`segment.bytes`) and age (`segment.ms`), and reads across
//! them before and after a reopen.

use std::time::Duration;

use sluice_core::record::Record;
use sluice_core::{Error, NewTopic};

use crate::common::{
    append, open, partition_dir, read_all, read_from, record, segment_files, segments,
};

#[test]
fn segments_roll_by_size_and_survive_reopen() {
    // Guards against segments that grow past segment.bytes, reads that stop at a segment
    // boundary, and data or offsets lost across a close and reopen.
    let dir = tempfile::tempdir().unwrap();
    let expected: Vec<(i64, String)> = (0..600)
        .map(|i| (i, format!("value-{i:05}-{}", "p".repeat(40))))
        .collect();
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("roll", 1).config("segment.bytes", "1024"))
            .unwrap();
        for chunk in expected.chunks(2) {
            let recs: Vec<Record> = chunk
                .iter()
                .enumerate()
                .map(|(i, (o, v))| record(i as i64, 1_000 + o, Some("k"), Some(v)))
                .collect();
            let info = append(&log, "roll", 0, &recs);
            assert_eq!(info.base_offset, chunk[0].0);
        }
        let files = segment_files(&partition_dir(&log, "roll", 0));
        assert!(files.len() > 50, "only {} segments", files.len());
        assert_eq!(segments(&log, "roll", 0), files.len());
        for (base, size) in &files {
            assert!(*size <= 1024, "segment {base} is {size} bytes");
        }
        // Small reads walk across every segment boundary.
        let back = read_from(&log, "roll", 0, 0, 100);
        let got: Vec<(i64, String)> = back
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected);
        log.close().unwrap();
        assert!(matches!(
            log.create_topic(NewTopic::new("late", 1)),
            Err(Error::Closed)
        ));
    }
    let log = open(dir.path());
    let info = log.describe_topic("roll").unwrap().partitions[0].clone();
    assert_eq!(info.log_end_offset, 600);
    assert_eq!(info.log_start_offset, 0);
    assert_eq!(
        info.segments,
        segment_files(&partition_dir(&log, "roll", 0)).len()
    );
    let back = read_from(&log, "roll", 0, 0, 100);
    assert_eq!(back.len(), 600);
    for (r, (o, v)) in back.iter().zip(&expected) {
        assert_eq!(r.offset, *o);
        assert_eq!(r.value.as_deref(), Some(v.as_bytes()));
    }
    // Appends continue where the log left off.
    let next = append(&log, "roll", 0, &[record(0, 9, None, Some("after"))]);
    assert_eq!(next.base_offset, 600);
}

#[test]
fn segments_roll_by_age() {
    // Guards against segment.ms being ignored: an old active segment must be rolled on the
    // next append, and reads must still span the resulting segments.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic(NewTopic::new("aged", 1).config("segment.ms", "1"))
            .unwrap();
        for i in 0..5 {
            append(
                &log,
                "aged",
                0,
                &[record(0, i, Some("k"), Some(&format!("v{i}")))],
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(segments(&log, "aged", 0), 5);
        let values: Vec<_> = read_all(&log, "aged", 0)
            .into_iter()
            .map(|r| r.value.unwrap())
            .collect();
        assert_eq!(values.len(), 5);
    }
    let log = open(dir.path());
    assert_eq!(segments(&log, "aged", 0), 5);
    let offsets: Vec<i64> = read_all(&log, "aged", 0).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
}
