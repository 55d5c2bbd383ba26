//! Recovery on open: turning a partition directory left by a clean close, a crash or a
//! failed fsync back into a [`Partition`] that serves exactly the valid prefix of its log.
//!
//! Policy:
//! - **trust below the recovery point**: a segment that ends at or below the recovery point
//!   (the offset below which everything was fsynced) is loaded from its index files and a
//!   header walk, without checking CRCs; so is the last segment when a header walk ends
//!   cleanly at or below the recovery point;
//! - **full CRC scan above it**: every other segment is scanned batch by batch, checking
//!   length, magic and CRC32C;
//! - **a torn tail is truncated**: an invalid batch followed by nothing valid (in its
//!   segment or any later one) is cut back to the last valid batch, logged with file,
//!   position and bytes dropped; the empty later segments are deleted;
//! - **interior corruption is refused**: an invalid batch followed by a valid one, inside a
//!   trusted segment, or followed by later segments with data, or segments whose offsets
//!   overlap, fail the open with [`Error::Corrupt`] naming the file and byte position;
//!   committed data is never silently dropped;
//! - **indexes are rebuilt**: index files are derived data; missing, truncated or
//!   inconsistent ones are rebuilt by the scan;
//! - **recovered data is fsynced before the recovery point moves**: what was scanned may
//!   only be in the page cache, so it is fsynced (with the directory) before the new
//!   recovery point is written.
//!
//! It also owns the checkpoint files recovery reads (written by `partition.rs` at flush,
//! roll, close and DeleteRecords): `recovery-point`, `log-start-offset` and
//! `producer-state.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::io::Storage;
use super::notify::Notifier;
use super::partition::{Partition, Recovered, remove_segment_files};
use super::segment::{ScanEnd, Segment};
use crate::config::TopicConfig;
use crate::error::{Error, Result};
use crate::record::BatchIter;
use crate::txn::{BatchSeq, ProducerStateTable, TxnState};

/// Decimal offset below which everything is fsynced.
pub(super) const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Decimal first offset still in the log (moved by retention and DeleteRecords).
pub(super) const LOG_START_FILE: &str = "log-start-offset";
/// The idempotent-producer table as of `offset` ([`ProducerSnapshot`], JSON).
pub(super) const PRODUCER_SNAPSHOT_FILE: &str = "producer-state.json";

/// The producer-state table at an offset, so recovery only replays batches after it.
#[derive(Serialize, Deserialize)]
pub(super) struct ProducerSnapshot {
    pub(super) offset: i64,
    pub(super) table: ProducerStateTable,
    /// Open transactions and the aborted-transaction index (absent in older snapshots,
    /// which predate transactions and so had none).
    #[serde(default)]
    pub(super) txn: TxnState,
}

/// Reads a checkpoint file holding one decimal number: `None` if it is missing or does not
/// parse (recovery then falls back to scanning, never to trusting).
fn read_i64_file(path: &Path) -> Result<Option<i64>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse::<i64>().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

