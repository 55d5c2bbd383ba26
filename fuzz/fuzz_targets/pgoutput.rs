//! Fuzzes the pgoutput decoder of the postgres-cdc source: any bytes a slot could hand
//! back must decode or return an error, never panic, read out of bounds or allocate what
//! a length field claims. A message that decodes must consume its input exactly, so a
//! copy with one byte more must not decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_connectors::pgcdc::decode_message;

fuzz_target!(|data: &[u8]| {
    if decode_message(data).is_ok() {
        let mut longer = data.to_vec();
        longer.push(0);
        assert!(decode_message(&longer).is_err(), "trailing byte accepted");
    }
});
