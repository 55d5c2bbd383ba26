//! State stores: ordered byte maps a task's processors read and write, each logged to a
//! compacted changelog topic and fronted by a bounded write cache.
//!
//! Key-value, window and session stores are all one ordered byte map ([`KvBytes`]) with
//! different key layouts (`layout.rs`), so one implementation of caching, change logging,
//! restoring and checkpointing serves all three. Two engines hold the bytes: memory
//! (`BTreeMap`) and fjall (persistent, one keyspace per task and store).
//!
//! Invariants:
//! - every write that reaches the engine is also appended to `out` as a changelog record
//!   for the task's partition of the changelog topic, in the same order, so replaying the
//!   changelog rebuilds the engine exactly;
//! - the cache holds only dirty entries and is flushed before any range scan and before
//!   every commit, so the engine plus the cache is always the current state;
//! - the bytes all caches hold together stay under the configured budget (plus one entry).

pub(crate) mod layout;
mod memory;
mod persistent;

use std::collections::{HashMap, hash_map};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

pub(crate) use memory::MemoryKv;
pub(crate) use persistent::FjallEngine;

use crate::error::{Result, StreamsError};
use crate::record::OutputRecord;

/// A store's entries as (key, value) bytes.
pub(crate) type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// An ordered map of bytes: the engine under every store.
pub(crate) trait KvBytes: Send {
    fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, String>;
    /// Applies puts (`Some`) and deletes (`None`) in order.
    fn write(&mut self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> std::result::Result<(), String>;
    /// Calls `f` on entries with `from <= key < to` in order until it returns false.
    fn range(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> std::result::Result<(), String>;
    /// Makes what was written durable (fsync for persistent engines).
    fn persist(&mut self) -> std::result::Result<(), String>;
    /// Removes everything.
    fn clear(&mut self) -> std::result::Result<(), String>;
}

/// Which kind of store a processor asked for (for descriptions and typed reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Key -> value.
    KeyValue,
    /// (window start, key) -> aggregate.
    Window,
    /// (key, session end, session start) -> aggregate.
    Session,
    /// (key, timestamp, sequence) -> value: the records a sliding window aggregates.
    SlidingBuffer,
}

/// Where a store keeps its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreEngine {
    /// On disk in the state directory (fjall); survives restarts without a full restore.
    #[default]
    Persistent,
    /// In memory; rebuilt from its changelog on every start.
    InMemory,
}

/// A store's index in its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreHandle(pub usize);

/// The memory all write caches of one job may hold together.
#[derive(Debug)]
pub(crate) struct CacheBudget {
    pub max_bytes: usize,
    used_bytes: AtomicUsize,
}

