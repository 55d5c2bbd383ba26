//! Log compaction: keep the newest record per key in the closed segments of a compacted
//! topic; drop tombstones (null values) once they are older than `delete.retention.ms`.
//!
//! A pass runs in the background and never blocks appends or reads:
//! 1. take a snapshot of the closed segments (the active one is never touched) whose
//!    records are all older than `min.compaction.lag.ms`; skip the pass if they are the
//!    same as last time and no tombstone has expired since;
//! 2. build a map key -> newest offset over them, streaming batch by batch (memory: the
//!    map, plus one read window);
//! 3. for each segment that loses records, stream the survivors to `<base>.log.cleaned`
//!    (batches whose records all survive are copied byte for byte; others are re-encoded
//!    with their original offsets, timestamps, compression and producer fields, and keep
//!    the original batch's last offset), fsync it;
//! 4. under the segment-list lock, rename it over the original and swap the segment in
//!    the list. Index files are removed before the rename and written after, so a crash
//!    at any point leaves either the old or the new log with indexes that are absent (and
//!    rebuilt) or correct. Readers that hold the old segment keep their open file.
//!
//! Offsets never change; compaction leaves gaps that readers skip.
//!
//! Transactions, as Kafka's cleaner treats them: only segments wholly below the last
//! stable offset are cleaned (an open transaction may still abort), and records of aborted
//! transactions neither count as a key's newest value nor survive — otherwise an aborted
//! write could erase the committed value it shadowed. Control batches (markers) are kept.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;

use super::io::{StorageFile, read_exact_at};
use super::partition::Partition;
use super::segment::{ScanEnd, Segment};
use super::transactions::is_aborted;
use crate::error::{Error, Result};
use crate::record::{
    BATCH_HEADER_BYTES, BatchHeader, Compression, ProducerStamp, Record, decode_batch, encode_batch,
};
use crate::txn::AbortedTxn;

/// Bytes read from a segment at a time while compacting.
const READ_WINDOW_BYTES: usize = 4 << 20;

/// What one compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Records removed.
    pub records_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// The state a pass leaves behind: which closed segments it covered and when the oldest
/// surviving tombstone expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactionMark {
    covered_end_offset: i64,
    covered_segments: usize,
    next_tombstone_expiry_ms: i64,
}

