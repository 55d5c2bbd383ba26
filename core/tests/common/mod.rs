//! Helpers shared by the black-box fault and crash tests: records whose bytes follow from
//! their offset (so any reader can check any record without remembering what was sent), a
//! log opened without background work, whole-log reads, a seeded RNG, and a `Storage` that
//! injects the failures real disks produce.

// Each test binary compiles this module separately and uses a different subset of it.
#![allow(dead_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use bytes::Bytes;
use sluice_core::log::io::{OsStorage, Storage, StorageFile};
use sluice_core::record::{
    BatchIter, Compression, ProducerStamp, Record, decode_batch, encode_batch,
};
use sluice_core::{Durability, Log, LogConfig, LogOptions, NewTopic};

/// The topic every test writes to.
pub const TOPIC: &str = "t";

/// Largest read the helpers ask for at once.
const READ_BYTES_MAX: usize = 64 * 1024;

/// The value of the record at `offset`: 8..128 bytes that differ from offset to offset.
pub fn value_for(offset: i64) -> Vec<u8> {
    let offset = offset as usize;
    let len = 8 + (offset * 37) % 120;
    (0..len).map(|j| (offset * 31 + j * 7) as u8).collect()
}

/// The timestamp of the record at `offset`: strictly increasing, 10 ms apart.
pub fn timestamp_for(offset: i64) -> i64 {
    1_700_000_000_000 + offset * 10
}

/// The key of the record at `offset`.
pub fn key_for(offset: i64) -> Vec<u8> {
    format!("key-{offset}").into_bytes()
}

/// One RecordBatch v2 holding the records for offsets `first..first + count`, as a producer
/// would send it (relative offsets 0.., base offset 0: the log writes the real one).
pub fn batch_for(first: i64, count: i64) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            offset: i,
            timestamp: timestamp_for(first + i),
            key: Some(Bytes::from(key_for(first + i))),
            value: Some(Bytes::from(value_for(first + i))),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, Compression::None, ProducerStamp::default())
        .expect("encode batch")
        .to_vec()
}

/// Log options for tests: no background thread (nothing flushes or cleans behind the
/// test's back) and no fsync on append unless a topic asks for it.
pub fn options() -> LogOptions {
    Log::options()
        .background(false)
        .config(LogConfig::default().with_durability(Durability::None))
}

/// Opens the log in `dir` with [`options`].
pub fn open(dir: &Path) -> Log {
    options().open(dir).expect("open log")
}

/// Opens the log in `dir` with [`options`] over `storage`.
pub fn open_with(dir: &Path, storage: Arc<dyn Storage>) -> Log {
    options().storage(storage).open(dir).expect("open log")
}

/// `DIR/topics/<topic>/<partition>`.
pub fn partition_dir(dir: &Path, topic: &str, partition: i32) -> PathBuf {
    dir.join("topics").join(topic).join(partition.to_string())
}

/// The `.log` file of the segment starting at `base_offset`.
pub fn segment_file(dir: &Path, topic: &str, partition: i32, base_offset: i64) -> PathBuf {
    partition_dir(dir, topic, partition).join(format!("{base_offset:020}.log"))
}

/// The recovery-point file of a partition; removing it simulates a crash before any
/// checkpoint, so every segment is scanned and verified on open.
pub fn recovery_point_file(dir: &Path, topic: &str, partition: i32) -> PathBuf {
    partition_dir(dir, topic, partition).join("recovery-point")
}

/// Removes the recovery point, which must exist.
pub fn remove_recovery_point(dir: &Path) {
    std::fs::remove_file(recovery_point_file(dir, TOPIC, 0)).expect("remove recovery-point");
}

/// Appends the batch for offsets `first..first + count` to partition 0 and checks that it
/// landed at `first`.
pub fn append_at(log: &Log, first: i64, count: i64) {
    let mut batch = batch_for(first, count);
    let info = log.append(TOPIC, 0, &mut batch).expect("append");
    assert_eq!(info.base_offset, first, "append landed at the wrong offset");
    assert_eq!(info.last_offset, first + count - 1);
}

/// Every record of partition 0, from the log start to the log end, read through
/// [`Log::read`] and decoded.
pub fn read_all(log: &Log) -> Vec<Record> {
    let partition = log.partition(TOPIC, 0).expect("partition");
    let end = partition.log_end_offset();
    let mut offset = partition.log_start_offset();
    let mut out = Vec::new();
    while offset < end {
        let read = log
            .read(TOPIC, 0, offset, READ_BYTES_MAX)
            .unwrap_or_else(|e| panic!("read at {offset}: {e}"));
        assert!(
            !read.records.is_empty(),
            "empty read at {offset} below end {end}"
        );
        for record in decode_all(&read.records) {
            if record.offset >= offset {
                offset = record.offset + 1;
                out.push(record);
            }
        }
    }
    out
}

/// Decodes every record of a buffer of whole batches, checking each batch (CRC included).
pub fn decode_all(bytes: &Bytes) -> Vec<Record> {
    let mut out = Vec::new();
    for item in BatchIter::new(bytes) {
        let (start, header) = item.expect("valid batch in read result");
        let batch = bytes.slice(start..start + header.batch_bytes());
        out.extend(decode_batch(batch).expect("decode batch"));
    }
    out
}

