//! Fuzzes the CSV reading of the `file` and `stdin` sources: any bytes must parse to rows
//! and rejects or fail with an error, never panic, and the fast path (`file/csv_fast.rs`)
//! must give exactly what arrow's decoder alone gives: the same rows, the same rejects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_connectors::file::parse::{CsvOptions, RecordParser, TextFormat};
use sluice_connectors::schema::parse_schema;

fuzz_target!(|data: &[u8]| {
    let schema = parse_schema(
        "id BIGINT, small SMALLINT, qty INT, name VARCHAR NOT NULL, price DOUBLE, ratio REAL, \
         paid BOOLEAN, amount DECIMAL(12,2), day DATE, ts TIMESTAMP, tz TIMESTAMPTZ",
    )
    .expect("the schema parses");
    // Whole records end with a newline, as the sources hand chunks over.
    let mut chunk = data.to_vec();
    if chunk.last().is_some_and(|&b| b != b'\n') {
        chunk.push(b'\n');
    }
    let fast = RecordParser::new(TextFormat::Csv, schema, CsvOptions::default());
    let arrow = fast.clone().arrow_only();
    let got = fast.parse(&chunk, "fuzz.csv", 1);
    let want = arrow.parse(&chunk, "fuzz.csv", 1);
    match (got, want) {
        (Ok((rows, rejects)), Ok((want_rows, want_rejects))) => {
            assert_eq!(rows, want_rows);
            assert_eq!(rejects, want_rejects);
        }
        (Err(_), Err(_)) => {}
        (got, want) => panic!("fast path: {got:?}, arrow alone: {want:?}"),
    }
});
