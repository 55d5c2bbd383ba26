//! Fuzzes recovery: arbitrary bytes as a partition's only segment file. Opening must
//! either succeed (keeping a valid prefix, with reads that work) or fail with an error,
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::{LogOptions, NewTopic};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    {
        let Ok(log) = LogOptions::new().background(false).open(dir.path()) else { return };
        if log.create_topic(NewTopic::new("f", 1)).is_err() {
            return;
        }
        let _ = log.close();
    }
    let segment = dir.path().join("topics/f/0/00000000000000000000.log");
    let _ = std::fs::remove_file(dir.path().join("topics/f/0/recovery-point"));
    if std::fs::write(&segment, data).is_err() {
        return;
    }
    if let Ok(log) = LogOptions::new().background(false).open(dir.path()) {
        if let Ok(p) = log.partition("f", 0) {
            let mut offset = p.log_start_offset();
            while offset < p.log_end_offset() {
                match p.read(offset, 1 << 16) {
                    Ok(r) if !r.records.is_empty() => {
                        let mut next = offset;
                        for item in sluice_core::record::BatchIter::new(&r.records) {
                            match item {
                                Ok((_, h)) => next = next.max(h.last_offset() + 1),
                                Err(_) => break,
                            }
                        }
                        if next == offset {
                            break;
                        }
                        offset = next;
                    }
                    _ => break,
                }
            }
        }
    }
});