impl CacheBudget {
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(CacheBudget {
            max_bytes,
            used_bytes: AtomicUsize::new(0),
        })
    }

    /// Whether the caches hold more than the budget together.
    pub(crate) fn over(&self) -> bool {
        self.used_bytes.load(Ordering::Relaxed) > self.max_bytes
    }

    /// Counts `bytes` more held (by a cache outside the stores: `processor::emit_cache`).
    pub(crate) fn charge(&self, bytes: usize) {
        self.used_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` charged before as no longer held.
    pub(crate) fn release(&self, bytes: usize) {
        self.used_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One store of one task.
pub(crate) struct Store {
    pub name: String,
    task: String,
    /// The changelog topic and this task's partition of it; `None` when logging is off.
    pub changelog: Option<(String, i32)>,
    engine: Box<dyn KvBytes>,
    /// Writes not yet in the engine: key -> new value (`None`: delete).
    /// (Hashed, not ordered: a lookup per update is the hot path; flush sorts.)
    dirty: HashMap<Vec<u8>, Option<Vec<u8>>, foldhash::fast::RandomState>,
    dirty_bytes: usize,
    budget: Arc<CacheBudget>,
    /// Where `update` serializes a new value before swapping it with the cached one.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn entry_bytes(k: &[u8], v: &Option<Vec<u8>>) -> usize {
    k.len() + v.as_ref().map_or(0, Vec::len) + 48
}

impl Store {
    pub fn new(
        name: String,
        task: String,
        changelog: Option<(String, i32)>,
        engine: Box<dyn KvBytes>,
        budget: Arc<CacheBudget>,
    ) -> Self {
        Store {
            name,
            task,
            changelog,
            engine,
            dirty: HashMap::default(),
            dirty_bytes: 0,
            budget,
            scratch: Vec::new(),
        }
    }

    fn err(&self, reason: impl ToString) -> StreamsError {
        StreamsError::state(&self.name, &self.task, reason)
    }

    /// The job's cache budget this store's write cache counts against.
    pub fn budget(&self) -> &Arc<CacheBudget> {
        &self.budget
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.dirty.get(key) {
            return Ok(v.clone());
        }
        self.engine.get(key).map_err(|e| self.err(e))
    }

    /// Calls `f` on the current value of `key` without copying it when the cache holds it
    /// (the common case for a key updated again and again).
    pub fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        if let Some(v) = self.dirty.get(key) {
            return Ok(f(v.as_deref()));
        }
        let v = self.engine.get(key).map_err(|e| self.err(e))?;
        Ok(f(v.as_deref()))
    }

    pub fn put(
        &mut self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        out: &mut Vec<OutputRecord>,
        ts: i64,
    ) -> Result<()> {
        let added = entry_bytes(&key, &value);
        let freed = match self.dirty.entry(key) {
            hash_map::Entry::Occupied(mut e) => {
                let old = e.insert(value);
                entry_bytes(e.key(), &old)
            }
            hash_map::Entry::Vacant(e) => {
                e.insert(value);
                0
            }
        };
        self.account(added, freed, out, ts)
    }

    /// Read-modify-write of one key with one cache lookup when the cache holds it:
    /// `read` sees the current value (`None`: absent) and returns what `write` then
    /// serializes as the new value into an empty buffer. A cached value's allocation is
    /// reused (swapped with a scratch buffer the store keeps), so updating a cached key
    /// allocates nothing. If `read` or `write` fails, nothing changes.
    pub fn update<T>(
        &mut self,
        key: &[u8],
        out: &mut Vec<OutputRecord>,
        ts: i64,
        read: impl FnOnce(Option<&[u8]>) -> Result<T>,
        write: impl FnOnce(&T, &mut Vec<u8>) -> Result<()>,
    ) -> Result<T> {
        let Some(slot) = self.dirty.get_mut(key) else {
            let current = self.engine.get(key).map_err(|e| self.err(e))?;
            let t = read(current.as_deref())?;
            let mut value = current.unwrap_or_default();
            value.clear();
            write(&t, &mut value)?;
            self.put(key.to_vec(), Some(value), out, ts)?;
            return Ok(t);
        };
        let freed = entry_bytes(key, slot);
        let t = read(slot.as_deref())?;
        self.scratch.clear();
        write(&t, &mut self.scratch)?;
        match slot {
            Some(value) => std::mem::swap(value, &mut self.scratch),
            None => *slot = Some(std::mem::take(&mut self.scratch)),
        }
        let added = entry_bytes(key, slot);
        self.account(added, freed, out, ts)?;
        Ok(t)
    }

    /// Counts a cache entry's change in size (`added` bytes now, `freed` before), flushing
    /// the cache if the budget is exceeded.
    fn account(
        &mut self,
        added: usize,
        freed: usize,
        out: &mut Vec<OutputRecord>,
        ts: i64,
    ) -> Result<()> {
        // One update of the shared counter per put, not two.
        if added >= freed {
            self.budget
                .used_bytes
                .fetch_add(added - freed, Ordering::Relaxed);
        } else {
            self.budget
                .used_bytes
                .fetch_sub(freed - added, Ordering::Relaxed);
        }
        self.dirty_bytes = self.dirty_bytes - freed + added;
        if self.budget.over() {
            self.flush(out, ts)?;
        }
        Ok(())
    }

    pub fn range(
        &mut self,
        from: &[u8],
        to: Option<&[u8]>,
        out: &mut Vec<OutputRecord>,
        ts: i64,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        self.flush(out, ts)?;
        self.engine.range(from, to, f).map_err(|e| self.err(e))
    }

    /// Moves the cache into the engine and the changelog.
    pub fn flush(&mut self, out: &mut Vec<OutputRecord>, ts: i64) -> Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        // Key order, so a flush writes the same changelog records in the same order on
        // every run.
        let mut dirty: Vec<(Vec<u8>, Option<Vec<u8>>)> = self.dirty.drain().collect();
        dirty.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.budget
            .used_bytes
            .fetch_sub(self.dirty_bytes, Ordering::Relaxed);
        self.dirty_bytes = 0;
        if let Some((topic, partition)) = &self.changelog {
            out.extend(dirty.iter().map(|(k, v)| OutputRecord {
                topic: topic.clone(),
                partition: Some(*partition),
                key: Some(Bytes::copy_from_slice(k)),
                value: v.as_deref().map(Bytes::copy_from_slice),
                timestamp: ts,
                headers: Vec::new(),
            }));
        }
        self.engine.write(dirty).map_err(|e| self.err(e))
    }

    /// Applies changelog entries read back during a restore (not logged again).
    pub fn restore_batch(&mut self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        self.engine.write(batch).map_err(|e| self.err(e))
    }

    pub fn persist(&mut self) -> Result<()> {
        self.engine.persist().map_err(|e| self.err(e))
    }

    pub fn clear(&mut self) -> Result<()> {
        self.budget
            .used_bytes
            .fetch_sub(self.dirty_bytes, Ordering::Relaxed);
        self.dirty.clear();
        self.dirty_bytes = 0;
        self.engine.clear().map_err(|e| self.err(e))
    }

    /// Every entry, flushed first (tests and the test driver read whole stores).
    pub fn entries(&mut self, out: &mut Vec<OutputRecord>, ts: i64) -> Result<Entries> {
        let mut all = Vec::new();
        self.range(&[], None, out, ts, &mut |k, v| {
            all.push((k.to_vec(), v.to_vec()));
            true
        })?;
        Ok(all)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.budget
            .used_bytes
            .fetch_sub(self.dirty_bytes, Ordering::Relaxed);
    }
}
