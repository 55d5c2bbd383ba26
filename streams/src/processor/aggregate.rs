//! Aggregations into a key-value store: `count`, `reduce` and `aggregate` of grouped
//! streams, and of grouped tables (which subtract an old value before adding the new one).

use std::sync::Arc;

use super::emit_cache::CachedOutput;
use super::{Ctx, Data, Node, Signal};
use crate::error::{Result, StreamsError};
use crate::processor::table::Change;
use crate::record::Record;
use crate::serdes::{Serde, SerdeRef, append_bytes, to_bytes};
use crate::state::StoreHandle;
use crate::state::layout::start_window_key;

/// Folds a value into the key's current aggregate (`None`: the key has none yet).
pub(crate) type Fold<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

/// Reads and writes typed entries of a key-value store.
pub(crate) struct KvAccess<K, A> {
    pub store: StoreHandle,
    pub store_name: Arc<str>,
    pub key: SerdeRef<K>,
    pub value: SerdeRef<A>,
}

impl<K: Data, A: Data> KvAccess<K, A> {
    pub fn key_bytes(&self, k: &K) -> Result<Vec<u8>> {
        to_bytes(&self.key, k).map_err(|e| self.err("key", e.0))
    }

    pub fn get(&self, ctx: &mut Ctx, kb: &[u8]) -> Result<Option<A>> {
        let value = &self.value;
        let read = ctx.store_read(self.store, kb, |b| {
            b.map(|b| value.deserialize(Some(b))).transpose()
        })?;
        read.map_err(|e| {
            StreamsError::state(
                &self.store_name,
                ctx.task,
                format!("stored value unreadable: {e}"),
            )
        })
    }

    /// Replaces `buf` with the window-store key of `k` in the window at `start`
    /// (`layout.rs`); `layout::set_window_start` then moves it to another window.
    pub fn window_key_into(&self, start: i64, k: &K, buf: &mut Vec<u8>) -> Result<()> {
        start_window_key(buf, start);
        append_bytes(&self.key, k, buf).map_err(|e| self.err("key", e.0))
    }

    pub fn put(&self, ctx: &mut Ctx, kb: Vec<u8>, v: Option<&A>) -> Result<()> {
        let vb = self.value_bytes(v)?;
        ctx.store_put(self.store, kb, vb)
    }

    /// Folds into the aggregate of `kb` with one store lookup: `fold(old)` becomes the
    /// new value; returns (old, new). The same as [`get`](Self::get) then
    /// [`put`](Self::put) with the new value.
    pub fn update(
        &self,
        ctx: &mut Ctx,
        kb: &[u8],
        fold: impl FnOnce(Option<A>) -> A,
    ) -> Result<(Option<A>, A)> {
        let task = ctx.task;
        ctx.store_update(
            self.store,
            kb,
            |b| {
                let old = b
                    .map(|b| self.value.deserialize(Some(b)))
                    .transpose()
                    .map_err(|e| {
                        StreamsError::state(
                            &self.store_name,
                            task,
                            format!("stored value unreadable: {e}"),
                        )
                    })?;
                let new = fold(old.clone());
                Ok((old, new))
            },
            |(_, new), buf| append_bytes(&self.value, new, buf).map_err(|e| self.err("value", e.0)),
        )
    }

    fn value_bytes(&self, v: Option<&A>) -> Result<Option<Vec<u8>>> {
        v.map(|v| to_bytes(&self.value, v).map_err(|e| self.err("value", e.0)))
            .transpose()
    }

    fn err(&self, what: &'static str, reason: String) -> StreamsError {
        StreamsError::Serialization {
            what,
            target: format!("store {}", self.store_name),
            reason,
        }
    }
}

/// Stream aggregation: each record folds into its key's aggregate; the table of
/// aggregates changes and the change goes downstream, at once or through the record
/// cache (`emit_cache.rs`).
pub(crate) struct StreamAggregate<K, V, A> {
    pub kv: KvAccess<K, A>,
    pub fold: Fold<K, V, A>,
    pub out: CachedOutput<K, A>,
}

impl<K: Data, V: Data, A: Data> Node<K, V> for StreamAggregate<K, V, A> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        let kb = self.kv.key_bytes(&r.key)?;
        let fold = &self.fold;
        let (old, new) = self.kv.update(ctx, &kb, |old| fold(&r.key, r.value, old))?;
        let change = Change {
            old,
            new: Some(new),
        };
        let meta = (r.timestamp, &r.headers[..]);
        let key = r.key;
        self.out.send(&self.kv, ctx, &kb, || key, change, meta)
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.out.signal(&self.kv, ctx, s)
    }
}

/// Removes a value from an aggregate (a grouped table's subtractor).
pub(crate) type Unfold<K, V, A> = Arc<dyn Fn(&K, V, A) -> A + Send + Sync>;

/// Table aggregation: a change subtracts its old value and adds its new one.
pub(crate) struct TableAggregate<K, V, A> {
    pub kv: KvAccess<K, A>,
    pub add: Fold<K, V, A>,
    pub subtract: Unfold<K, V, A>,
    pub out: CachedOutput<K, A>,
}

impl<K: Data, V: Data, A: Data> Node<K, Change<V>> for TableAggregate<K, V, A> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, Change<V>>) -> Result<()> {
        let kb = self.kv.key_bytes(&r.key)?;
        let old = self.kv.get(ctx, &kb)?;
        let mut agg = old.clone();
        if let Some(v) = r.value.old
            && let Some(a) = agg.take()
        {
            agg = Some((self.subtract)(&r.key, v, a));
        }
        if let Some(v) = r.value.new {
            agg = Some((self.add)(&r.key, v, agg));
        }
        self.kv.put(ctx, kb.clone(), agg.as_ref())?;
        let change = Change { old, new: agg };
        let meta = (r.timestamp, &r.headers[..]);
        let key = r.key;
        self.out.send(&self.kv, ctx, &kb, || key, change, meta)
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.out.signal(&self.kv, ctx, s)
    }
}
