//! Helpers the fault modules share: where the fields of a batch header sit, reading and
//! editing segment files between opens, listing the segments on disk, and what a client
//! can observe of partition 0.

use std::path::Path;

use sluice_core::Log;
use sluice_core::record::Record;

use crate::common::{TOPIC, append_at, partition_dir, read_all, segment_file};

// Byte positions in a RecordBatch v2 (layout in docs/format.md).
pub(crate) const CRC_POS: usize = 17;
pub(crate) const CRC_START: usize = 21;
pub(crate) const MAGIC_POS: usize = 16;
pub(crate) const LENGTH_POS: usize = 8;
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Bytes 12..16 hold the partition leader epoch: outside the CRC by Kafka's format, and
/// nothing the log could check it against, so a flip there is undetectable by design.
pub(crate) const LEADER_EPOCH: std::ops::Range<usize> = 12..16;

pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub(crate) fn stored_crc(batch: &[u8]) -> u32 {
    u32::from_be_bytes(batch[CRC_POS..CRC_POS + 4].try_into().expect("4 bytes"))
}

pub(crate) fn set_length(batch: &mut [u8], length: i32) {
    batch[LENGTH_POS..LENGTH_POS + 4].copy_from_slice(&length.to_be_bytes());
}

pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .len()
}

pub(crate) fn truncate_file(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("truncate {}: {e}", path.display()));
}

pub(crate) fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

/// Everything a client can observe about partition 0, plus the bytes on disk.
#[derive(Debug, PartialEq)]
pub(crate) struct Visible {
    pub(crate) log_end_offset: i64,
    pub(crate) segment_bytes: u64,
    pub(crate) records: Vec<Record>,
}

pub(crate) fn visible(log: &Log) -> Visible {
    let partition = log.partition(TOPIC, 0).expect("partition");
    Visible {
        log_end_offset: partition.log_end_offset(),
        segment_bytes: file_len(&segment_file(log.dir(), TOPIC, 0, 0)),
        records: read_all(log),
    }
}

/// Appends batches of `counts` records from offset 0 and returns the byte position of each
/// batch in the first segment file, plus the file's final length.
pub(crate) fn append_batches(log: &Log, counts: &[i64]) -> (Vec<u64>, u64) {
    let file = segment_file(log.dir(), TOPIC, 0, 0);
    let mut starts = Vec::new();
    let mut offset = 0;
    for &count in counts {
        starts.push(file_len(&file));
        append_at(log, offset, count);
        offset += count;
    }
    (starts, file_len(&file))
}

pub(crate) fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(partition_dir(dir, TOPIC, 0))
        .expect("list partition")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}
