//! Fuzzes the record-batch path a producer's bytes take: header validation, batch
//! iteration and record decoding. Half the inputs get their CRC recomputed so the decoder
//! behind the CRC check is reached too.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_core::record::{BatchHeader, BatchIter, decode_batch};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.first().is_some_and(|b| b & 1 == 1) && bytes.len() >= 21 {
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    let _ = BatchHeader::parse(&bytes);
    for item in BatchIter::new(&bytes) {
        if item.is_err() {
            break;
        }
    }
    let _ = decode_batch(Bytes::from(bytes));
});
