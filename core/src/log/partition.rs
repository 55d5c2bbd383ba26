//! One partition: an ordered list of segments, the single writer that appends to the last
//! one, and the reads, truncation and offset bookkeeping around them.
//!
//! Invariants:
//! - appends are serialised by `writer`; the segment list is replaced (copy-on-write) only
//!   under `list_lock`, so readers take a snapshot and never block writers;
//! - `log_end_offset` is published after an append is written and, under
//!   [`Durability::Sync`], fsynced; readers never see batches at or past it, so nothing
//!   unacknowledged is ever served;
//! - once poisoned (an fsync failed, or a failed write could not be undone) the partition
//!   refuses writes until it is reopened and recovered from what is really on disk.
//!
//! Opening (recovery) lives in `recovery.rs`, which builds the partition through
//! [`Partition::from_recovered`]; the checkpoint files written here are defined there.
//! The transaction views and markers are in `transactions.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::io::{Storage, write_atomic};
use super::notify::Notifier;
use super::recovery::{
    LOG_START_FILE, PRODUCER_SNAPSHOT_FILE, ProducerSnapshot, RECOVERY_POINT_FILE,
};
use super::segment::{AppendFailure, Segment};
use crate::config::{Durability, TimestampKind, TopicConfig};
use crate::error::{Error, Result};
use crate::record::{BatchError, BatchIter};
use crate::txn::{BatchSeq, ProducerStateTable, SequenceCheck, TxnState};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The log-append time stamped on the batch, if the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
    /// Whether this was a retry of a batch already in the log (nothing was written).
    pub duplicate: bool,
}

/// What a read returned.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole RecordBatch v2 batches, exactly as stored. Empty at the end of the log.
    pub records: Bytes,
    /// The offset the next appended record will get (the high watermark on one node).
    pub high_watermark: i64,
    /// The first offset still in the log.
    pub log_start_offset: i64,
}

/// Sizes and offsets of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: i32,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// The offset the next record will get.
    pub log_end_offset: i64,
    /// Bytes on disk across segments.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
}

struct Writer {
    producers: ProducerStateTable,
}

/// One partition of a topic.
pub struct Partition {
    topic: String,
    id: i32,
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    config: RwLock<Arc<TopicConfig>>,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    /// Serialises appends, rolls and truncation.
    writer: Mutex<Writer>,
    /// Open transactions and aborted ones. Changed under `writer` before the log end
    /// offset is published, so a reader never sees a transactional batch without its
    /// transaction being open (which would put the last stable offset past it).
    pub(super) txn: Mutex<TxnState>,
    /// Serialises replacing the segment list (roll, retention, compaction swap).
    list_lock: Mutex<()>,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    /// Everything below this offset is fsynced.
    flushed_offset: AtomicI64,
    /// The recovery point last written to disk.
    checkpointed_offset: AtomicI64,
    /// Serialises checkpoint writes: the background flush and a close or roll may race, and
    /// both write through the same temporary file.
    checkpoint_lock: Mutex<()>,
    poison: Mutex<Option<String>>,
    notifier: Arc<Notifier>,
    /// What the last compaction pass saw, so an unchanged log is not re-examined.
    pub(crate) compaction_mark: Mutex<Option<super::compaction::CompactionMark>>,
    last_flush_ms: AtomicI64,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .finish()
    }
}

/// What recovery found on disk, plus the partition's identity and wiring: everything
/// [`Partition::from_recovered`] needs. Built only by `recovery.rs`.
pub(super) struct Recovered {
    pub(super) topic: String,
    pub(super) id: i32,
    pub(super) dir: PathBuf,
    pub(super) storage: Arc<dyn Storage>,
    pub(super) config: Arc<TopicConfig>,
    pub(super) notifier: Arc<Notifier>,
    /// Checked segments, ascending and contiguous; never empty.
    pub(super) segments: Vec<Arc<Segment>>,
    pub(super) log_start_offset: i64,
    /// The offset the next record will get; everything below it is durable (recovery
    /// fsynced whatever it scanned), so it is also the flushed offset.
    pub(super) log_end_offset: i64,
    /// The recovery point read from disk, if any.
    pub(super) recovery_point: Option<i64>,
}

