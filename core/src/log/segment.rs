//! One segment: a `<base_offset>.log` file of whole batches plus its indexes.
//!
//! Invariants:
//! - bytes `0..size` of the file are whole, validated batches with increasing offsets;
//!   `size` only grows, except when the partition's writer truncates under its lock;
//! - readers never look past `size`, which is published (Release) only after the bytes
//!   and index entries for an append are in place;
//! - `next_offset` is one past the last offset of the last batch (`base_offset` if empty).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;

use super::index::Indexes;
use super::io::{Storage, StorageFile, read_exact_at};
use crate::record::{BATCH_HEADER_BYTES, BatchError, BatchHeader};

/// File name stem for a segment: the base offset, zero-padded to 20 digits like Kafka.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

pub(crate) struct Segment {
    pub base_offset: i64,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub time_index_path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    size: AtomicU64,
    next_offset: AtomicI64,
    /// Start of the `segment.ms` clock: creation time for a segment made by this process;
    /// for one found on open, its first batch's timestamp (if earlier), so restarts do not
    /// reset the clock.
    created_ms: AtomicI64,
    pub indexes: RwLock<Indexes>,
}

/// What a scan of a segment's batches found.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// Every byte belongs to a valid batch.
    Clean,
    /// An invalid batch starts at `position`. A valid batch found after it whose base
    /// offset is at least `min_following_offset` is committed data, not a torn tail.
    Invalid {
        position: u64,
        reason: String,
        min_following_offset: i64,
    },
}

impl Segment {
    pub fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    /// Opens (or creates) the segment file. The caller then recovers or loads indexes.
    pub fn open(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        create: bool,
    ) -> std::io::Result<Segment> {
        let (log_path, index_path, time_index_path) = Self::paths(dir, base_offset);
        let file = storage.open(&log_path, create)?;
        let size = file.len()?;
        Ok(Segment {
            base_offset,
            log_path,
            index_path,
            time_index_path,
            file,
            size: AtomicU64::new(size),
            next_offset: AtomicI64::new(base_offset),
            created_ms: AtomicI64::new(crate::now_ms()),
            indexes: RwLock::new(Indexes::default()),
        })
    }

    /// When the `segment.ms` clock started.
    pub fn created_ms(&self) -> i64 {
        self.created_ms.load(Ordering::Acquire)
    }

    /// Restarts the `segment.ms` clock from the first batch's timestamp when that is earlier
    /// than now (called for segments found on open).
    pub fn age_from_first_batch(&self) {
        if let Some(first) = self.indexes.read().times.first() {
            self.created_ms.fetch_min(first.timestamp, Ordering::AcqRel);
        }
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Largest timestamp in the segment, if it has records.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.indexes.read().max_timestamp()
    }

