//! [`Log`]: an open data directory, the entry point of the embedded API.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::cleaner::Background;
use super::io::{OsStorage, Storage, write_atomic};
use super::notify::Notifier;
use super::partition::{AppendInfo, Partition, ReadResult};
use super::topic::{NewTopic, Topic, TopicDescription, TopicMeta, validate_topic_name};
use super::{CompactionOutcome, RetentionOutcome};
use crate::config::{LogConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::group::{GroupCoordinator, GroupOffsets};
use crate::txn::{ProducerIdAllocator, TRANSACTION_STATE_TOPIC, TxnCoordinator};

const LOCK_FILE: &str = ".lock";
const TOPICS_DIR: &str = "topics";
const STAGING_DIR: &str = "staging";
const DELETED_DIR: &str = "deleted";
const TOPIC_META_FILE: &str = "topic.json";
const PRODUCER_ID_FILE: &str = "producer-id-block";

/// How to open a [`Log`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    config: LogConfig,
    storage: Arc<dyn Storage>,
    background: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            config: LogConfig::default(),
            storage: Arc::new(OsStorage),
            background: true,
        }
    }
}

impl LogOptions {
    /// Defaults: [`LogConfig::default`], the real file system, background thread on.
    pub fn new() -> Self {
        Self::default()
    }
    /// Log settings (defaults for every topic).
    pub fn config(mut self, config: LogConfig) -> Self {
        self.config = config;
        self
    }
    /// The storage segment files go through (tests inject faults here).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }
    /// Whether to run the background thread (interval flushes, retention, compaction,
    /// transaction timeouts). Without it, call [`Log::flush`], [`Log::run_cleaner`] and
    /// [`Log::expire_transactions`] yourself.
    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }
    /// Opens (creating if needed) the log in `dir`.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Log> {
        Log::open_with(dir.as_ref(), self)
    }
}

/// An open data directory: topics, partitions, producer ids and consumer-group offsets.
///
/// Cheap to clone; all clones share one log. Only one process may have a data directory
/// open at a time (an exclusive lock on `DIR/.lock` enforces it). Dropping the last clone
/// closes the log cleanly; [`close`](Log::close) does it explicitly and reports errors.
#[derive(Clone)]
pub struct Log {
    pub(crate) inner: Arc<LogInner>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("dir", &self.inner.dir).finish()
    }
}

pub(crate) struct LogInner {
    dir: PathBuf,
    config: LogConfig,
    storage: Arc<dyn Storage>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises create / delete / alter of topics.
    admin: Mutex<()>,
    /// Serialises cleaner passes (the thread's and explicit ones).
    cleaning: Mutex<()>,
    notifier: Arc<Notifier>,
    producer_ids: Mutex<ProducerIdAllocator>,
    pub(crate) groups: GroupOffsets,
    pub(crate) coordinator: GroupCoordinator,
    /// The transaction coordinator: loaded at open if `__transaction_state` exists (so
    /// timeouts and orphaned transactions are handled without waiting for a producer),
    /// otherwise on first use (`Log::txn_coordinator`).
    pub(crate) txn: Mutex<Option<Arc<TxnCoordinator>>>,
    background: Mutex<Option<Background>>,
    closed: AtomicBool,
    /// The flock on `.lock`, held until the log is closed.
    lock: Mutex<Option<File>>,
}