impl Partition {
    /// Assembles a partition over recovered segments. The producer table starts empty:
    /// recovery restores it with [`Partition::restore_producers`] before writing a
    /// checkpoint.
    pub(super) fn from_recovered(r: Recovered) -> Partition {
        Partition {
            topic: r.topic,
            id: r.id,
            dir: r.dir,
            storage: r.storage,
            config: RwLock::new(r.config),
            segments: RwLock::new(Arc::new(r.segments)),
            writer: Mutex::new(Writer {
                producers: ProducerStateTable::default(),
            }),
            txn: Mutex::new(TxnState::default()),
            list_lock: Mutex::new(()),
            log_start_offset: AtomicI64::new(r.log_start_offset),
            log_end_offset: AtomicI64::new(r.log_end_offset),
            flushed_offset: AtomicI64::new(r.log_end_offset),
            checkpointed_offset: AtomicI64::new(r.recovery_point.unwrap_or(-1)),
            checkpoint_lock: Mutex::new(()),
            poison: Mutex::new(None),
            notifier: r.notifier,
            compaction_mark: Mutex::new(None),
            last_flush_ms: AtomicI64::new(crate::now_ms()),
        }
    }

    /// Installs the producer table and transaction state rebuilt by recovery.
    pub(super) fn restore_producers(&self, producers: ProducerStateTable, txn: TxnState) {
        self.writer.lock().producers = producers;
        *self.txn.lock() = txn;
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// Partition number.
    pub fn id(&self) -> i32 {
        self.id
    }
    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    /// The offset the next record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }
    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub(crate) fn config(&self) -> Arc<TopicConfig> {
        self.config.read().clone()
    }
    pub(crate) fn set_config(&self, config: Arc<TopicConfig>) {
        *self.config.write() = config;
        // New compaction settings may make an unchanged log compactable.
        *self.compaction_mark.lock() = None;
    }
    pub(crate) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        self.segments.read().clone()
    }
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Sizes and offsets.
    pub fn info(&self) -> PartitionInfo {
        let segments = self.segments();
        PartitionInfo {
            partition: self.id,
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
            size_bytes: segments.iter().map(|s| s.size()).sum(),
            segments: segments.len(),
        }
    }

