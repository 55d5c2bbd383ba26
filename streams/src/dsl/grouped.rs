//! Grouped streams and tables, and their aggregations: `count`, `reduce`, `aggregate`
//! (windowed aggregations are in `windowed.rs`).

use std::sync::Arc;

use super::{KStream, KTable, Materialized, WindowedBy};
use crate::processor::aggregate::{Fold, KvAccess, StreamAggregate, TableAggregate};
use crate::processor::emit_cache::CachedOutput;
use crate::processor::table::Change;
use crate::processor::{Data, Node};
use crate::serdes::{I64, Serde, SerdeRef, erase};
use crate::state::StoreKind;
use crate::topology::{Instantiator, NodeId, StoreId};

/// A stream grouped by key, ready to aggregate.
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) key: SerdeRef<K>,
    pub(crate) value: SerdeRef<V>,
}

/// The store, its name and the key and value serdes of an aggregation.
struct StoreParts<K, A> {
    id: StoreId,
    name: Arc<str>,
    key: SerdeRef<K>,
    value: SerdeRef<A>,
}

impl<K, A> Clone for StoreParts<K, A> {
    fn clone(&self) -> Self {
        StoreParts {
            id: self.id,
            name: self.name.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl<K: Data, A: Data> StoreParts<K, A> {
    fn access(&self, inst: &mut Instantiator<'_>) -> crate::error::Result<KvAccess<K, A>> {
        Ok(KvAccess {
            store: inst.store(self.id)?,
            store_name: self.name.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
        })
    }
}

/// Adds an aggregating node under `parent` with a new store, returning its id.
pub(super) fn aggregate_node<K: Data, VIn: Data, A: Data, M>(
    stream: &KStream<K, VIn>,
    key: SerdeRef<K>,
    value: SerdeRef<A>,
    kind: StoreKind,
    materialized: &Materialized<M>,
    make: impl Fn(
        KvAccess<K, A>,
        &mut Instantiator<'_>,
        NodeId,
    ) -> crate::error::Result<Box<dyn Node<K, VIn>>>
    + Send
    + Sync
    + 'static,
) -> NodeId {
    let b = &stream.builder;
    let store = b.add_store("KSTREAM-AGGREGATE-STATE-STORE", kind, materialized);
    let parts = StoreParts {
        id: store,
        name: Arc::from(b.graph.lock().stores[store].name.as_str()),
        key,
        value,
    };
    b.add_node::<K, VIn>(
        &[stream.node],
        "KSTREAM-AGGREGATE",
        vec![store],
        move |inst, id| {
            let kv = parts.access(inst)?;
            make(kv, inst, id)
        },
    )
}

pub(super) fn count_fold<K, V>() -> Fold<K, V, i64> {
    Arc::new(|_, _, old: Option<i64>| old.unwrap_or(0) + 1)
}

pub(super) fn reduce_fold<K, V: Data>(
    f: impl Fn(V, V) -> V + Send + Sync + 'static,
) -> Fold<K, V, V> {
    Arc::new(move |_, v, old| match old {
        Some(agg) => f(agg, v),
        None => v,
    })
}

pub(super) fn aggregate_fold<K, V, A>(
    init: impl Fn() -> A + Send + Sync + 'static,
    f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
) -> Fold<K, V, A> {
    Arc::new(move |k, v, old| f(k, v, old.unwrap_or_else(&init)))
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    fn stream_aggregate<A: Data, M>(
        &self,
        fold: Fold<K, V, A>,
        value: SerdeRef<A>,
        m: &Materialized<M>,
    ) -> KTable<K, A> {
        let id = aggregate_node(
            &self.stream,
            self.key.clone(),
            value,
            StoreKind::KeyValue,
            m,
            move |kv, inst, id| {
                Ok(Box::new(StreamAggregate {
                    kv,
                    fold: fold.clone(),
                    out: CachedOutput::new(inst.children::<K, Change<A>>(id)?),
                }))
            },
        );
        KTable::new(self.stream.builder.clone(), id)
    }

    /// The number of records per key.
    pub fn count(&self) -> KTable<K, i64> {
        self.count_with(Materialized::default_store())
    }

    /// [`count`](Self::count) into a store configured by `m`.
    pub fn count_with(&self, m: Materialized<()>) -> KTable<K, i64> {
        self.stream_aggregate(count_fold(), erase(I64), &m)
    }

    /// Combines each key's values with `f(aggregate, value)`; the first value is the
    /// initial aggregate.
    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized<()>,
    ) -> KTable<K, V> {
        self.stream_aggregate(reduce_fold(f), self.value.clone(), &m)
    }

    /// Folds each key's values into an aggregate: `init()` starts it, `f(key, value,
    /// aggregate)` adds a value. `m` carries the aggregate's serde.
    pub fn aggregate<A: Data, VS: Serde<Target = A>>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        m: Materialized<VS>,
    ) -> KTable<K, A> {
        let value = erase(m.value.clone());
        self.stream_aggregate(aggregate_fold(init, f), value, &m)
    }

    /// Aggregates per window: `TimeWindows` (tumbling, hopping) or `SessionWindows`.
    pub fn windowed_by<W: WindowedBy<K, V>>(&self, windows: W) -> W::Output {
        windows.group(self.clone())
    }
}

impl<K, V> Clone for KGroupedStream<K, V> {
    fn clone(&self) -> Self {
        KGroupedStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

/// A table grouped by a new key, ready to aggregate with an adder and a subtractor.
pub struct KGroupedTable<K, V> {
    pub(crate) stream: KStream<K, Change<V>>,
    pub(crate) key: SerdeRef<K>,
    pub(crate) value: SerdeRef<V>,
}

impl<K: Data, V: Data> KGroupedTable<K, V> {
    fn table_aggregate<A: Data, M>(
        &self,
        add: Fold<K, V, A>,
        subtract: crate::processor::aggregate::Unfold<K, V, A>,
        value: SerdeRef<A>,
        m: &Materialized<M>,
    ) -> KTable<K, A> {
        let id = aggregate_node(
            &self.stream,
            self.key.clone(),
            value,
            StoreKind::KeyValue,
            m,
            move |kv, inst, id| {
                Ok(Box::new(TableAggregate {
                    kv,
                    add: add.clone(),
                    subtract: subtract.clone(),
                    out: CachedOutput::new(inst.children::<K, Change<A>>(id)?),
                }))
            },
        );
        KTable::new(self.stream.builder.clone(), id)
    }

    /// The number of rows per group.
    pub fn count(&self) -> KTable<K, i64> {
        self.table_aggregate(
            count_fold(),
            Arc::new(|_, _, n| n - 1),
            erase(I64),
            &Materialized::default_store(),
        )
    }

    /// Combines the rows of each group: `add(aggregate, new row)`, `subtract(aggregate,
    /// old row)`.
    pub fn reduce(
        &self,
        add: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtract: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized<()>,
    ) -> KTable<K, V> {
        self.table_aggregate(
            reduce_fold(add),
            Arc::new(move |_, v, agg| subtract(agg, v)),
            self.value.clone(),
            &m,
        )
    }

    /// Folds the rows of each group: `init()` starts, `add(key, row, agg)` adds a row,
    /// `subtract(key, row, agg)` removes one that changed or left the group.
    pub fn aggregate<A: Data, VS: Serde<Target = A>>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        subtract: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        m: Materialized<VS>,
    ) -> KTable<K, A> {
        let value = erase(m.value.clone());
        self.table_aggregate(aggregate_fold(init, add), Arc::new(subtract), value, &m)
    }
}