impl Log {
    /// Opens (creating if needed) the log in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        LogOptions::default().open(dir)
    }

    /// Options for opening a log.
    pub fn options() -> LogOptions {
        LogOptions::default()
    }

    fn open_with(dir: &Path, options: LogOptions) -> Result<Log> {
        options.config.validate()?;
        std::fs::create_dir_all(dir.join(TOPICS_DIR))
            .map_err(|e| Error::io("create data directory", dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::io(
                    "lock data directory",
                    dir,
                    std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        "the log is already open, by another sluice process or elsewhere in this one; close that first",
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io("lock data directory", dir, e));
            }
        }
        for leftover in [STAGING_DIR, DELETED_DIR] {
            let path = dir.join(leftover);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io("clean up", &path, e))?;
            }
        }
        let notifier = Arc::new(Notifier::default());
        let mut topics = BTreeMap::new();
        let topics_dir = dir.join(TOPICS_DIR);
        let entries =
            std::fs::read_dir(&topics_dir).map_err(|e| Error::io("list", &topics_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &topics_dir, e))?;
            let meta_path = entry.path().join(TOPIC_META_FILE);
            let raw = match std::fs::read(&meta_path) {
                Ok(raw) => raw,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read", &meta_path, e)),
            };
            let meta: TopicMeta = serde_json::from_slice(&raw).map_err(|e| Error::Corrupt {
                path: meta_path.clone(),
                position: 0,
                reason: format!("unreadable topic metadata: {e}"),
            })?;
            let topic = open_topic(
                &entry.path(),
                meta,
                &options.config,
                &options.storage,
                &notifier,
            )?;
            topics.insert(topic.meta.name.clone(), Arc::new(topic));
        }
        let producer_ids =
            ProducerIdAllocator::open(dir.join(PRODUCER_ID_FILE), options.storage.clone())?;
        let inner = Arc::new_cyclic(|_| LogInner {
            dir: dir.to_path_buf(),
            config: options.config.clone(),
            storage: options.storage.clone(),
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            cleaning: Mutex::new(()),
            notifier,
            producer_ids: Mutex::new(producer_ids),
            groups: GroupOffsets::default(),
            coordinator: GroupCoordinator::default(),
            txn: Mutex::new(None),
            background: Mutex::new(None),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
        });
        let log = Log { inner };
        log.inner.groups.load(&log)?;
        if log
            .inner
            .topics
            .read()
            .contains_key(TRANSACTION_STATE_TOPIC)
        {
            log.txn_coordinator()?;
        }
        if options.background {
            let tick = Duration::from_millis(flush_tick_ms(&options.config));
            let background = Background::start(
                Arc::downgrade(&log.inner),
                Duration::from_millis(options.config.cleaner_interval_ms),
                tick,
            )
            .map_err(|e| Error::io("start background thread for", dir, e))?;
            *log.inner.background.lock() = Some(background);
        }
        tracing::debug!(dir = %dir.display(), topics = log.inner.topics.read().len(), "log opened");
        Ok(log)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The log settings it was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// Whether the background thread runs (see [`LogOptions::background`]).
    pub(crate) fn has_background(&self) -> bool {
        self.inner.background.lock().is_some()
    }

    /// Wakes long polls when any partition grows.
    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.inner.notifier
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })
    }

    /// Creates a topic. Fails if it exists, if the name breaks Kafka's rules, or if a
    /// config override is unknown or out of range.
    pub fn create_topic(&self, new: NewTopic) -> Result<()> {
        self.check_open()?;
        validate_topic_name(&new.name)?;
        if new.partitions < 1 {
            return Err(Error::InvalidArgument(format!(
                "topic '{}' needs at least 1 partition, got {}",
                new.name, new.partitions
            )));
        }
        let config = TopicConfig::resolve(&self.inner.config, &new.config)?;
        let _admin = self.inner.admin.lock();
        if self.inner.topics.read().contains_key(&new.name) {
            return Err(Error::TopicExists { topic: new.name });
        }
        let meta = TopicMeta {
            name: new.name.clone(),
            partitions: new.partitions,
            config: new.config,
        };
        // Build it in a staging directory, then rename into place: a crash never leaves a
        // half-created topic behind.
        let staging = self.inner.dir.join(STAGING_DIR).join(&new.name);
        std::fs::create_dir_all(&staging).map_err(|e| Error::io("create", &staging, e))?;
        let raw =
            serde_json::to_vec_pretty(&meta).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        write_atomic(&*self.inner.storage, &staging.join(TOPIC_META_FILE), &raw)
            .map_err(|e| Error::io("write", staging.join(TOPIC_META_FILE), e))?;
        let target = self.inner.dir.join(TOPICS_DIR).join(&new.name);
        std::fs::rename(&staging, &target)
            .map_err(|e| Error::io("create topic directory", &target, e))?;
        let topics_dir = self.inner.dir.join(TOPICS_DIR);
        self.inner
            .storage
            .sync_dir(&topics_dir)
            .map_err(|e| Error::io("fsync directory", &topics_dir, e))?;
        let _ = config;
        let topic = open_topic(
            &target,
            meta,
            &self.inner.config,
            &self.inner.storage,
            &self.inner.notifier,
        )?;
        self.inner
            .topics
            .write()
            .insert(new.name.clone(), Arc::new(topic));
        tracing::info!(topic = %new.name, partitions = new.partitions, "topic created");
        Ok(())
    }

    /// Creates the topic unless it exists; returns whether it was created.
    pub fn ensure_topic(&self, new: NewTopic) -> Result<bool> {
        match self.create_topic(new) {
            Ok(()) => Ok(true),
            Err(Error::TopicExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and all its data.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_open()?;
        let _admin = self.inner.admin.lock();
        let topic = self
            .inner
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })?;
        let source = self.inner.dir.join(TOPICS_DIR).join(name);
        let graveyard = self.inner.dir.join(DELETED_DIR);
        std::fs::create_dir_all(&graveyard).map_err(|e| Error::io("create", &graveyard, e))?;
        let target = graveyard.join(format!("{name}-{}", crate::now_ms()));
        std::fs::rename(&source, &target)
            .map_err(|e| Error::io("delete topic directory", &source, e))?;
        let topics_dir = self.inner.dir.join(TOPICS_DIR);
        self.inner
            .storage
            .sync_dir(&topics_dir)
            .map_err(|e| Error::io("fsync directory", &topics_dir, e))?;
        drop(topic);
        if let Err(e) = std::fs::remove_dir_all(&target) {
            tracing::warn!(dir = %target.display(), "deleted topic's files not removed yet (retried on next open): {e}");
        }
        self.inner.groups.forget_topic(self, name)?;
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Names of all topics, sorted; internal topics (`__...`) included.
    pub fn list_topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// Partitions, offsets, sizes and settings of a topic.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        Ok(self.topic(name)?.describe())
    }

    /// Number of partitions of a topic.
    pub fn partition_count(&self, name: &str) -> Result<i32> {
        Ok(self.topic(name)?.meta.partitions)
    }

    /// Replaces a topic's config overrides (validated first; nothing changes on error).
    pub fn alter_topic_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
    ) -> Result<()> {
        self.update_topic_config(name, move |_| Ok(overrides))
    }

    /// Replaces a topic's config overrides with `edit(current overrides)`.
    ///
    /// `edit` runs under the admin lock, so read-modify-write edits (Kafka's
    /// IncrementalAlterConfigs) never lose each other's changes. The result is validated
    /// before anything is written; on any error nothing changes.
    pub(crate) fn update_topic_config(
        &self,
        name: &str,
        edit: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>>,
    ) -> Result<()> {
        self.check_open()?;
        let _admin = self.inner.admin.lock();
        let topic = self.topic(name)?;
        let overrides = edit(&topic.meta.config)?;
        let config = Arc::new(TopicConfig::resolve(&self.inner.config, &overrides)?);
        let meta = TopicMeta {
            name: name.to_string(),
            partitions: topic.meta.partitions,
            config: overrides,
        };
        self.write_topic_meta(&meta)?;
        for p in &topic.partitions {
            p.set_config(config.clone());
        }
        let updated = Topic {
            meta,
            config,
            partitions: topic.partitions.clone(),
        };
        self.inner
            .topics
            .write()
            .insert(name.to_string(), Arc::new(updated));
        Ok(())
    }

    /// Grows a topic to `new_total` partitions; the new ones start empty and existing
    /// partitions keep their data.
    ///
    /// A topic never shrinks (keys would move to other partitions and data would be
    /// lost), so `new_total` must be larger than the current count. The new partitions are
    /// opened first and the atomic rewrite of `topic.json` is the commit point: a crash
    /// before it leaves only empty partition directories, which the next call reuses; a
    /// crash after it reopens with the new count.
    pub fn create_partitions(&self, topic: &str, new_total: i32) -> Result<()> {
        self.check_open()?;
        let _admin = self.inner.admin.lock();
        let current = self.topic(topic)?;
        let count = current.meta.partitions;
        if new_total <= count {
            return Err(Error::PartitionCountNotIncreased {
                topic: topic.to_string(),
                current: count,
                requested: new_total,
            });
        }
        let dir = self.inner.dir.join(TOPICS_DIR).join(topic);
        let mut partitions = current.partitions.clone();
        for id in count..new_total {
            partitions.push(Arc::new(Partition::open(
                topic,
                id,
                dir.join(id.to_string()),
                current.config.clone(),
                self.inner.storage.clone(),
                self.inner.notifier.clone(),
            )?));
        }
        let meta = TopicMeta {
            partitions: new_total,
            ..current.meta.clone()
        };
        self.write_topic_meta(&meta)?;
        let grown = Topic {
            meta,
            config: current.config.clone(),
            partitions,
        };
        self.inner
            .topics
            .write()
            .insert(topic.to_string(), Arc::new(grown));
        tracing::info!(topic, from = count, to = new_total, "partitions added");
        Ok(())
    }

    /// Rewrites an existing topic's `topic.json` atomically. Callers hold the admin lock.
    fn write_topic_meta(&self, meta: &TopicMeta) -> Result<()> {
        let path = self
            .inner
            .dir
            .join(TOPICS_DIR)
            .join(&meta.name)
            .join(TOPIC_META_FILE);
        let raw =
            serde_json::to_vec_pretty(meta).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        write_atomic(&*self.inner.storage, &path, &raw).map_err(|e| Error::io("write", &path, e))
    }

    /// One partition, for direct appends and reads.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>> {
        Ok(self.topic(topic)?.partition(partition)?.clone())
    }

    /// Appends whole RecordBatch v2 batches to a partition; see [`Partition::append`].
    pub fn append(&self, topic: &str, partition: i32, batches: &mut [u8]) -> Result<AppendInfo> {
        self.check_open()?;
        self.partition(topic, partition)?.append(batches)
    }

    /// [`append`](Self::append) of batches this process's producer has just encoded; see
    /// [`Partition::append_built`].
    pub(crate) fn append_built(
        &self,
        topic: &str,
        partition: i32,
        batches: &mut [u8],
    ) -> Result<AppendInfo> {
        self.check_open()?;
        self.partition(topic, partition)?.append_built(batches)
    }

    /// Reads whole batches from `offset`; see [`Partition::read`].
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        self.partition(topic, partition)?.read(offset, max_bytes)
    }

    /// A new producer id with epoch 0, for an idempotent producer.
    pub fn init_producer_id(&self) -> Result<(i64, i16)> {
        self.check_open()?;
        Ok((self.inner.producer_ids.lock().allocate()?, 0))
    }

    /// Fsyncs every partition and records recovery points.
    pub fn flush(&self) -> Result<()> {
        for topic in self.topics_snapshot() {
            for p in &topic.partitions {
                p.flush()?;
            }
        }
        Ok(())
    }

    /// Runs retention and compaction on every partition now (the background thread does
    /// this every `cleaner_interval_ms`).
    pub fn run_cleaner(&self) -> Result<(RetentionOutcome, CompactionOutcome)> {
        self.inner.clean(crate::now_ms())
    }

    /// Like [`run_cleaner`](Self::run_cleaner) as if the clock read `now_ms`: lets tests
    /// and tools age data without waiting.
    pub fn run_cleaner_at(&self, now_ms: i64) -> Result<(RetentionOutcome, CompactionOutcome)> {
        self.inner.clean(now_ms)
    }

    fn topics_snapshot(&self) -> Vec<Arc<Topic>> {
        self.inner.topics.read().values().cloned().collect()
    }

    /// Stops the background thread, flushes and checkpoints every partition. Later calls
    /// fail with [`Error::Closed`]. Dropping the last clone does the same, logging errors.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }
}

