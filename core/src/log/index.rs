//! Sparse offset index and time index of one segment.
//!
//! - Offset index (`.index`): 8-byte entries `(offset - base_offset: u32, position: u32)`,
//!   big-endian, strictly increasing in both fields. An entry points at the start of the
//!   batch whose base offset it names. One entry per `index.interval.bytes` of log.
//! - Time index (`.timeindex`): 12-byte entries `(max_timestamp: i64, offset - base: u32)`,
//!   strictly increasing timestamps. An entry says "the running maximum timestamp reached
//!   this value in the batch starting at this offset"; all batches before an entry have
//!   max timestamps below it.
//!
//! Both live in memory and are written to disk whole (atomically) when the segment is
//! rolled or the log closes. They are derived data: a missing, short or inconsistent file
//! is rebuilt from the log, and the active segment's are always rebuilt on open.

use std::path::Path;

use super::io::{Storage, write_atomic};

const OFFSET_ENTRY_BYTES: usize = 8;
const TIME_ENTRY_BYTES: usize = 12;

/// One offset-index entry, in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub offset: i64,
    pub position: u32,
}

/// One time-index entry, in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub offset: i64,
}

/// The in-memory indexes of one segment.
#[derive(Debug, Default, Clone)]
pub(crate) struct Indexes {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    /// Log bytes appended since the last offset-index entry.
    bytes_since_entry: u64,
    /// The running maximum timestamp (the last time entry's, or earlier unindexed ones').
    max_timestamp: Option<i64>,
}

