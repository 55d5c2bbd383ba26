//! Bad batches from a producer: each invalid batch (CRC, length, magic, ...) is rejected
//! whole with the right `BatchError`, and nothing of the append reaches the log.

use sluice_core::{BatchError, Error};

use crate::common::{TOPIC, append_at, assert_records, batch_for, create_topic, open, read_all};
use crate::disk::{
    CRC_POS, CRC_START, LOG_OVERHEAD, MAGIC_POS, append_batches, set_length, stored_crc, tempdir,
    visible,
};

#[test]
fn invalid_batches_are_rejected_whole_and_leave_nothing_behind() {
    // Guards against a producer batch with a bad CRC, length or magic being stored, against
    // the wrong BatchError being reported, and against a good batch that precedes a bad one
    // in the same append reaching the log.
    let dir = tempdir();
    let log = open(dir.path());
    create_topic(&log, &[]);
    append_batches(&log, &[2, 3, 1]);
    let end = 6;
    let before = visible(&log);

    let good = batch_for(end, 3);
    let total = good.len();
    let declared = (total - LOG_OVERHEAD) as i64;
    let mut cases: Vec<(String, Vec<u8>, BatchError)> = Vec::new();
    {
        let mut b = good.clone();
        *b.last_mut().expect("non-empty") ^= 0x01;
        let computed = crc32c::crc32c(&b[CRC_START..]);
        let stored = stored_crc(&good);
        cases.push((
            "bit flipped in a record".into(),
            b,
            BatchError::CrcMismatch { stored, computed },
        ));
    }
    {
        let mut b = good.clone();
        b[CRC_POS] ^= 0x80;
        let stored = stored_crc(&b);
        let computed = stored_crc(&good);
        cases.push((
            "bit flipped in the CRC field".into(),
            b,
            BatchError::CrcMismatch { stored, computed },
        ));
    }
    {
        // A length one short makes the CRC cover the wrong bytes.
        let mut b = good.clone();
        set_length(&mut b, (declared - 1) as i32);
        let computed = crc32c::crc32c(&b[CRC_START..total - 1]);
        let stored = stored_crc(&good);
        cases.push((
            "length one short".into(),
            b,
            BatchError::CrcMismatch { stored, computed },
        ));
    }
    for (name, length) in [
        ("length one long", declared + 1),
        ("length far too long", i32::MAX as i64),
        ("length below the header size", 10),
        ("negative length", -1),
    ] {
        let mut b = good.clone();
        set_length(&mut b, length as i32);
        cases.push((
            name.into(),
            b,
            BatchError::LengthMismatch {
                declared: length,
                available: total - LOG_OVERHEAD,
            },
        ));
    }
    cases.push((
        "batch cut one byte short".into(),
        good[..total - 1].to_vec(),
        BatchError::LengthMismatch {
            declared,
            available: total - 1 - LOG_OVERHEAD,
        },
    ));
    cases.push((
        "shorter than a header".into(),
        good[..40].to_vec(),
        BatchError::TooShort { len: 40 },
    ));
    for magic in [0i8, 1, 3, -1] {
        let mut b = good.clone();
        b[MAGIC_POS] = magic as u8;
        cases.push((format!("magic {magic}"), b, BatchError::BadMagic { magic }));
    }
    // The same faults behind a good batch: the good one must not be written either.
    let single = cases.clone();
    for (name, bad, error) in single {
        let mut both = batch_for(end, 2);
        both.extend_from_slice(&bad);
        cases.push((format!("good batch, then {name}"), both, error));
    }

    let partition = log.partition(TOPIC, 0).expect("partition");
    for (name, bytes, expected) in &cases {
        for via_partition in [false, true] {
            let mut buf = bytes.clone();
            let result = if via_partition {
                partition.append(&mut buf)
            } else {
                log.append(TOPIC, 0, &mut buf)
            };
            match result {
                Err(Error::InvalidBatch {
                    topic,
                    partition: id,
                    source,
                }) => {
                    assert_eq!((topic.as_str(), id), (TOPIC, 0), "{name}");
                    assert_eq!(&source, expected, "{name}");
                }
                other => panic!("{name}: expected InvalidBatch({expected:?}), got {other:?}"),
            }
            assert_eq!(
                visible(&log),
                before,
                "{name}: the rejected append left a trace"
            );
        }
    }

    // The log is still healthy and nothing rejected reached the disk.
    append_at(&log, end, 3);
    log.close().expect("close");
    drop(log);
    let log = open(dir.path());
    assert_records(&read_all(&log), end + 3);
}