impl Partition {
    /// Opens (creating if needed) the partition in `dir`, recovering from an unclean stop.
    pub(crate) fn open(
        topic: &str,
        id: i32,
        dir: PathBuf,
        config: Arc<TopicConfig>,
        storage: Arc<dyn Storage>,
        notifier: Arc<Notifier>,
    ) -> Result<Partition> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("create partition directory", &dir, e))?;
        let interval = config.index_interval_bytes;
        let mut bases = list_segment_bases(&dir)?;
        let stored_start = read_i64_file(&dir.join(LOG_START_FILE))?;
        if bases.is_empty() {
            bases.push(stored_start.unwrap_or(0));
        }
        let recovery_point = read_i64_file(&dir.join(RECOVERY_POINT_FILE))?;
        let (segments, first_unflushed) =
            recover_segments(&*storage, &dir, &bases, recovery_point, interval)?;
        let last = segments
            .last()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("no segment".into()))?;
        last.age_from_first_batch();
        let log_end_offset = last.next_offset().max(last.base_offset);
        let first_base = segments.first().map_or(0, |s| s.base_offset);
        let log_start_offset = stored_start
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end_offset);

        // What was scanned may only be in the page cache (a process crash keeps it there):
        // make it durable before declaring it recovered.
        if let Some(i) = first_unflushed {
            for segment in &segments[i..] {
                segment
                    .file
                    .sync_data()
                    .map_err(|e| Error::io("fsync recovered segment", &segment.log_path, e))?;
            }
            storage
                .sync_dir(&dir)
                .map_err(|e| Error::io("fsync directory", &dir, e))?;
        }

        let partition = Partition::from_recovered(Recovered {
            topic: topic.to_string(),
            id,
            dir,
            storage,
            config,
            notifier,
            segments,
            log_start_offset,
            log_end_offset,
            recovery_point,
        });
        let (producers, txn) = partition.rebuild_producer_state()?;
        partition.restore_producers(producers, txn);
        partition.write_checkpoint()?;
        Ok(partition)
    }

    /// Loads the producer-state snapshot (sequences and transactions) and replays batch
    /// headers after it.
    fn rebuild_producer_state(&self) -> Result<(ProducerStateTable, TxnState)> {
        let path = self.dir().join(PRODUCER_SNAPSHOT_FILE);
        let end = self.log_end_offset();
        let snapshot = std::fs::read(&path)
            .ok()
            .and_then(|raw| serde_json::from_slice::<ProducerSnapshot>(&raw).ok())
            .filter(|s| s.offset <= end);
        let (mut table, mut txn, from) = match snapshot {
            Some(s) => (s.table, s.txn, s.offset),
            None => (
                ProducerStateTable::default(),
                TxnState::default(),
                self.log_start_offset(),
            ),
        };
        self.replay(from, &mut table, &mut txn)?;
        Ok((table, txn))
    }

    /// Rebuilds the transaction state from the whole log (after a truncation).
    pub(super) fn rebuild_txn_state(&self) -> Result<TxnState> {
        let mut txn = TxnState::default();
        self.replay(
            self.log_start_offset(),
            &mut ProducerStateTable::default(),
            &mut txn,
        )?;
        Ok(txn)
    }

    /// Applies the batches from `from` to the log end to `table` and `txn`.
    fn replay(&self, from: i64, table: &mut ProducerStateTable, txn: &mut TxnState) -> Result<()> {
        let end = self.log_end_offset();
        let mut offset = from;
        while offset < end {
            let read = self.read(offset, 1 << 20)?;
            if read.records.is_empty() {
                break;
            }
            for item in BatchIter::new(&read.records) {
                let (start, header) = item.map_err(|e| Error::Corrupt {
                    path: self.dir().to_path_buf(),
                    position: 0,
                    reason: format!("rebuilding producer state at offset {offset}: {e}"),
                })?;
                if header.base_offset() >= from {
                    if header.has_producer_id() && header.base_sequence() >= 0 {
                        table.record(
                            header.producer_id(),
                            header.producer_epoch(),
                            BatchSeq::of(&header),
                        );
                    }
                    let raw = read
                        .records
                        .get(start..start + header.batch_bytes())
                        .unwrap_or_default();
                    if header.attributes().control() {
                        table.bump_epoch(header.producer_id(), header.producer_epoch());
                    }
                    txn.on_batch(&header, raw);
                }
                offset = header.last_offset() + 1;
            }
        }
        Ok(())
    }
}