impl Indexes {
    /// Records a batch appended at `position`; adds index entries where due.
    pub fn on_batch(
        &mut self,
        base_offset: i64,
        position: u32,
        batch_bytes: u64,
        max_timestamp: i64,
        interval_bytes: u64,
    ) {
        if self.offsets.is_empty() || self.bytes_since_entry >= interval_bytes {
            self.offsets.push(OffsetEntry {
                offset: base_offset,
                position,
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += batch_bytes;
        if self.max_timestamp.is_none_or(|m| max_timestamp > m) {
            self.max_timestamp = Some(max_timestamp);
            self.times.push(TimeEntry {
                timestamp: max_timestamp,
                offset: base_offset,
            });
        }
    }

    /// Position of the batch to start scanning from to find `offset`: the last entry whose
    /// offset is at or below it (0 if none).
    pub fn lookup_offset(&self, offset: i64) -> u32 {
        let i = self.offsets.partition_point(|e| e.offset <= offset);
        i.checked_sub(1)
            .and_then(|i| self.offsets.get(i))
            .map_or(0, |e| e.position)
    }

    /// Offset of the batch to start scanning from to find the first record with a timestamp
    /// at or after `timestamp`: the batch where the running maximum last stood below it.
    /// `None` if no record in the segment reaches `timestamp`.
    pub fn lookup_time(&self, timestamp: i64) -> Option<i64> {
        let first_reaching = self.times.partition_point(|e| e.timestamp < timestamp);
        self.times.get(first_reaching)?;
        Some(
            first_reaching
                .checked_sub(1)
                .and_then(|i| self.times.get(i))
                .map_or(i64::MIN, |e| e.offset),
        )
    }

    /// Largest timestamp seen in the segment.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.max_timestamp
    }

    /// Whether both indexes hold the same entries (what the index files would contain).
    pub fn same_entries(&self, other: &Indexes) -> bool {
        self.offsets == other.offsets && self.times == other.times
    }

    /// Writes both index files atomically.
    pub fn persist(
        &self,
        storage: &dyn Storage,
        offset_path: &Path,
        time_path: &Path,
        base_offset: i64,
    ) -> std::io::Result<()> {
        // The time index goes first: a crash between the two renames then leaves a complete
        // time index next to an older offset index, which is merely sparser. The reverse
        // would leave a time index whose running maximum stops short of the segment's.
        let mut buf = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for e in &self.times {
            buf.extend_from_slice(&e.timestamp.to_be_bytes());
            buf.extend_from_slice(&((e.offset - base_offset) as u32).to_be_bytes());
        }
        write_atomic(storage, time_path, &buf)?;
        buf.clear();
        for e in &self.offsets {
            buf.extend_from_slice(&((e.offset - base_offset) as u32).to_be_bytes());
            buf.extend_from_slice(&e.position.to_be_bytes());
        }
        write_atomic(storage, offset_path, &buf)
    }

    /// Loads index files written by [`persist`](Self::persist); `None` if either is missing
    /// or inconsistent with a log of `log_bytes` bytes (the caller then rebuilds).
    pub fn load(
        offset_path: &Path,
        time_path: &Path,
        base_offset: i64,
        log_bytes: u64,
    ) -> Option<Indexes> {
        let raw = std::fs::read(offset_path).ok()?;
        if raw.len() % OFFSET_ENTRY_BYTES != 0 {
            return None;
        }
        let mut indexes = Indexes::default();
        for chunk in raw.chunks_exact(OFFSET_ENTRY_BYTES) {
            let rel = u32::from_be_bytes(chunk[0..4].try_into().ok()?);
            let position = u32::from_be_bytes(chunk[4..8].try_into().ok()?);
            let offset = base_offset + i64::from(rel);
            if let Some(prev) = indexes.offsets.last()
                && (prev.offset >= offset || prev.position >= position)
            {
                return None;
            }
            if u64::from(position) >= log_bytes {
                return None;
            }
            indexes.offsets.push(OffsetEntry { offset, position });
        }
        if log_bytes > 0 && indexes.offsets.first().is_none_or(|e| e.position != 0) {
            return None;
        }
        let raw = std::fs::read(time_path).ok()?;
        if raw.len() % TIME_ENTRY_BYTES != 0 {
            return None;
        }
        for chunk in raw.chunks_exact(TIME_ENTRY_BYTES) {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().ok()?);
            let offset = base_offset + i64::from(u32::from_be_bytes(chunk[8..12].try_into().ok()?));
            if indexes
                .times
                .last()
                .is_some_and(|p| p.timestamp >= timestamp || p.offset > offset)
            {
                return None;
            }
            indexes.times.push(TimeEntry { timestamp, offset });
        }
        // A non-empty segment always has a time entry for its first batch.
        if log_bytes > 0
            && indexes.times.first().map(|t| t.offset) != indexes.offsets.first().map(|o| o.offset)
        {
            return None;
        }
        indexes.max_timestamp = indexes.times.last().map(|e| e.timestamp);
        Some(indexes)
    }

    /// Drops the last offset entry and every time entry at or after its offset, and
    /// returns it: the caller rescans the log from that entry, which re-adds them.
    pub fn truncate_to_last_entry(&mut self) -> OffsetEntry {
        let last = self.offsets.pop().unwrap_or(OffsetEntry {
            offset: 0,
            position: 0,
        });
        self.times.retain(|t| t.offset < last.offset);
        self.max_timestamp = self.times.last().map(|t| t.timestamp);
        // Force an entry for the first rescanned batch.
        self.bytes_since_entry = u64::MAX / 2;
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_floor_entry() {
        let mut ix = Indexes::default();
        ix.on_batch(100, 0, 10, 5, 15);
        ix.on_batch(110, 10, 10, 6, 15);
        ix.on_batch(120, 20, 10, 7, 15);
        assert_eq!(ix.offsets.len(), 2);
        assert_eq!(ix.lookup_offset(99), 0);
        assert_eq!(ix.lookup_offset(115), 0);
        assert_eq!(ix.lookup_offset(120), 20);
        assert_eq!(ix.lookup_offset(1000), 20);
    }

    #[test]
    fn time_lookup_starts_before_first_reaching_batch() {
        let mut ix = Indexes::default();
        ix.on_batch(0, 0, 10, 100, 1);
        ix.on_batch(10, 10, 10, 90, 1); // out of order: not a time entry
        ix.on_batch(20, 20, 10, 200, 1);
        assert_eq!(ix.times.len(), 2);
        assert_eq!(ix.lookup_time(50), Some(i64::MIN));
        assert_eq!(ix.lookup_time(150), Some(0));
        assert_eq!(ix.lookup_time(201), None);
    }
}