    fn check_poison(&self) -> Result<()> {
        match &*self.poison.lock() {
            Some(cause) => Err(Error::Poisoned {
                topic: self.topic.clone(),
                partition: self.id,
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison_with(&self, op: &'static str, path: &Path, error: std::io::Error) -> Error {
        let cause = format!("{op} {}: {error}", path.display());
        tracing::error!(topic = %self.topic, partition = self.id, "poisoning partition: {cause}");
        *self.poison.lock() = Some(cause.clone());
        Error::Poisoned {
            topic: self.topic.clone(),
            partition: self.id,
            cause,
        }
    }

    /// Whether an fsync failure has poisoned the partition.
    pub fn is_poisoned(&self) -> bool {
        self.poison.lock().is_some()
    }

    fn invalid(&self, source: BatchError) -> Error {
        Error::InvalidBatch {
            topic: self.topic.clone(),
            partition: self.id,
            source,
        }
    }

    /// Appends one or more whole batches (RecordBatch v2, as a producer sends them).
    ///
    /// Every batch is validated (length, magic, CRC32C, header fields, size limit,
    /// producer sequence) before anything is written; then base offsets are written into
    /// the buffer in place and the bytes are stored as they are. On any error nothing of
    /// the append is visible.
    pub fn append(&self, bytes: &mut [u8]) -> Result<AppendInfo> {
        self.append_batches(bytes, None, true)
    }

    /// [`append`](Self::append) of batches this process's producer has just encoded: every
    /// check but the CRC's, which the producer computed over these very bytes.
    pub(crate) fn append_built(&self, bytes: &mut [u8]) -> Result<AppendInfo> {
        self.append_batches(bytes, None, false)
    }

    /// [`append`](Self::append), or with `marker` = `(producer id, epoch, commit)` the
    /// append of one control batch built by [`append_marker`](Self::append_marker).
    /// `check_crc` is false for batches this process encoded itself.
    pub(super) fn append_batches(
        &self,
        bytes: &mut [u8],
        marker: Option<(i64, i16, bool)>,
        check_crc: bool,
    ) -> Result<AppendInfo> {
        self.check_poison()?;
        let config = self.config();
        // Validate outside the lock: CRCs are the expensive part.
        let walk = if check_crc {
            BatchIter::new
        } else {
            BatchIter::built
        };
        let mut batches: Vec<(usize, i32, i64)> = Vec::new();
        let mut idempotent = None;
        let mut transactional = None;
        for item in walk(bytes) {
            let (start, header) = item.map_err(|e| self.invalid(e))?;
            if header.attributes().control() && marker.is_none() {
                return Err(self.invalid(BatchError::ControlBatch));
            }
            if header.attributes().transactional() && !header.attributes().control() {
                transactional = Some(header.producer_id());
            }
            if header.batch_bytes() as u64 > config.max_message_bytes {
                return Err(self.invalid(BatchError::TooLarge {
                    size: header.batch_bytes(),
                    max: config.max_message_bytes as usize,
                }));
            }
            if header.has_producer_id() {
                idempotent = Some((
                    header.producer_id(),
                    header.producer_epoch(),
                    header.base_sequence(),
                    header.last_sequence(),
                ));
            }
            batches.push((start, header.last_offset_delta(), header.max_timestamp()));
        }
        if batches.is_empty() {
            return Err(self.invalid(BatchError::Empty));
        }
        if idempotent.is_some() && batches.len() > 1 {
            return Err(self.invalid(BatchError::MultipleIdempotentBatches));
        }

        let mut writer = self.writer.lock();
        self.check_poison()?;
        if let Some((producer_id, epoch, first_seq, last_seq)) = idempotent
            && first_seq >= 0
        {
            match writer
                .producers
                .check(producer_id, epoch, first_seq, last_seq)
            {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(b) => {
                    return Ok(AppendInfo {
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                        log_append_time: None,
                        duplicate: true,
                    });
                }
                SequenceCheck::Fenced { current_epoch } => {
                    return Err(Error::ProducerFenced {
                        topic: self.topic.clone(),
                        partition: self.id,
                        producer_id,
                        epoch,
                        current_epoch,
                    });
                }
                SequenceCheck::OutOfOrder { expected } => {
                    return Err(Error::OutOfOrderSequence {
                        topic: self.topic.clone(),
                        partition: self.id,
                        producer_id,
                        expected,
                        received: first_seq,
                    });
                }
            }
        }

        let base_offset = self.log_end_offset();
        let log_append_time =
            (config.timestamp_kind == TimestampKind::LogAppendTime).then(crate::now_ms);
        let mut next = base_offset;
        let mut placed: Vec<(usize, i64, i64)> = Vec::with_capacity(batches.len());
        for (i, &(start, delta, max_ts)) in batches.iter().enumerate() {
            let end = batches.get(i + 1).map_or(bytes.len(), |b| b.0);
            let batch = &mut bytes[start..end];
            crate::record::set_base_offset(batch, next);
            let max_ts = match log_append_time {
                Some(now) => {
                    crate::record::set_log_append_time(batch, now);
                    now
                }
                None => max_ts,
            };
            placed.push((start, next, max_ts));
            next += i64::from(delta) + 1;
        }

        let active = self.active_for_append(bytes.len() as u64, base_offset, next, &config)?;
        match active.append(bytes, &placed, next, config.index_interval_bytes) {
            Ok(()) => {}
            Err(AppendFailure::RolledBack(e)) => {
                return Err(Error::io("append to", &active.log_path, e));
            }
            Err(AppendFailure::Unrecoverable { error, undo }) => {
                let cause = std::io::Error::new(
                    error.kind(),
                    format!("{error}; undoing the partial write also failed: {undo}"),
                );
                return Err(self.poison_with("append to", &active.log_path, cause));
            }
        }
        if config.durability == Durability::Sync {
            if let Err(e) = active.file.sync_data() {
                return Err(self.poison_with("fsync", &active.log_path, e));
            }
            self.flushed_offset.store(next, Ordering::Release);
        }
        {
            // Before the end offset moves: see the `txn` field.
            let mut txn = self.txn.lock();
            if let Some(producer_id) = transactional {
                txn.begin(producer_id, base_offset);
            }
            if let Some((producer_id, epoch, commit)) = marker {
                txn.on_marker(producer_id, base_offset, commit);
                writer.producers.bump_epoch(producer_id, epoch);
            }
        }
        if let Some((producer_id, epoch, first_seq, last_seq)) = idempotent
            && first_seq >= 0
        {
            writer.producers.record(
                producer_id,
                epoch,
                BatchSeq {
                    first_seq,
                    last_seq,
                    base_offset,
                    last_offset: next - 1,
                },
            );
        }
        self.log_end_offset.store(next, Ordering::Release);
        drop(writer);
        self.notifier.notify();
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time,
            duplicate: false,
        })
    }

    /// Returns the segment to append `incoming` bytes to, rolling first when the active
    /// segment is full, too old, or the offsets would overflow its 32-bit relative index.
    fn active_for_append(
        &self,
        incoming: u64,
        base: i64,
        next: i64,
        config: &TopicConfig,
    ) -> Result<Arc<Segment>> {
        let segments = self.segments();
        let active = segments
            .last()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("no segment".into()))?;
        let full = active.size() + incoming > config.segment_bytes;
        let old = crate::now_ms() - active.created_ms() >= config.segment_ms as i64;
        let overflow = next - active.base_offset > i64::from(u32::MAX);
        if active.is_empty() || !(full || old || overflow) {
            return Ok(active);
        }
        self.roll(&active, base)
    }

    /// Closes `active` (fsync, persist indexes) and starts a new segment at `base`.
    fn roll(&self, active: &Arc<Segment>, base: i64) -> Result<Arc<Segment>> {
        if let Err(e) = active.file.sync_data() {
            return Err(self.poison_with("fsync", &active.log_path, e));
        }
        self.flushed_offset
            .fetch_max(active.next_offset(), Ordering::AcqRel);
        if let Err(e) = active.persist_indexes(&*self.storage) {
            tracing::warn!(file = %active.index_path.display(), "could not write index files (they will be rebuilt on open): {e}");
        }
        let segment = Segment::open(&*self.storage, &self.dir, base, true)
            .map_err(|e| Error::io("create segment", Segment::paths(&self.dir, base).0, e))?;
        if let Err(e) = self.storage.sync_dir(&self.dir) {
            // The file may exist on disk or not; appends to it can't be acknowledged as
            // durable. Remove it and refuse.
            let _ = std::fs::remove_file(&segment.log_path);
            return Err(self.poison_with("fsync directory", &self.dir, e));
        }
        let segment = Arc::new(segment);
        {
            let _list = self.list_lock.lock();
            let mut list: Vec<Arc<Segment>> = self.segments().iter().cloned().collect();
            list.push(segment.clone());
            *self.segments.write() = Arc::new(list);
        }
        if let Err(e) = self.write_checkpoint() {
            tracing::warn!(topic = %self.topic, partition = self.id, "could not write recovery point: {e}");
        }
        Ok(segment)
    }

    /// Reads whole batches from `offset` (the batch holding it, if it falls inside one) up
    /// to about `max_bytes` (always at least one batch). At the end of the log the result is
    /// empty; outside the log it is [`Error::OffsetOutOfRange`].
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let start = self.log_start_offset();
        let end = self.log_end_offset();
        let out_of_range = || Error::OffsetOutOfRange {
            topic: self.topic.clone(),
            partition: self.id,
            offset,
            log_start_offset: start,
            log_end_offset: end,
        };
        if offset > end || offset < start {
            return Err(out_of_range());
        }
        let mut result = ReadResult {
            records: Bytes::new(),
            high_watermark: end,
            log_start_offset: start,
        };
        if offset == end {
            return Ok(result);
        }
        let segments = self.segments();
        let first = segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for segment in segments.iter().skip(first) {
            if segment.base_offset >= end {
                break;
            }
            let read = segment
                .read(offset, max_bytes, end)
                .map_err(|e| Error::io("read", &segment.log_path, e))?;
            if let Some(bytes) = read {
                result.records = bytes;
                return Ok(result);
            }
        }
        Ok(result)
    }

