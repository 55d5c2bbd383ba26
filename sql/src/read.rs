//! Reading one partition's records in an offset range as a read_committed consumer sees
//! them: below the last stable offset, without control batches or batches of aborted
//! transactions. The embedded log's reader of `backend::PartitionReader`.
//!
//! Invariant: [`RangeReader::visit_next`] only moves forward, and every call that returns
//! records moves `next` past the last batch it read, so a scan always ends.

use std::sync::Arc;

use bytes::Bytes;
use sluice_core::record::{BatchIter, RecordRef, visit_batch};
use sluice_core::{Error as LogError, Partition};

use crate::{Error, Result};

/// How many bytes one read of the log asks for.
const READ_BYTES: usize = 1 << 20;

/// What a batch handler tells [`RangeReader::next_batches`].
enum Visit {
    /// Go on; `any`: the batch had records in the range.
    Next { any: bool },
    /// The reader wants nothing more.
    Stop,
}

/// Reads `[start, end)` of one partition, a log read at a time.
pub(crate) struct RangeReader {
    partition: Arc<Partition>,
    /// The next offset to read.
    next: i64,
    /// One past the last offset to return (never above `lso`).
    end: i64,
    /// The last stable offset when the reader was made: no batch at or past it is read,
    /// so an open transaction's records never show.
    lso: i64,
}

impl RangeReader {
    /// A reader of `[start, end)`; `end` is capped at the partition's last stable offset.
    pub(crate) fn new(partition: Arc<Partition>, start: i64, end: i64) -> Self {
        let lso = partition.last_stable_offset();
        Self {
            partition,
            next: start,
            end: end.min(lso),
            lso,
        }
    }

    /// Hands the records of the next read to `visit`, in offset order and borrowed from the
    /// log's bytes (no `Record` per record), until it returns `Ok(false)`; `Ok(false)` once
    /// the range is done, `Ok(true)` while there may be more. A scan's way of reading.
    pub(crate) fn visit_next(
        &mut self,
        mut visit: impl FnMut(&RecordRef<'_>) -> Result<bool>,
    ) -> Result<bool> {
        let (next, end) = (self.next, self.end);
        self.next_batches(|reader, base_offset, bytes| {
            let mut failed = None;
            let mut stopped = false;
            let mut any = false;
            visit_batch(bytes, |record| {
                if record.offset < next || record.offset >= end {
                    return true;
                }
                any = true;
                match visit(&record) {
                    Ok(true) => true,
                    Ok(false) => {
                        stopped = true;
                        false
                    }
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })
            .map_err(|reason| reader.corrupt(base_offset, reason))?;
            match failed {
                Some(e) => Err(e),
                None if stopped => Ok(Visit::Stop),
                None => Ok(Visit::Next { any }),
            }
        })
    }

    /// Reads the log from `next` and hands `batch(self, base offset, bytes)` each data batch
    /// of the read that a read_committed consumer would see (no control batches, none of an
    /// aborted transaction), until a read yields records in the range. Returns `false` once
    /// the range is done or `batch` said stop, `true` while there may be more.
    fn next_batches(
        &mut self,
        mut batch: impl FnMut(&Self, i64, Bytes) -> Result<Visit>,
    ) -> Result<bool> {
        loop {
            if self.next >= self.end {
                return Ok(false);
            }
            let read = match self.partition.read(self.next, READ_BYTES) {
                Ok(read) => read,
                // Retention moved the log start past us since the range was planned: what
                // was below it is gone, so go on from the new start.
                Err(LogError::OffsetOutOfRange {
                    log_start_offset, ..
                }) if log_start_offset > self.next => {
                    self.next = log_start_offset;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let (records, aborted) = self
                .partition
                .stable_part(read.records, self.next, self.lso);
            if records.is_empty() {
                return Ok(false);
            }
            let mut after = self.next;
            let mut any = false;
            for item in BatchIter::new(&records) {
                let (start, header) = item.map_err(|e| self.corrupt(after, e.to_string()))?;
                let batch_next = header.last_offset() + 1;
                let aborted_batch = header.attributes().transactional()
                    && aborted
                        .iter()
                        .any(|a| a.covers(header.producer_id(), header.base_offset()));
                if !header.attributes().control() && !aborted_batch {
                    let bytes = records.slice(start..start + header.batch_bytes());
                    match batch(self, header.base_offset(), bytes)? {
                        Visit::Stop => return Ok(false),
                        Visit::Next { any: yes } => any |= yes,
                    }
                }
                after = after.max(batch_next);
            }
            if after <= self.next {
                // A read that moves nothing forward would loop for ever.
                return Err(self.corrupt(self.next, "the log returned no whole batch".into()));
            }
            self.next = after;
            if any {
                return Ok(true);
            }
        }
    }

    fn corrupt(&self, offset: i64, reason: String) -> Error {
        Error::CorruptBatch {
            topic: self.partition.topic().to_string(),
            partition: self.partition.id(),
            offset,
            reason,
        }
    }
}