impl LogInner {
    pub(crate) fn flush_due(&self) {
        let now = crate::now_ms();
        for topic in self.topics.read().values().cloned().collect::<Vec<_>>() {
            for p in &topic.partitions {
                if let Err(e) = p.flush_if_due(now) {
                    tracing::error!(topic = p.topic(), partition = p.id(), "flush failed: {e}");
                }
            }
        }
    }

    /// Aborts transactions past their timeout (a background-thread tick).
    pub(crate) fn expire_transactions(&self) {
        let coordinator = self.txn.lock().clone();
        if let Some(c) = coordinator {
            c.expire(crate::now_ms());
        }
    }

    pub(crate) fn clean_all(&self) {
        if let Err(e) = self.clean(crate::now_ms()) {
            tracing::error!("cleaner pass failed: {e}");
        }
    }

    fn clean(&self, now_ms: i64) -> Result<(RetentionOutcome, CompactionOutcome)> {
        let _pass = self.cleaning.lock();
        let mut retention = RetentionOutcome::default();
        let mut compaction = CompactionOutcome::default();
        for topic in self.topics.read().values().cloned().collect::<Vec<_>>() {
            for p in &topic.partitions {
                let r = p.apply_retention(now_ms)?;
                retention.segments_deleted += r.segments_deleted;
                retention.bytes_deleted += r.bytes_deleted;
                let c = p.compact(now_ms)?;
                compaction.segments_cleaned += c.segments_cleaned;
                compaction.records_removed += c.records_removed;
                compaction.bytes_freed += c.bytes_freed;
            }
        }
        Ok((retention, compaction))
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(mut background) = self.background.lock().take() {
            background.stop();
        }
        let mut first_error = None;
        for topic in self.topics.read().values() {
            for p in &topic.partitions {
                if let Err(e) = p.close() {
                    tracing::error!(topic = p.topic(), partition = p.id(), "close failed: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        // Unlocking lets another process (or a later open in this one) take the directory.
        // Explicitly: a child process forked meanwhile (by any thread) holds a copy of the
        // descriptor until it execs, and closing ours alone would leave it locked till then.
        if let Some(lock) = self.lock.lock().take() {
            let _ = lock.unlock();
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for LogInner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn flush_tick_ms(config: &LogConfig) -> u64 {
    match config.durability() {
        Ok(crate::config::Durability::Interval(ms)) => ms.clamp(1, 1000),
        _ => 1000,
    }
    .min(config.cleaner_interval_ms)
}

fn open_topic(
    dir: &Path,
    meta: TopicMeta,
    defaults: &LogConfig,
    storage: &Arc<dyn Storage>,
    notifier: &Arc<Notifier>,
) -> Result<Topic> {
    let config = Arc::new(TopicConfig::resolve(defaults, &meta.config)?);
    let mut partitions = Vec::with_capacity(meta.partitions.max(0) as usize);
    for id in 0..meta.partitions {
        partitions.push(Arc::new(Partition::open(
            &meta.name,
            id,
            dir.join(id.to_string()),
            config.clone(),
            storage.clone(),
            notifier.clone(),
        )?));
    }
    Ok(Topic {
        meta,
        config,
        partitions,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    // Guards against a closed log's directory staying locked while another copy of the lock
    // file's descriptor lives on: a child forked by another thread holds one until it
    // execs (a flaky reopen in the fault tests).
    #[test]
    fn a_closed_log_can_be_reopened_while_a_copy_of_its_lock_lives() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::options().background(false).open(dir.path()).unwrap();
        let copy = log
            .inner
            .lock
            .lock()
            .as_ref()
            .map(|lock| lock.try_clone().unwrap())
            .unwrap();
        log.close().unwrap();
        drop(log);
        let again = Log::options().background(false).open(dir.path());
        assert!(again.is_ok(), "{:?}", again.err());
        drop(copy);
    }
}