/// Calls `f` with each whole, CRC-checked batch of `segment`, reading in windows.
fn for_each_batch(
    segment: &Segment,
    mut f: impl FnMut(BatchHeader<'_>, &[u8]) -> std::result::Result<ControlFlow<()>, String>,
) -> std::result::Result<(), String> {
    let size = segment.size();
    let mut position = 0u64;
    let mut buf = Vec::new();
    while position < size {
        let want = READ_WINDOW_BYTES.min((size - position) as usize);
        buf.resize(want, 0);
        read_exact_at(&*segment.file, &mut buf, position).map_err(|e| e.to_string())?;
        let mut used = 0usize;
        while used + BATCH_HEADER_BYTES <= buf.len() {
            let batch_bytes = BatchHeader::peek(&buf[used..])
                .map_err(|e| e.to_string())?
                .batch_bytes();
            if used + batch_bytes > buf.len() {
                if used > 0 {
                    break;
                }
                // One batch larger than the window: read it whole.
                buf.resize(batch_bytes, 0);
                read_exact_at(&*segment.file, &mut buf, position).map_err(|e| e.to_string())?;
            }
            let raw = &buf[used..used + batch_bytes];
            let header = BatchHeader::parse(raw).map_err(|e| e.to_string())?;
            if f(header, raw)?.is_break() {
                return Ok(());
            }
            used += batch_bytes;
        }
        if used == 0 {
            return Err(format!("unreadable batch at byte {position}"));
        }
        position += used as u64;
    }
    Ok(())
}

/// Whether a record survives: it has no key, or it is its key's newest and not an expired
/// tombstone.
fn survives(record: &Record, newest: &HashMap<Bytes, i64>, tombstone_cutoff: i64) -> bool {
    match &record.key {
        None => true,
        Some(key) => {
            newest.get(key) == Some(&record.offset)
                && (record.value.is_some() || record.timestamp >= tombstone_cutoff)
        }
    }
}

impl Partition {
    /// Runs one compaction pass if the topic is compacted.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionOutcome> {
        let config = self.config();
        if !config.cleanup_policy.compacts() {
            return Ok(CompactionOutcome::default());
        }
        let segments = self.segments();
        let lag_cutoff = now_ms - config.min_compaction_lag_ms as i64;
        let stable = self.last_stable_offset();
        let candidates: Vec<Arc<Segment>> = segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .take_while(|s| s.max_timestamp().is_none_or(|t| t <= lag_cutoff))
            .take_while(|s| s.next_offset() <= stable)
            .cloned()
            .collect();
        let aborted = self.aborted_transactions_full(0, stable);
        let Some(last) = candidates.last() else {
            return Ok(CompactionOutcome::default());
        };
        let covered_end_offset = last.next_offset();
        if let Some(mark) = *self.compaction_mark.lock()
            && mark.covered_end_offset == covered_end_offset
            && mark.covered_segments == candidates.len()
            && now_ms < mark.next_tombstone_expiry_ms
        {
            return Ok(CompactionOutcome::default());
        }
        let corrupt = |segment: &Segment, reason: String| Error::CorruptRead {
            topic: self.topic().to_string(),
            partition: self.id(),
            offset: segment.base_offset,
            reason: format!("while compacting {}: {reason}", segment.log_path.display()),
        };

        // Pass 1: newest offset per key.
        let mut newest: HashMap<Bytes, i64> = HashMap::new();
        for segment in &candidates {
            for_each_batch(segment, |header, raw| {
                if !header.attributes().control() && !is_aborted(&header, &aborted) {
                    for record in decode_batch(Bytes::copy_from_slice(raw))? {
                        if let Some(key) = record.key {
                            newest.insert(key, record.offset);
                        }
                    }
                }
                Ok(ControlFlow::Continue(()))
            })
            .map_err(|e| corrupt(segment, e))?;
        }

        // Pass 2: rewrite each segment that loses records.
        let tombstone_cutoff = now_ms - config.delete_retention_ms as i64;
        let mut oldest_tombstone = i64::MAX;
        let mut outcome = CompactionOutcome::default();
        for segment in &candidates {
            let mut dirty = false;
            for_each_batch(segment, |header, raw| {
                if header.attributes().control() {
                    return Ok(ControlFlow::Continue(()));
                }
                if is_aborted(&header, &aborted) {
                    dirty = true;
                    return Ok(ControlFlow::Break(()));
                }
                let records = decode_batch(Bytes::copy_from_slice(raw))?;
                for r in &records {
                    if !survives(r, &newest, tombstone_cutoff) {
                        dirty = true;
                        return Ok(ControlFlow::Break(()));
                    }
                    if r.key.is_some() && r.value.is_none() {
                        oldest_tombstone = oldest_tombstone.min(r.timestamp);
                    }
                }
                Ok(ControlFlow::Continue(()))
            })
            .map_err(|e| corrupt(segment, e))?;
            if !dirty {
                continue;
            }
            let (removed, written) = self
                .write_cleaned(
                    segment,
                    &newest,
                    &aborted,
                    tombstone_cutoff,
                    &mut oldest_tombstone,
                )
                .map_err(|e| corrupt(segment, e))?;
            let before = segment.size();
            self.swap_cleaned(segment)
                .map_err(|e| Error::io("compact", &segment.log_path, e))?;
            outcome.segments_cleaned += 1;
            outcome.records_removed += removed;
            outcome.bytes_freed += before.saturating_sub(written);
        }
        *self.compaction_mark.lock() = Some(CompactionMark {
            covered_end_offset,
            covered_segments: candidates.len(),
            next_tombstone_expiry_ms: oldest_tombstone
                .saturating_add(config.delete_retention_ms as i64),
        });
        if outcome.segments_cleaned > 0 {
            tracing::info!(
                topic = self.topic(),
                partition = self.id(),
                segments = outcome.segments_cleaned,
                records_removed = outcome.records_removed,
                bytes_freed = outcome.bytes_freed,
                "compacted"
            );
        }
        Ok(outcome)
    }

    /// Streams the surviving records of `segment` to `<base>.log.cleaned`, fsynced.
    /// Returns (records removed, bytes written).
    fn write_cleaned(
        &self,
        segment: &Segment,
        newest: &HashMap<Bytes, i64>,
        aborted: &[AbortedTxn],
        tombstone_cutoff: i64,
        oldest_tombstone: &mut i64,
    ) -> std::result::Result<(u64, u64), String> {
        let cleaned_path = segment.log_path.with_extension("log.cleaned");
        let file: Arc<dyn StorageFile> = self
            .storage()
            .open(&cleaned_path, true)
            .map_err(|e| format!("creating {}: {e}", cleaned_path.display()))?;
        file.set_len(0).map_err(|e| e.to_string())?;
        let mut written = 0u64;
        let mut removed = 0u64;
        for_each_batch(segment, |header, raw| {
            let mut write = |bytes: &[u8]| {
                file.write_all_at(bytes, written)
                    .map_err(|e| format!("writing {}: {e}", cleaned_path.display()))?;
                written += bytes.len() as u64;
                Ok::<(), String>(())
            };
            if header.attributes().control() {
                write(raw)?;
                return Ok(ControlFlow::Continue(()));
            }
            if is_aborted(&header, aborted) {
                removed += u64::try_from(header.record_count()).unwrap_or(0);
                return Ok(ControlFlow::Continue(()));
            }
            let records = decode_batch(Bytes::copy_from_slice(raw))?;
            let total = records.len();
            let kept: Vec<Record> = records
                .into_iter()
                .filter(|r| survives(r, newest, tombstone_cutoff))
                .collect();
            for r in kept.iter().filter(|r| r.key.is_some() && r.value.is_none()) {
                *oldest_tombstone = (*oldest_tombstone).min(r.timestamp);
            }
            removed += (total - kept.len()) as u64;
            if kept.len() == total {
                write(raw)?;
            } else if !kept.is_empty() {
                write(&reencode(&header, &kept).map_err(|e| e.to_string())?)?;
            }
            Ok(ControlFlow::Continue(()))
        })?;
        file.sync_data()
            .map_err(|e| format!("fsync {}: {e}", cleaned_path.display()))?;
        Ok((removed, written))
    }

    fn swap_cleaned(&self, old: &Arc<Segment>) -> std::io::Result<()> {
        let storage = self.storage().clone();
        let cleaned_path = old.log_path.with_extension("log.cleaned");
        let interval = self.config().index_interval_bytes;
        let mut swapped = Ok(());
        self.replace_segments(|current| {
            let Some(i) = current.iter().position(|s| Arc::ptr_eq(s, old)) else {
                // Retention removed it meanwhile: nothing to swap.
                let _ = std::fs::remove_file(&cleaned_path);
                return current.to_vec();
            };
            let result = (|| -> std::io::Result<Arc<Segment>> {
                let _ = std::fs::remove_file(&old.index_path);
                let _ = std::fs::remove_file(&old.time_index_path);
                std::fs::rename(&cleaned_path, &old.log_path)?;
                let fresh = Segment::open(&*storage, self.dir(), old.base_offset, false)?;
                if let ScanEnd::Invalid {
                    position, reason, ..
                } = fresh.scan(true, interval)?
                {
                    return Err(std::io::Error::other(format!(
                        "compacted segment invalid at {position}: {reason}"
                    )));
                }
                fresh.persist_indexes(&*storage)?;
                Ok(Arc::new(fresh))
            })();
            let mut list = current.to_vec();
            match result {
                Ok(fresh) => {
                    if let Some(slot) = list.get_mut(i) {
                        *slot = fresh;
                    }
                }
                Err(e) => swapped = Err(e),
            }
            list
        });
        swapped?;
        storage.sync_dir(self.dir())
    }
}

fn reencode(header: &BatchHeader<'_>, kept: &[Record]) -> Result<Vec<u8>> {
    let compression =
        Compression::from_id(header.attributes().compression_id()).unwrap_or_default();
    let first = kept.first().map_or(header.base_offset(), |r| r.offset);
    let stamp = ProducerStamp {
        producer_id: header.producer_id(),
        producer_epoch: header.producer_epoch(),
        base_sequence: if header.base_sequence() < 0 {
            -1
        } else {
            header
                .base_sequence()
                .wrapping_add((first - header.base_offset()) as i32)
        },
        transactional: header.attributes().transactional(),
    };
    let mut bytes = encode_batch(kept, compression, stamp)?.to_vec();
    let log_append_time = header
        .attributes()
        .log_append_time()
        .then(|| header.max_timestamp());
    crate::record::restore_span(&mut bytes, header.last_offset(), log_append_time);
    Ok(bytes)
}
