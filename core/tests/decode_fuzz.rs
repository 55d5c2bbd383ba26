//! Hostile input never crashes the record path: arbitrary bytes and valid batches mutated
//! behind a recomputed CRC (what a malicious producer can send) go through validation,
//! append, read and decode with an error at worst — no panic, no allocation sized by an
//! untrusted count. The cargo-fuzz target in `fuzz/` explores the same surface longer.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use sluice_core::record::{
    BatchHeader, BatchIter, Compression, ProducerStamp, Record, decode_batch, encode_batch,
};
use sluice_core::{LogOptions, NewTopic};

fn fix_crc(batch: &mut [u8]) {
    if batch.len() >= 21 {
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

fn valid_batch(n: usize, codec: Compression, value_len: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n as i64)
        .map(|i| Record {
            offset: i,
            timestamp: 1_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_len])),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, codec, ProducerStamp::default())
        .unwrap()
        .to_vec()
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

/// Runs everything that parses batches over `bytes`; panics only on a bug.
fn exercise(bytes: &[u8]) {
    let _ = BatchHeader::parse(bytes);
    for item in BatchIter::new(bytes) {
        if item.is_err() {
            break;
        }
    }
    let _ = decode_batch(Bytes::copy_from_slice(bytes));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    // Arbitrary bytes: no parser or decoder panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
        let mut fixed = bytes.clone();
        fix_crc(&mut fixed);
        exercise(&fixed);
    }

    // Valid batches with bytes flipped after the header and the CRC made to match again:
    // the decoder sees malformed records (and malformed compressed streams) directly.
    #[test]
    fn mutated_batches_never_panic(
        n in 1usize..20,
        codec in codec(),
        value_len in 0usize..64,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut batch = valid_batch(n, codec, value_len);
        let len = batch.len();
        for (at, byte) in flips {
            let i = 21 + at.index(len - 21);
            batch[i] = byte;
        }
        fix_crc(&mut batch);
        exercise(&batch);
    }

    // Header fields that size allocations (record count, last offset delta, length) set to
    // extremes: rejected or decoded, never an allocation the size of the claim.
    #[test]
    fn extreme_counts_are_refused(
        n in 1usize..5,
        codec in codec(),
        count in prop_oneof![Just(i32::MAX), Just(i32::MIN), Just(-1), 1_000_000..i32::MAX],
        delta in prop_oneof![Just(i32::MAX), Just(-1), any::<i32>()],
    ) {
        let mut batch = valid_batch(n, codec, 8);
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        batch[23..27].copy_from_slice(&delta.to_be_bytes());
        fix_crc(&mut batch);
        exercise(&batch);
        prop_assert!(decode_batch(Bytes::from(batch)).is_err());
    }
}

// A hostile batch that passes header validation (CRC fixed, count inflated within what the
// header allows) can be appended; consumers reading it get an error, not a crash.
#[test]
fn hostile_batch_in_the_log_is_an_error_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new()
        .background(false)
        .open(dir.path())
        .unwrap();
    log.create_topic(NewTopic::new("t", 1)).unwrap();
    for codec in Compression::ALL {
        let mut batch = valid_batch(3, codec, 4);
        // Claim 1,000,000 records in a batch whose offset delta allows it.
        batch[23..27].copy_from_slice(&999_999i32.to_be_bytes());
        batch[57..61].copy_from_slice(&1_000_000i32.to_be_bytes());
        fix_crc(&mut batch);
        match log.append("t", 0, &mut batch) {
            Err(sluice_core::Error::InvalidBatch { .. }) => continue,
            Err(e) => panic!("unexpected error {e}"),
            Ok(info) => {
                let read = log.read("t", 0, info.base_offset, 1 << 20).unwrap();
                let err = decode_batch(read.records).unwrap_err();
                assert!(err.contains("records"), "{codec:?}: {err}");
            }
        }
    }
}

// A real valid batch still decodes through the guarded path, for every codec.
#[test]
fn guarded_decoder_still_decodes_valid_batches() {
    for codec in Compression::ALL {
        let batch = valid_batch(50, codec, 100);
        let records = decode_batch(Bytes::from(batch)).unwrap();
        assert_eq!(records.len(), 50);
        assert_eq!(records[49].key.as_deref(), Some(&b"key-49"[..]));
    }
}

// Found by the record_batch fuzz target: a 72-byte snappy batch whose raw snappy header
// claims ~2.9 GB. kafka-protocol's decompressor allocated that much; ours refuses.
#[test]
fn snappy_length_bomb_is_refused() {
    let mut batch = vec![
        0x27, 0x23, 0x54, 0x54, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x2f,
        0x2c, 0x02, 0x00, 0xab, 0xab, 0xab, 0xab, 0x5a, 0x2e, 0xff, 0xff, 0x0d, 0xe0, 0xcd, 0xff,
        0xf6, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00,
        0x00, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
        0x07, 0xc0, 0xdf, 0xff, 0xff, 0x0a, 0x00, 0xf7, 0xfc, 0xff, 0x99, 0x99, 0x99,
    ];
    fix_crc(&mut batch);
    let err = decode_batch(Bytes::from(batch)).unwrap_err();
    assert!(err.contains("snappy") || err.contains("more than"), "{err}");
}

// Found by the record_batch fuzz target: a batch whose record claims a header count in
// the hundreds of millions; kafka-protocol's decoder reserved a map of that size (4.8 GB).
#[test]
fn header_count_bomb_is_refused() {
    let mut batch = vec![
        0x27, 0x23, 0x54, 0x54, 0x54, 0x13, 0x00, 0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2f,
        0x2c, 0x02, 0x00, 0xab, 0xab, 0x3e, 0x00, 0x00, 0x99, 0x99, 0x00, 0x1f, 0xff, 0xfd, 0xff,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xa7, 0xa7,
        0xa7, 0xa7, 0xa7, 0x00, 0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x03, 0xca, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfa, 0xd4, 0xac, 0xaf, 0x13, 0x00, 0x80,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2f, 0x2c, 0x02, 0x00, 0xab, 0xab, 0x3e, 0x00, 0x00,
        0x99, 0x99, 0x00, 0x1f, 0xff, 0xfd, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xff, 0xff, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0x00, 0x00, 0x00, 0xff, 0xff,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xca, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xfa, 0xd4, 0x51, 0x2e, 0xff, 0xff, 0x99, 0xff, 0xff, 0xff, 0xff, 0x01, 0x04, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x3d, 0x00, 0x00, 0x2f, 0x2c, 0xff,
        0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x79, 0x79, 0x79, 0x79,
        0x79, 0x79, 0x79, 0x79, 0x79, 0x79, 0x79, 0x79, 0xab, 0xab, 0xab, 0x2e, 0xff, 0xff, 0x99,
        0x99, 0x99, 0x99, 0x00, 0x00, 0xff, 0xff, 0xff, 0xf6, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7,
        0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7,
        0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0xa7, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00,
        0x00, 0x4a, 0x00, 0x08, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xe0, 0xfb, 0xab,
    ];
    fix_crc(&mut batch);
    assert!(decode_batch(Bytes::from(batch)).is_err());
}