/// Checks that `records` are exactly the records for offsets `0..end`, in order.
pub fn assert_records(records: &[Record], end: i64) {
    assert_eq!(records.len() as i64, end, "record count");
    for (i, record) in records.iter().enumerate() {
        assert_record(record, i as i64);
    }
}

/// Checks that `record` is the record for `offset`.
pub fn assert_record(record: &Record, offset: i64) {
    assert_eq!(record.offset, offset);
    assert_eq!(
        record.value.as_deref(),
        Some(&value_for(offset)[..]),
        "value at {offset}"
    );
    assert_eq!(
        record.key.as_deref(),
        Some(&key_for(offset)[..]),
        "key at {offset}"
    );
    assert_eq!(
        record.timestamp,
        timestamp_for(offset),
        "timestamp at {offset}"
    );
}

/// Creates the test topic with one partition and the given config overrides.
pub fn create_topic(log: &Log, config: &[(&str, &str)]) {
    let mut topic = NewTopic::new(TOPIC, 1);
    for (key, value) in config {
        topic = topic.config(*key, *value);
    }
    log.create_topic(topic).expect("create topic");
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy target");
    for entry in std::fs::read_dir(from).expect("list copy source") {
        let entry = entry.expect("list copy source");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// SplitMix64: a tiny seeded generator, so a failing case can be replayed from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Switches for [`FaultStorage`]: an errno of 0 means "no fault".
///
/// Faults hit segment files (`*.log`) only: checkpoints and index files go through the same
/// storage, and these tests aim at the data path.
#[derive(Debug, Default)]
pub struct Faults {
    /// `write_all_at` fails with this errno, after writing `partial_write_bytes` first.
    write_errno: AtomicI32,
    /// How many bytes a failing write puts on disk before it fails, to prove the rollback.
    partial_write_bytes: AtomicUsize,
    /// `sync_data` fails with this errno.
    sync_errno: AtomicI32,
    /// Creating a new segment file fails with this errno.
    create_errno: AtomicI32,
    /// How many operations failed because of a fault: proves the fault was hit.
    injected: AtomicUsize,
}

impl Faults {
    /// Makes writes fail with `errno` after writing `partial_bytes` of the buffer.
    pub fn fail_writes(&self, errno: i32, partial_bytes: usize) {
        self.partial_write_bytes
            .store(partial_bytes, Ordering::SeqCst);
        self.write_errno.store(errno, Ordering::SeqCst);
    }
    /// Makes `sync_data` fail with `errno`.
    pub fn fail_syncs(&self, errno: i32) {
        self.sync_errno.store(errno, Ordering::SeqCst);
    }
    /// Makes creating a new segment file fail with `errno`.
    pub fn fail_creates(&self, errno: i32) {
        self.create_errno.store(errno, Ordering::SeqCst);
    }
    /// Turns every fault off.
    pub fn clear(&self) {
        self.write_errno.store(0, Ordering::SeqCst);
        self.sync_errno.store(0, Ordering::SeqCst);
        self.create_errno.store(0, Ordering::SeqCst);
    }
    /// How many operations have failed because of a fault.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }
    fn hit(&self, errno: &AtomicI32) -> Option<io::Error> {
        let errno = errno.load(Ordering::SeqCst);
        (errno != 0).then(|| {
            self.injected.fetch_add(1, Ordering::SeqCst);
            io::Error::from_raw_os_error(errno)
        })
    }
}

/// [`OsStorage`] with switchable faults; the files are real.
#[derive(Debug, Clone, Default)]
pub struct FaultStorage {
    /// The switches, shared with the test.
    pub faults: Arc<Faults>,
}

fn is_segment(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "log")
}

impl Storage for FaultStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        if create
            && is_segment(path)
            && !path.exists()
            && let Some(e) = self.faults.hit(&self.faults.create_errno)
        {
            return Err(e);
        }
        let inner = OsStorage.open(path, create)?;
        if !is_segment(path) {
            return Ok(inner);
        }
        Ok(Arc::new(FaultFile {
            inner,
            faults: self.faults.clone(),
        }))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        OsStorage.sync_dir(path)
    }
}

struct FaultFile {
    inner: Arc<dyn StorageFile>,
    faults: Arc<Faults>,
}

impl StorageFile for FaultFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.inner.read_at(buf, position)
    }
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        if let Some(e) = self.faults.hit(&self.faults.write_errno) {
            // A real ENOSPC often lands after part of the buffer made it to the file.
            let partial = self
                .faults
                .partial_write_bytes
                .load(Ordering::SeqCst)
                .min(buf.len());
            self.inner.write_all_at(&buf[..partial], position)?;
            return Err(e);
        }
        self.inner.write_all_at(buf, position)
    }
    fn sync_data(&self) -> io::Result<()> {
        if let Some(e) = self.faults.hit(&self.faults.sync_errno) {
            return Err(e);
        }
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}
