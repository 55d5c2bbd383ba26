//! Retention: deleting whole old segments by age (`retention.ms`), by partition size
//! (`retention.bytes`) and below the log start offset (DeleteRecords).
//!
//! Only a prefix of the segment list is ever deleted, so the log stays contiguous. The
//! active segment is rolled first when it has itself expired, as Kafka does, so an idle
//! topic's data still ages out. Readers holding a deleted segment keep reading it: the file
//! is unlinked but their handle stays valid until they drop it.

use std::sync::Arc;

use super::partition::{Partition, remove_segment_files};
use crate::error::Result;

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
}

impl Partition {
    /// Deletes segments past retention. Returns what was removed.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionOutcome> {
        let config = self.config();
        let start = self.log_start_offset();
        if config.cleanup_policy.deletes() && config.retention_ms >= 0 {
            let cutoff = now_ms - config.retention_ms;
            let segments = self.segments();
            let all_expired = segments
                .iter()
                .all(|s| s.is_empty() || s.max_timestamp().is_some_and(|t| t < cutoff));
            if all_expired {
                self.roll_if_nonempty()?;
            }
        }
        let segments = self.segments();
        let closed = segments.len().saturating_sub(1);
        let mut delete = 0usize;
        let mut total: u64 = segments.iter().map(|s| s.size()).sum();
        for (i, segment) in segments.iter().take(closed).enumerate() {
            let next_base = segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset);
            let below_start = next_base <= start;
            let expired = config.cleanup_policy.deletes()
                && config.retention_ms >= 0
                && segment
                    .max_timestamp()
                    .is_none_or(|t| t < now_ms - config.retention_ms);
            let oversize = config.cleanup_policy.deletes()
                && config.retention_bytes >= 0
                && total - segment.size() >= config.retention_bytes as u64;
            if !(below_start || expired || oversize) {
                break;
            }
            total -= segment.size();
            delete = i + 1;
        }
        if delete == 0 {
            return Ok(RetentionOutcome::default());
        }
        let mut removed: Vec<Arc<super::segment::Segment>> = Vec::new();
        self.replace_segments(|current| {
            // The list may have grown (a roll) since the snapshot; the prefix is unchanged.
            removed = current.iter().take(delete).cloned().collect();
            current.iter().skip(delete).cloned().collect()
        });
        let new_start = self.segments().first().map_or(start, |s| s.base_offset);
        self.set_log_start_offset_at_least(new_start);
        self.persist_log_start()?;
        let mut outcome = RetentionOutcome::default();
        for segment in &removed {
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += segment.size();
            remove_segment_files(self.dir(), segment.base_offset);
        }
        let _ = self.storage().sync_dir(self.dir());
        tracing::info!(
            topic = self.topic(),
            partition = self.id(),
            segments = outcome.segments_deleted,
            bytes = outcome.bytes_deleted,
            log_start_offset = self.log_start_offset(),
            "retention deleted segments"
        );
        Ok(outcome)
    }
}
