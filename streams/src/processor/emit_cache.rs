//! The record cache on an aggregation's output, as Kafka Streams has it (KIP-63): instead
//! of sending every update of an aggregate downstream at once, an aggregation holds the
//! keys it changed and, at the next commit (or when the job's cache budget runs out),
//! sends each key once, as the change from the value it had when first held to the value
//! it has now. A key updated a thousand times between two commits costs one output record,
//! not a thousand.
//!
//! Invariants:
//! - a held key's current value is always in the aggregation's store: the cache keeps
//!   only what is needed to emit it (the typed key, the old value, the latest record's
//!   timestamp and headers);
//! - keys are emitted in the order they were first held;
//! - held entries count against the job's cache budget (`StreamsConfig::cache_max_bytes`)
//!   with the store write caches; a budget of 0 turns the cache off, so every update goes
//!   downstream at once;
//! - what the cache holds is released from the budget when it is emitted or dropped.

use std::sync::Arc;

use indexmap::IndexMap;

use super::aggregate::KvAccess;
use super::table::Change;
use super::{Ctx, Data, Node, Signal};
use crate::error::Result;
use crate::record::{Header, Record};
use crate::state::CacheBudget;

/// What an aggregation holds for one key until it is emitted.
pub(crate) struct Held<K, A> {
    /// The key as it goes downstream.
    pub key: K,
    /// The aggregate before the first update held (`None`: there was none).
    pub old: Option<A>,
    /// The latest update's timestamp and headers, which the emitted record carries.
    pub timestamp: i64,
    pub headers: Vec<Header>,
}

/// Held updates of one aggregation node, keyed by store key.
pub(crate) struct EmitCache<K, A> {
    held: IndexMap<Vec<u8>, Held<K, A>, foldhash::fast::RandomState>,
    held_bytes: usize,
    /// The job's cache budget, taken from the first store the node writes.
    budget: Option<Arc<CacheBudget>>,
}

impl<K, A> Default for EmitCache<K, A> {
    fn default() -> Self {
        EmitCache {
            held: IndexMap::default(),
            held_bytes: 0,
            budget: None,
        }
    }
}

/// What one held entry is charged: its store key twice (the map's copy and, roughly, the
/// typed key), plus the entry itself.
fn entry_bytes<K, A>(store_key: &[u8]) -> usize {
    2 * store_key.len() + std::mem::size_of::<Held<K, A>>() + 32
}

impl<K, A> EmitCache<K, A> {
    /// Whether a budget lets anything be held (a budget of 0 turns the cache off).
    pub fn enabled(budget: &CacheBudget) -> bool {
        budget.max_bytes > 0
    }

    /// Holds an update of `store_key` instead of emitting it. `make` gives the key as it
    /// goes downstream and the aggregate's old value; it is called only when the key is
    /// not held yet (a key held already keeps the old value it was first held with).
    pub fn hold(
        &mut self,
        budget: &Arc<CacheBudget>,
        store_key: &[u8],
        make: impl FnOnce() -> (K, Option<A>),
        timestamp: i64,
        headers: &[Header],
    ) {
        if let Some(h) = self.held.get_mut(store_key) {
            h.timestamp = timestamp;
            if !(h.headers.is_empty() && headers.is_empty()) {
                h.headers = headers.to_vec();
            }
            return;
        }
        let bytes = entry_bytes::<K, A>(store_key);
        budget.charge(bytes);
        self.held_bytes += bytes;
        if self.budget.is_none() {
            self.budget = Some(budget.clone());
        }
        let (key, old) = make();
        self.held.insert(
            store_key.to_vec(),
            Held {
                key,
                old,
                timestamp,
                headers: headers.to_vec(),
            },
        );
    }