    /// Appends already-validated batches at the end. `batches` lists, for each batch, its
    /// position within `bytes`, base offset, size and max timestamp. On a failed write the
    /// file is cut back to its previous size so nothing partial stays behind; if even that
    /// fails the error says so and the caller must poison the partition.
    pub fn append(
        &self,
        bytes: &[u8],
        batches: &[(usize, i64, i64)],
        next_offset: i64,
        interval_bytes: u64,
    ) -> Result<(), AppendFailure> {
        let position = self.size.load(Ordering::Acquire);
        if let Err(error) = self.file.write_all_at(bytes, position) {
            return match self.file.set_len(position) {
                Ok(()) => Err(AppendFailure::RolledBack(error)),
                Err(undo) => Err(AppendFailure::Unrecoverable { error, undo }),
            };
        }
        {
            let mut indexes = self.indexes.write();
            let mut iter = batches.iter().peekable();
            while let Some(&(start, base_offset, max_timestamp)) = iter.next() {
                let end = iter.peek().map_or(bytes.len(), |next| next.0);
                indexes.on_batch(
                    base_offset,
                    (position + start as u64) as u32,
                    (end - start) as u64,
                    max_timestamp,
                    interval_bytes,
                );
            }
        }
        self.next_offset.store(next_offset, Ordering::Release);
        self.size
            .store(position + bytes.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Reads the 61-byte header of the batch at `position` (no CRC check).
    fn header_at(&self, position: u64, buf: &mut [u8; BATCH_HEADER_BYTES]) -> Result<(), String> {
        read_exact_at(&*self.file, buf, position).map_err(|e| e.to_string())?;
        BatchHeader::peek(buf).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Byte position of the first batch whose last offset is at or after `offset`, and its
    /// base offset; `None` if the segment ends before that or the batch starts at or past
    /// `limit` (the partition's published end).
    pub fn find_batch(&self, offset: i64, limit: i64) -> std::io::Result<Option<(u64, i64)>> {
        let size = self.size();
        let mut position = u64::from(self.indexes.read().lookup_offset(offset));
        let mut buf = [0u8; BATCH_HEADER_BYTES];
        while position + (BATCH_HEADER_BYTES as u64) <= size {
            self.header_at(position, &mut buf)
                .map_err(std::io::Error::other)?;
            let header = BatchHeader::peek(&buf).map_err(std::io::Error::other)?;
            if header.base_offset() >= limit {
                return Ok(None);
            }
            if header.last_offset() >= offset {
                return Ok(Some((position, header.base_offset())));
            }
            position += header.batch_bytes() as u64;
        }
        Ok(None)
    }

    /// Reads whole batches starting with the one holding (or first following) `offset`,
    /// stopping before `max_bytes` would be exceeded, but always returning at least one
    /// whole batch if there is one. Batches starting at or past `limit` are not returned.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        limit: i64,
    ) -> std::io::Result<Option<Bytes>> {
        let Some((start, _)) = self.find_batch(offset, limit)? else {
            return Ok(None);
        };
        let size = self.size();
        let available = (size - start) as usize;
        let mut want = max_bytes
            .clamp(BATCH_HEADER_BYTES, available.max(BATCH_HEADER_BYTES))
            .min(available);
        let mut buf = vec![0u8; want];
        read_exact_at(&*self.file, &mut buf, start)?;
        // Keep only whole batches; if even the first is larger than `max_bytes`, read all of it.
        let mut end = 0usize;
        while end + BATCH_HEADER_BYTES <= buf.len() {
            let header = BatchHeader::peek(&buf[end..]).map_err(std::io::Error::other)?;
            if header.base_offset() >= limit {
                break;
            }
            let next = end + header.batch_bytes();
            if next > buf.len() {
                if end == 0 {
                    want = header.batch_bytes();
                    buf.resize(want, 0);
                    read_exact_at(&*self.file, &mut buf, start)?;
                    end = want;
                }
                break;
            }
            end = next;
        }
        buf.truncate(end);
        Ok(Some(Bytes::from(buf)))
    }

    /// The first record whose timestamp is at or after `timestamp`, as (offset,
    /// timestamp), or `None`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> std::io::Result<Option<(i64, i64)>> {
        let Some(from) = self.indexes.read().lookup_time(timestamp) else {
            return Ok(None);
        };
        let from = from.max(self.base_offset);
        let Some((mut position, _)) = self.find_batch(from, i64::MAX)? else {
            return Ok(None);
        };
        let size = self.size();
        let mut buf = [0u8; BATCH_HEADER_BYTES];
        while position + (BATCH_HEADER_BYTES as u64) <= size {
            self.header_at(position, &mut buf)
                .map_err(std::io::Error::other)?;
            let header = BatchHeader::peek(&buf).map_err(std::io::Error::other)?;
            let batch_bytes = header.batch_bytes();
            if header.max_timestamp() >= timestamp && !header.attributes().control() {
                let mut whole = vec![0u8; batch_bytes];
                read_exact_at(&*self.file, &mut whole, position)?;
                let records = crate::record::decode_batch(Bytes::from(whole))
                    .map_err(std::io::Error::other)?;
                if let Some(r) = records.iter().find(|r| r.timestamp >= timestamp) {
                    return Ok(Some((r.offset, r.timestamp)));
                }
            }
            position += batch_bytes as u64;
        }
        Ok(None)
    }

    /// Walks the batches from the start, validating each (CRC included) when `verify`, and
    /// rebuilding the indexes and `next_offset`. Stops at the first invalid batch and says
    /// where it is; `size` is left covering only the valid prefix.
    pub fn scan(&self, verify: bool, interval_bytes: u64) -> std::io::Result<ScanEnd> {
        self.scan_from(
            0,
            Indexes::default(),
            self.base_offset,
            verify,
            interval_bytes,
        )
    }

    fn scan_from(
        &self,
        mut position: u64,
        mut indexes: Indexes,
        mut next_offset: i64,
        verify: bool,
        interval_bytes: u64,
    ) -> std::io::Result<ScanEnd> {
        let file_len = self.file.len()?;
        let mut header_buf = [0u8; BATCH_HEADER_BYTES];
        let mut batch_buf = Vec::new();
        // The offset expected before the last accepted batch. That batch's base offset lies
        // outside its CRC, so a flipped bit there can inflate `next_offset`; the torn-tail
        // check must not trust it to rule out the valid batches that follow.
        let mut next_offset_before_last = next_offset;
        let end = loop {
            if position == file_len {
                break ScanEnd::Clean;
            }
            if position + BATCH_HEADER_BYTES as u64 > file_len {
                break ScanEnd::Invalid {
                    position,
                    reason: format!(
                        "{} trailing bytes, shorter than a batch header",
                        file_len - position
                    ),
                    min_following_offset: next_offset_before_last,
                };
            }
            read_exact_at(&*self.file, &mut header_buf, position)?;
            let header = match BatchHeader::peek(&header_buf) {
                Ok(h) => h,
                Err(e) => {
                    break ScanEnd::Invalid {
                        position,
                        reason: e.to_string(),
                        min_following_offset: next_offset_before_last,
                    };
                }
            };
            let batch_bytes = header.batch_bytes() as u64;
            if position + batch_bytes > file_len {
                break ScanEnd::Invalid {
                    position,
                    reason: format!("batch of {batch_bytes} bytes runs past the end of the file"),
                    min_following_offset: next_offset_before_last,
                };
            }
            if header.base_offset() < next_offset || header.last_offset() < header.base_offset() {
                break ScanEnd::Invalid {
                    position,
                    reason: format!(
                        "batch base offset {} is below the expected {next_offset}",
                        header.base_offset()
                    ),
                    min_following_offset: next_offset_before_last,
                };
            }
            let (base, last, max_ts) = (
                header.base_offset(),
                header.last_offset(),
                header.max_timestamp(),
            );
            if verify {
                batch_buf.resize(batch_bytes as usize, 0);
                read_exact_at(&*self.file, &mut batch_buf, position)?;
                if let Err(e) = BatchHeader::parse(&batch_buf) {
                    break ScanEnd::Invalid {
                        position,
                        reason: e.to_string(),
                        min_following_offset: next_offset_before_last,
                    };
                }
            }
            indexes.on_batch(base, position as u32, batch_bytes, max_ts, interval_bytes);
            next_offset_before_last = next_offset;
            next_offset = last + 1;
            position += batch_bytes;
        };
        *self.indexes.write() = indexes;
        self.next_offset.store(next_offset, Ordering::Release);
        self.size.store(position, Ordering::Release);
        Ok(end)
    }

    /// Whether a valid batch (CRC included) with base offset at or above `min_offset` starts
    /// anywhere after `after` in the file: tells interior corruption from a torn tail.
    pub fn valid_batch_after(&self, after: u64, min_offset: i64) -> std::io::Result<Option<u64>> {
        let file_len = self.file.len()?;
        let mut buf = vec![0u8; (file_len.saturating_sub(after)) as usize];
        if buf.is_empty() {
            return Ok(None);
        }
        read_exact_at(&*self.file, &mut buf, after)?;
        for start in 1..buf.len() {
            let rest = &buf[start..];
            if rest.len() < BATCH_HEADER_BYTES {
                break;
            }
            // Cheap filters first: magic byte, then a full parse with CRC.
            if rest[16] != 2 {
                continue;
            }
            if let Ok(header) = BatchHeader::parse(rest)
                && header.base_offset() >= min_offset
            {
                return Ok(Some(after + start as u64));
            }
        }
        Ok(None)
    }

    /// Cuts the file back to `position` (a batch boundary) and rescans its headers.
    pub fn truncate_to_position(&self, position: u64, interval_bytes: u64) -> std::io::Result<()> {
        self.file.set_len(position)?;
        match self.scan(false, interval_bytes)? {
            ScanEnd::Clean => Ok(()),
            ScanEnd::Invalid {
                position, reason, ..
            } => Err(std::io::Error::other(format!(
                "segment invalid at {position} after truncation: {reason}"
            ))),
        }
    }

    /// Opens a segment below the recovery point: loads its index files when they are
    /// consistent with the log and scans only the batches after the last index entry;
    /// rebuilds them from a header scan when missing or damaged. What had to be rebuilt or
    /// completed is written back: a closed segment's index files are otherwise only
    /// written when it is rolled, so every later open would pay for the rebuild again.
    pub fn load_trusted(
        &self,
        storage: &dyn Storage,
        interval_bytes: u64,
    ) -> std::io::Result<ScanEnd> {
        let file_len = self.file.len()?;
        let loaded = Indexes::load(
            &self.index_path,
            &self.time_index_path,
            self.base_offset,
            file_len,
        );
        let from_index = match loaded.clone() {
            Some(mut indexes) if !indexes.offsets.is_empty() => {
                let last = indexes.truncate_to_last_entry();
                let end = self.scan_from(
                    u64::from(last.position),
                    indexes,
                    last.offset,
                    false,
                    interval_bytes,
                )?;
                Some((end, u64::from(last.position)))
            }
            _ => None,
        };
        let end = match from_index {
            // The walk failed right where the index's last entry points: the entry may be
            // the damage (derived data pointing into the middle of a batch), not the log.
            // Only a walk from the start can tell which.
            Some((ScanEnd::Invalid { position, .. }, entry)) if position == entry => {
                self.scan(false, interval_bytes)?
            }
            Some((end, _)) => end,
            None => self.scan(false, interval_bytes)?,
        };
        let rebuilt = loaded
            .as_ref()
            .is_none_or(|loaded| !loaded.same_entries(&self.indexes.read()));
        if matches!(end, ScanEnd::Clean)
            && rebuilt
            && let Err(e) = self.persist_indexes(storage)
        {
            tracing::warn!(file = %self.index_path.display(), "could not write rebuilt index files (they will be rebuilt on the next open): {e}");
        }
        Ok(end)
    }

    /// Writes the index files.
    pub fn persist_indexes(&self, storage: &dyn Storage) -> std::io::Result<()> {
        self.indexes.read().persist(
            storage,
            &self.index_path,
            &self.time_index_path,
            self.base_offset,
        )
    }
}

/// How a failed segment write ended.
#[derive(Debug)]
pub(crate) enum AppendFailure {
    /// The write failed and the file was cut back: nothing partial remains.
    RolledBack(std::io::Error),
    /// The write failed and so did cutting it back: the file may hold a partial batch.
    Unrecoverable {
        error: std::io::Error,
        undo: std::io::Error,
    },
}

impl From<BatchError> for ScanEnd {
    fn from(e: BatchError) -> Self {
        ScanEnd::Invalid {
            position: 0,
            reason: e.to_string(),
            min_following_offset: 0,
        }
    }
}