/// Base offsets of the segment files in `dir`, ascending.
fn list_segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".cleaned") || name.ends_with(".tmp") {
            // Leftovers of a compaction or checkpoint interrupted before its rename.
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        if let Some(stem) = name.strip_suffix(".log")
            && let Ok(base) = stem.parse::<i64>()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Opens and checks the segments at `bases` in order, applying the module's policy.
/// Returns the segments kept and the index of the first one that had to be scanned (and so
/// may hold data not yet fsynced), if any.
fn recover_segments(
    storage: &dyn Storage,
    dir: &Path,
    bases: &[i64],
    recovery_point: Option<i64>,
    interval: u64,
) -> Result<(Vec<Arc<Segment>>, Option<usize>)> {
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
    let mut first_unflushed: Option<usize> = None;
    for (i, &base) in bases.iter().enumerate() {
        let segment = Segment::open(storage, dir, base, true)
            .map_err(|e| Error::io("open segment", Segment::paths(dir, base).0, e))?;
        let next_base = bases.get(i + 1).copied();
        let trusted = matches!((recovery_point, next_base), (Some(rp), Some(next)) if next <= rp);
        let (end, scanned) = find_segment_end(
            storage,
            &segment,
            next_base,
            recovery_point,
            trusted,
            interval,
        )?;
        if scanned {
            first_unflushed.get_or_insert(i);
        }
        if let ScanEnd::Invalid {
            position,
            reason,
            min_following_offset,
        } = end
        {
            let later = &bases[i + 1..];
            let follows =
                committed_data_follows(&segment, dir, later, position, min_following_offset)?;
            if trusted || follows {
                return Err(Error::Corrupt {
                    path: segment.log_path.clone(),
                    position,
                    reason,
                });
            }
            let dropped = segment.file.len().unwrap_or(0).saturating_sub(position);
            tracing::warn!(
                file = %segment.log_path.display(),
                position,
                dropped_bytes = dropped,
                "truncating torn tail: {reason}"
            );
            segment
                .truncate_to_position(position, interval)
                .map_err(|e| Error::io("truncate torn tail of", &segment.log_path, e))?;
            segments.push(Arc::new(segment));
            // Later segments are empty (checked above): drop them.
            for &b in later {
                remove_segment_files(dir, b);
            }
            break;
        }
        if let Some(prev) = segments.last()
            && prev.next_offset() > base
        {
            return Err(Error::Corrupt {
                path: segment.log_path.clone(),
                position: 0,
                reason: format!(
                    "segment starts at offset {base} but the previous one runs to {}",
                    prev.next_offset() - 1
                ),
            });
        }
        segments.push(Arc::new(segment));
    }
    Ok((segments, first_unflushed))
}

/// Loads `segment` (trusted) or scans it, and says where its valid batches end and whether
/// it had to be scanned.
fn find_segment_end(
    storage: &dyn Storage,
    segment: &Segment,
    next_base: Option<i64>,
    recovery_point: Option<i64>,
    trusted: bool,
    interval: u64,
) -> Result<(ScanEnd, bool)> {
    let io = |e| Error::io("recover segment", &segment.log_path, e);
    if trusted {
        return Ok((segment.load_trusted(storage, interval).map_err(io)?, false));
    }
    // The last segment after a clean close or a flush: if a header walk ends cleanly at or
    // below the recovery point, all of it was fsynced (and validated when appended); only
    // otherwise pay for a full CRC scan.
    let flushed_tail = match recovery_point {
        Some(rp) if next_base.is_none() && rp > segment.base_offset => {
            matches!(
                segment.load_trusted(storage, interval).map_err(io)?,
                ScanEnd::Clean
            ) && segment.next_offset() <= rp
        }
        _ => false,
    };
    if flushed_tail {
        Ok((ScanEnd::Clean, false))
    } else {
        Ok((segment.scan(true, interval).map_err(io)?, true))
    }
}

/// Whether valid data follows an invalid batch at `position` in `segment`: a later segment
/// with bytes in it, or a valid batch later in this one. If so the invalid batch is interior
/// corruption, not a torn tail.
fn committed_data_follows(
    segment: &Segment,
    dir: &Path,
    later_bases: &[i64],
    position: u64,
    min_following_offset: i64,
) -> Result<bool> {
    let later_data = later_bases
        .iter()
        .any(|&b| std::fs::metadata(Segment::paths(dir, b).0).is_ok_and(|m| m.len() > 0));
    if later_data {
        return Ok(true);
    }
    Ok(segment
        .valid_batch_after(position, min_following_offset)
        .map_err(|e| Error::io("recover segment", &segment.log_path, e))?
        .is_some())
}
