//! What a node sees of its task while it handles a record: where the record came from,
//! the task's stream time, its state stores and the output it has produced so far.

use crate::error::Result;
use crate::record::OutputRecord;
use crate::state::{CacheBudget, Store, StoreHandle};
use crate::topology::TaskId;

/// Counters a task keeps; the runtime sums them into the job's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Records read from input topics and handed to the topology.
    pub processed: u64,
    /// Records skipped because they could not be deserialized.
    pub skipped_deserialization: u64,
    /// Records sent to a dead-letter topic because they could not be deserialized.
    pub dead_lettered: u64,
    /// Records dropped because the window they belong to had closed.
    pub dropped_late: u64,
}

impl std::ops::AddAssign for TaskStats {
    fn add_assign(&mut self, o: TaskStats) {
        self.processed += o.processed;
        self.skipped_deserialization += o.skipped_deserialization;
        self.dead_lettered += o.dead_lettered;
        self.dropped_late += o.dropped_late;
    }
}

/// The task-side state every node can reach.
pub(crate) struct Ctx {
    pub task: TaskId,
    /// The largest event time this task has seen (or advanced to when idle), ms.
    pub stream_time: i64,
    pub stores: Vec<Store>,
    /// Records produced by this task that the runtime has not yet sent.
    pub out: Vec<OutputRecord>,
    pub stats: TaskStats,
}

impl Ctx {
    pub fn new(task: TaskId) -> Self {
        Ctx {
            task,
            stream_time: i64::MIN,
            stores: Vec::new(),
            out: Vec::new(),
            stats: TaskStats::default(),
        }
    }

    pub fn store_get(&mut self, h: StoreHandle, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.store(h)?.get(key)
    }

    /// Calls `f` on the current value of `key` (`None`: absent), without copying it when
    /// the store's cache holds it.
    pub fn store_read<R>(
        &mut self,
        h: StoreHandle,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        self.store(h)?.read(key, f)
    }

    /// Writes (`Some`) or deletes (`None`) a key, logging it to the store's changelog.
    pub fn store_put(
        &mut self,
        h: StoreHandle,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> Result<()> {
        let ts = self.stream_time.max(0);
        let store = self
            .stores
            .get_mut(h.0)
            .ok_or_else(|| crate::error::StreamsError::Topology(format!("no store #{}", h.0)))?;
        store.put(key, value, &mut self.out, ts)
    }

    /// Read-modify-write of one key (see `Store::update`), logged like a put.
    pub fn store_update<T>(
        &mut self,
        h: StoreHandle,
        key: &[u8],
        read: impl FnOnce(Option<&[u8]>) -> Result<T>,
        write: impl FnOnce(&T, &mut Vec<u8>) -> Result<()>,
    ) -> Result<T> {
        let ts = self.stream_time.max(0);
        let store = self
            .stores
            .get_mut(h.0)
            .ok_or_else(|| crate::error::StreamsError::Topology(format!("no store #{}", h.0)))?;
        store.update(key, &mut self.out, ts, read, write)
    }

    /// Calls `f` for each entry with `from <= key < to` in key order until it returns false.
    pub fn store_range(
        &mut self,
        h: StoreHandle,
        from: &[u8],
        to: Option<&[u8]>,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let ts = self.stream_time.max(0);
        let store = self
            .stores
            .get_mut(h.0)
            .ok_or_else(|| crate::error::StreamsError::Topology(format!("no store #{}", h.0)))?;
        store.range(from, to, &mut self.out, ts, f)
    }

    /// The job's cache budget (the one store `h` counts against).
    pub fn cache_budget(&mut self, h: StoreHandle) -> Result<&std::sync::Arc<CacheBudget>> {
        Ok(self.store(h)?.budget())
    }

    fn store(&mut self, h: StoreHandle) -> Result<&mut Store> {
        self.stores
            .get_mut(h.0)
            .ok_or_else(|| crate::error::StreamsError::Topology(format!("no store #{}", h.0)))
    }

    /// Flushes every store's cache into the store and its changelog (before a commit).
    pub fn flush_stores(&mut self) -> Result<()> {
        let ts = self.stream_time.max(0);
        for store in &mut self.stores {
            store.flush(&mut self.out, ts)?;
        }
        Ok(())
    }
}
