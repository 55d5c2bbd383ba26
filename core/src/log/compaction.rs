//! Log compaction: keep the newest record per key in the closed segments of a compacted
//! topic; drop tombstones (null values) once they are older than `delete.retention.ms`.
//!
//! A pass runs in the background and never blocks appends or reads:
//! 1. take a snapshot of the closed segments (the active one is never touched) whose
//!    records are all older than `min.compaction.lag.ms`;
//! 2. build a map key -> newest offset over them;
//! 3. for each, write the surviving records to `<base>.log.cleaned` (batches whose records
//!    all survive are copied byte for byte; others are re-encoded with their original
//!    offsets, timestamps, compression and producer fields), fsync it;
//! 4. under the segment-list lock, rename it over the original and swap the segment in
//!    the list. Index files are removed before the rename and written after, so a crash
//!    at any point leaves either the old or the new log with indexes that are absent (and
//!    rebuilt) or correct. Readers that hold the old segment keep their open file.
//!
//! Offsets never change; compaction leaves gaps that readers skip.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::partition::Partition;
use super::segment::{ScanEnd, Segment};
use crate::error::{Error, Result};
use crate::record::{
    BatchHeader, BatchIter, Compression, ProducerStamp, decode_batch, encode_batch,
};

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

fn read_all(segment: &Segment) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; segment.size() as usize];
    super::io::read_exact_at(&*segment.file, &mut buf, 0)?;
    Ok(buf)
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
        let candidates: Vec<Arc<Segment>> = segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .take_while(|s| s.max_timestamp().is_none_or(|t| t <= lag_cutoff))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return Ok(CompactionOutcome::default());
        }
        let io_err =
            |segment: &Segment, e: std::io::Error| Error::io("compact", &segment.log_path, e);
        let corrupt = |segment: &Segment, reason: String| Error::CorruptRead {
            topic: self.topic().to_string(),
            partition: self.id(),
            offset: segment.base_offset,
            reason,
        };

        // Pass 1: newest offset per key.
        let mut newest: HashMap<Bytes, i64> = HashMap::new();
        for segment in &candidates {
            let bytes = read_all(segment).map_err(|e| io_err(segment, e))?;
            for item in BatchIter::new(&bytes) {
                let (start, header) = item.map_err(|e| corrupt(segment, e.to_string()))?;
                if header.attributes().control() {
                    continue;
                }
                let batch = Bytes::copy_from_slice(&bytes[start..start + header.batch_bytes()]);
                for record in decode_batch(batch).map_err(|e| corrupt(segment, e))? {
                    if let Some(key) = record.key {
                        newest.insert(key, record.offset);
                    }
                }
            }
        }

        // Pass 2: rewrite each segment that loses records.
        let tombstone_cutoff = now_ms - config.delete_retention_ms as i64;
        let mut outcome = CompactionOutcome::default();
        for segment in &candidates {
            let bytes = read_all(segment).map_err(|e| io_err(segment, e))?;
            let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
            let mut removed = 0u64;
            for item in BatchIter::new(&bytes) {
                let (start, header) = item.map_err(|e| corrupt(segment, e.to_string()))?;
                let raw = &bytes[start..start + header.batch_bytes()];
                if header.attributes().control() {
                    out.extend_from_slice(raw);
                    continue;
                }
                let records =
                    decode_batch(Bytes::copy_from_slice(raw)).map_err(|e| corrupt(segment, e))?;
                let total = records.len();
                let kept: Vec<_> = records
                    .into_iter()
                    .filter(|r| match &r.key {
                        None => true,
                        Some(key) => {
                            newest.get(key) == Some(&r.offset)
                                && (r.value.is_some() || r.timestamp >= tombstone_cutoff)
                        }
                    })
                    .collect();
                removed += (total - kept.len()) as u64;
                if kept.len() == total {
                    out.extend_from_slice(raw);
                } else if !kept.is_empty() {
                    out.extend_from_slice(
                        &reencode(&header, &kept).map_err(|e| corrupt(segment, e.to_string()))?,
                    );
                }
            }
            if removed == 0 {
                continue;
            }
            self.swap_cleaned(segment, &out)
                .map_err(|e| io_err(segment, e))?;
            outcome.segments_cleaned += 1;
            outcome.records_removed += removed;
            outcome.bytes_freed += (bytes.len() - out.len()) as u64;
        }
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

    fn swap_cleaned(&self, old: &Arc<Segment>, contents: &[u8]) -> std::io::Result<()> {
        let storage = self.storage().clone();
        let cleaned_path = old.log_path.with_extension("log.cleaned");
        {
            let file = storage.open(&cleaned_path, true)?;
            file.set_len(0)?;
            file.write_all_at(contents, 0)?;
            file.sync_data()?;
        }
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

fn reencode(header: &BatchHeader<'_>, kept: &[crate::record::Record]) -> Result<Vec<u8>> {
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
