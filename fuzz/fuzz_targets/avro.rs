//! Fuzzes the `avro` value decoder of the connectors (the `Converter` a sink reads topics
//! with): any bytes must decode or return an error, never panic, read out of bounds or
//! allocate what a length claims. A value that decodes must encode to one that decodes to
//! the same row.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sluice_connectors::Converter;
use sluice_connectors::schema::parse_schema;

fuzz_target!(|data: &[u8]| {
    let schema = parse_schema(
        "id BIGINT NOT NULL, small SMALLINT, qty INT, name VARCHAR, price DOUBLE, ratio REAL, \
         paid BOOLEAN, amount DECIMAL(38,2), day DATE, ts TIMESTAMP, blob BYTEA",
    )
    .expect("the schema parses");
    let converter = Converter::new("avro", Arc::clone(&schema)).expect("avro carries it");
    if let Ok(rows) = converter.decode(&[data]) {
        let again = converter.encode(&rows).expect("decoded rows encode");
        let value = again.get(0).expect("one row, one value");
        let back = converter.decode(&[value]).expect("encoded rows decode");
        assert_eq!(back, rows);
    }
});