    /// Whether the job's caches hold more than the budget: time to emit.
    pub fn over_budget(&self) -> bool {
        self.budget.as_ref().is_some_and(|b| b.over())
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Takes everything held, in the order it was first held, releasing its budget.
    pub fn take(&mut self) -> impl Iterator<Item = (Vec<u8>, Held<K, A>)> + use<K, A> {
        self.release();
        std::mem::take(&mut self.held).into_iter()
    }

    fn release(&mut self) {
        if let Some(b) = &self.budget {
            b.release(self.held_bytes);
        }
        self.held_bytes = 0;
    }
}

impl<K, A> Drop for EmitCache<K, A> {
    fn drop(&mut self) {
        self.release();
    }
}

/// An aggregation's downstream: its children, behind its record cache.
pub(crate) struct CachedOutput<K, A> {
    pub cache: EmitCache<K, A>,
    pub next: Box<dyn Node<K, Change<A>>>,
}

impl<K: Data, A: Data> CachedOutput<K, A> {
    pub fn new(next: Box<dyn Node<K, Change<A>>>) -> Self {
        CachedOutput {
            cache: EmitCache::default(),
            next,
        }
    }

    /// Holds an aggregate's change (stored under `kb` in `kv`'s store), or sends it on now
    /// when the cache is off; emits everything held when the job's caches are over
    /// budget. `key` makes the downstream key, only when it is needed.
    pub fn send<SK: Data>(
        &mut self,
        kv: &KvAccess<SK, A>,
        ctx: &mut Ctx,
        kb: &[u8],
        key: impl FnOnce() -> K,
        change: Change<A>,
        (timestamp, headers): (i64, &[Header]),
    ) -> Result<()> {
        let budget = ctx.cache_budget(kv.store)?;
        if !EmitCache::<K, A>::enabled(budget) {
            let record = Record {
                key: key(),
                value: change,
                timestamp,
                headers: headers.to_vec(),
            };
            return self.next.process(ctx, record);
        }
        self.cache
            .hold(budget, kb, || (key(), change.old), timestamp, headers);
        if self.cache.over_budget() {
            self.emit_held(kv, ctx)?;
        }
        Ok(())
    }

    /// Sends every key held downstream: the change from the old value it was held with to
    /// the value `kv`'s store has now.
    pub fn emit_held<SK: Data>(&mut self, kv: &KvAccess<SK, A>, ctx: &mut Ctx) -> Result<()> {
        if self.cache.is_empty() {
            return Ok(());
        }
        for (kb, held) in self.cache.take() {
            let new = kv.get(ctx, &kb)?;
            let record = Record {
                key: held.key,
                value: Change { old: held.old, new },
                timestamp: held.timestamp,
                headers: held.headers,
            };
            self.next.process(ctx, record)?;
        }
        Ok(())
    }

    /// Emits what is held at a flush, then passes the signal on.
    pub fn signal<SK: Data>(
        &mut self,
        kv: &KvAccess<SK, A>,
        ctx: &mut Ctx,
        s: Signal,
    ) -> Result<()> {
        if s == Signal::Flush {
            self.emit_held(kv, ctx)?;
        }
        self.next.signal(ctx, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Guards the cache's contract: one entry per key in first-held order, keeping the
    // first old value and the latest timestamp, and every byte charged given back.
    #[test]
    fn holds_once_per_key_and_releases_its_budget() {
        let budget = CacheBudget::new(1 << 20);
        let mut cache: EmitCache<String, i64> = EmitCache::default();
        for (i, k) in ["b", "a", "b", "c", "a"].iter().enumerate() {
            let old = Some(i as i64);
            cache.hold(
                &budget,
                k.as_bytes(),
                || (k.to_string(), old),
                100 + i as i64,
                &[],
            );
        }
        assert!(!cache.over_budget());
        let held: Vec<(String, Option<i64>, i64)> = cache
            .take()
            .map(|(_, h)| (h.key, h.old, h.timestamp))
            .collect();
        assert_eq!(
            held,
            vec![
                ("b".to_string(), Some(0), 102),
                ("a".to_string(), Some(1), 104),
                ("c".to_string(), Some(3), 103),
            ]
        );
        assert!(cache.is_empty());
        assert!(!budget.over());
        // A held entry counts against the budget until the cache is dropped.
        let tiny = CacheBudget::new(1);
        let mut cache: EmitCache<String, i64> = EmitCache::default();
        cache.hold(&tiny, b"k", || ("k".to_string(), None), 0, &[]);
        assert!(cache.over_budget());
        drop(cache);
        assert!(!tiny.over());
    }

    #[test]
    fn a_zero_budget_holds_nothing() {
        assert!(!EmitCache::<String, i64>::enabled(&CacheBudget::new(0)));
        assert!(EmitCache::<String, i64>::enabled(&CacheBudget::new(1)));
    }
}
