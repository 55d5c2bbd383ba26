//! Fuzzes Kafka request decoding as the broker does it: header, then the body for every
//! API and version the broker implements. Must return an error, never panic or allocate
//! what the input claims. The first two bytes pick a supported API so the fuzzer spends
//! its time in the bodies.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sluice_core::broker::{decode_request, supported_apis};

// As in the `sluice` binary: impossible array capacities become address space.
#[global_allocator]
static ALLOC: sluice_core::alloc::ReserveLargeAllocator = sluice_core::alloc::ReserveLargeAllocator;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Some((&version_pick, rest)) = rest.split_first() else { return };
    let apis = supported_apis();
    let (api, min, max) = apis[pick as usize % apis.len()];
    let version = min + (version_pick as i16 % (max - min + 1));
    let mut frame = BytesMut::with_capacity(rest.len() + 4);
    frame.put_i16(api as i16);
    frame.put_i16(version);
    frame.extend_from_slice(rest);
    let _ = decode_request(Bytes::from(frame));
});