    /// The offset of the first record with a timestamp at or after `timestamp`, or `None`
    /// if every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        Ok(self
            .record_at_or_after(timestamp)?
            .map(|(offset, _)| offset))
    }

    /// The first record with a timestamp at or after `timestamp`, as (offset, its
    /// timestamp); `None` if every record is older. Kafka's ListOffsets by time.
    pub fn record_at_or_after(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let start = self.log_start_offset();
        let end = self.log_end_offset();
        for segment in self.segments().iter() {
            if segment.max_timestamp().is_none_or(|m| m < timestamp) {
                continue;
            }
            if let Some((offset, ts)) = segment
                .offset_for_timestamp(timestamp)
                .map_err(|e| Error::io("search time index of", &segment.log_path, e))?
            {
                if offset >= end {
                    return Ok(None);
                }
                return Ok(Some((offset.max(start), ts)));
            }
        }
        Ok(None)
    }

    /// Fsyncs everything appended so far and records the recovery point.
    pub fn flush(&self) -> Result<()> {
        self.sync()?;
        self.last_flush_ms.store(crate::now_ms(), Ordering::Release);
        self.write_checkpoint()
    }

    /// Fsyncs everything appended so far, without writing the recovery point (the next
    /// periodic [`flush`](Self::flush) does): for appends that must be on disk before the
    /// caller goes on, such as transaction markers, where the two extra atomic file writes
    /// of a checkpoint would double the cost of every transaction.
    pub(crate) fn sync(&self) -> Result<()> {
        let end = self.log_end_offset();
        if self.flushed_offset.load(Ordering::Acquire) < end {
            let segments = self.segments();
            // Segments before the last were fsynced when rolled.
            if let Some(active) = segments.last()
                && let Err(e) = active.file.sync_data()
            {
                return Err(self.poison_with("fsync", &active.log_path, e));
            }
            self.flushed_offset.fetch_max(end, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Flushes if the topic's durability is an interval and it has elapsed.
    pub(crate) fn flush_if_due(&self, now_ms: i64) -> Result<()> {
        let config = self.config();
        let due = match config.durability {
            Durability::Interval(ms) => {
                now_ms - self.last_flush_ms.load(Ordering::Acquire) >= ms as i64
            }
            // Sync is flushed on every append; keep its recovery point moving.
            Durability::Sync => now_ms - self.last_flush_ms.load(Ordering::Acquire) >= 1000,
            Durability::None => false,
        };
        if due && !self.is_poisoned() {
            self.flush()?;
        }
        Ok(())
    }

    /// Persists the recovery point (and the producer snapshot it goes with) if it moved.
    pub(super) fn write_checkpoint(&self) -> Result<()> {
        let _checkpoint = self.checkpoint_lock.lock();
        let flushed = self.flushed_offset.load(Ordering::Acquire);
        if self.checkpointed_offset.load(Ordering::Acquire) == flushed {
            return Ok(());
        }
        let snapshot = {
            let writer = self.writer.try_lock();
            writer.map(|w| {
                let mut txn = self.txn.lock();
                txn.drop_before(self.log_start_offset());
                ProducerSnapshot {
                    offset: self.log_end_offset(),
                    table: w.producers.clone(),
                    txn: txn.clone(),
                }
            })
        };
        if let Some(snapshot) = snapshot
            && let Ok(raw) = serde_json::to_vec(&snapshot)
        {
            let path = self.dir.join(PRODUCER_SNAPSHOT_FILE);
            write_atomic(&*self.storage, &path, &raw).map_err(|e| Error::io("write", &path, e))?;
        }
        let path = self.dir.join(RECOVERY_POINT_FILE);
        write_atomic(&*self.storage, &path, flushed.to_string().as_bytes())
            .map_err(|e| Error::io("write", &path, e))?;
        self.checkpointed_offset.store(flushed, Ordering::Release);
        Ok(())
    }

    /// Flushes, persists indexes and checkpoints: a clean close.
    pub(crate) fn close(&self) -> Result<()> {
        let _writer = self.writer.lock();
        if self.is_poisoned() {
            return Ok(());
        }
        if let Some(active) = self.segments().last() {
            active
                .file
                .sync_data()
                .map_err(|e| self.poison_with("fsync", &active.log_path, e))?;
            self.flushed_offset
                .fetch_max(self.log_end_offset(), Ordering::AcqRel);
            if let Err(e) = active.persist_indexes(&*self.storage) {
                tracing::warn!(file = %active.index_path.display(), "could not write index files: {e}");
            }
        }
        drop(_writer);
        self.write_checkpoint()
    }

    /// Removes every record at or after `offset` (cut at the start of the batch holding
    /// it), as a follower does after a leader change. Acknowledged data is removed too: this
    /// is an administrative operation.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        let mut writer = self.writer.lock();
        self.check_poison()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let offset = offset.max(self.log_start_offset());
        let _list = self.list_lock.lock();
        let segments = self.segments();
        let keep_upto = segments.partition_point(|s| s.base_offset <= offset).max(1);
        let (kept, removed) = segments.split_at(keep_upto);
        let last = kept
            .last()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("no segment".into()))?;
        let position = last
            .find_batch(offset, i64::MAX)
            .map_err(|e| Error::io("truncate", &last.log_path, e))?
            .map(|(pos, _)| pos)
            .unwrap_or_else(|| last.size());
        let interval = self.config().index_interval_bytes;
        last.truncate_to_position(position, interval)
            .map_err(|e| self.poison_with("truncate", &last.log_path, e))?;
        // Its index files describe the longer segment; they are rewritten at roll or close.
        let _ = std::fs::remove_file(&last.index_path);
        let _ = std::fs::remove_file(&last.time_index_path);
        last.file
            .sync_data()
            .map_err(|e| self.poison_with("fsync", &last.log_path, e))?;
        *self.segments.write() = Arc::new(kept.to_vec());
        for s in removed {
            remove_segment_files(&self.dir, s.base_offset);
        }
        let _ = self.storage.sync_dir(&self.dir);
        let new_end = last.next_offset().max(last.base_offset);
        self.log_end_offset.store(new_end, Ordering::Release);
        self.flushed_offset.store(new_end, Ordering::Release);
        self.checkpointed_offset.store(-1, Ordering::Release);
        writer.producers.truncate(new_end);
        drop(_list);
        // Markers past the cut may have closed transactions: rebuild from the log.
        let txn = self.rebuild_txn_state()?;
        *self.txn.lock() = txn;
        drop(writer);
        let _ = std::fs::remove_file(self.dir.join(PRODUCER_SNAPSHOT_FILE));
        self.write_checkpoint()
    }

    /// Advances the log start offset to `offset` (Kafka's DeleteRecords): records below it
    /// are no longer readable and their segments are deleted by the cleaner.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let end = self.log_end_offset();
        if offset > end || offset < 0 {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.id,
                offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: end,
            });
        }
        let new_start = self
            .log_start_offset
            .fetch_max(offset, Ordering::AcqRel)
            .max(offset);
        self.persist_log_start()?;
        Ok(new_start)
    }

    pub(crate) fn persist_log_start(&self) -> Result<()> {
        let path = self.dir.join(LOG_START_FILE);
        write_atomic(
            &*self.storage,
            &path,
            self.log_start_offset().to_string().as_bytes(),
        )
        .map_err(|e| Error::io("write", &path, e))
    }

    /// Replaces the segment list with `build(current)` under the list lock.
    pub(crate) fn replace_segments(
        &self,
        build: impl FnOnce(&[Arc<Segment>]) -> Vec<Arc<Segment>>,
    ) {
        let _list = self.list_lock.lock();
        let current = self.segments();
        *self.segments.write() = Arc::new(build(&current));
    }

    /// Rolls the active segment if it holds data, so that retention can delete it.
    pub(crate) fn roll_if_nonempty(&self) -> Result<()> {
        let _writer = self.writer.lock();
        self.check_poison()?;
        let segments = self.segments();
        if let Some(active) = segments.last()
            && !active.is_empty()
        {
            self.roll(active, self.log_end_offset())?;
        }
        Ok(())
    }

    pub(crate) fn set_log_start_offset_at_least(&self, offset: i64) {
        self.log_start_offset.fetch_max(offset, Ordering::AcqRel);
    }
}

/// Deletes a segment's files (log and indexes); missing files are fine.
pub(crate) fn remove_segment_files(dir: &Path, base_offset: i64) {
    let (log, index, time) = Segment::paths(dir, base_offset);
    for path in [log, index, time] {
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), "could not delete segment file: {e}");
        }
    }
}
