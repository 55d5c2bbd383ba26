//! Grouped streams and tables, and their aggregations: `count`, `reduce`, `aggregate`,
//! plain or over windows.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{KStream, KTable, Materialized};
use crate::processor::aggregate::{Fold, KvAccess, StreamAggregate, TableAggregate};
use crate::processor::session::SessionAggregate;
use crate::processor::sliding::SlidingAggregate;
use crate::processor::table::Change;
use crate::processor::window::TimeWindowAggregate;
use crate::processor::{Data, Node};
use crate::serdes::{I64, Serde, SerdeRef, erase};
use crate::state::StoreKind;
use crate::topology::{Instantiator, NodeId, StoreId};
use crate::window::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Windowed};

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
fn aggregate_node<K: Data, VIn: Data, A: Data, M>(
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

fn count_fold<K, V>() -> Fold<K, V, i64> {
    Arc::new(|_, _, old: Option<i64>| old.unwrap_or(0) + 1)
}

fn reduce_fold<K, V: Data>(f: impl Fn(V, V) -> V + Send + Sync + 'static) -> Fold<K, V, V> {
    Arc::new(move |_, v, old| match old {
        Some(agg) => f(agg, v),
        None => v,
    })
}

fn aggregate_fold<K, V, A>(
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
                    next: inst.children::<K, Change<A>>(id)?,
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

/// A kind of window a grouped stream can be aggregated over.
pub trait WindowedBy<K, V> {
    /// The windowed stream it makes.
    type Output;
    /// Applies the windows to the grouped stream.
    fn group(self, grouped: KGroupedStream<K, V>) -> Self::Output;
}

impl<K, V> WindowedBy<K, V> for TimeWindows {
    type Output = TimeWindowedKStream<K, V>;
    fn group(self, grouped: KGroupedStream<K, V>) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            grouped,
            windows: self,
            emit: EmitStrategy::default(),
        }
    }
}

impl<K, V> WindowedBy<K, V> for SessionWindows {
    type Output = SessionWindowedKStream<K, V>;
    fn group(self, grouped: KGroupedStream<K, V>) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream {
            grouped,
            windows: self,
            emit: EmitStrategy::default(),
        }
    }
}

impl<K, V> WindowedBy<K, V> for SlidingWindows {
    type Output = SlidingWindowedKStream<K, V>;
    fn group(self, grouped: KGroupedStream<K, V>) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream {
            grouped,
            windows: self,
            emit: EmitStrategy::default(),
        }
    }
}

/// A grouped stream over sliding windows: for each record, the window of its key's
/// records in the `difference` before it (inclusive at both ends).
pub struct SlidingWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SlidingWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> SlidingWindowedKStream<K, V> {
    /// When results go downstream: on every update (default: a record's own window and
    /// the later windows it joins) or once per window when it closes.
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    fn sliding<A: Data, M>(
        &self,
        fold: Fold<K, V, A>,
        m: &Materialized<M>,
    ) -> KTable<Windowed<K>, A> {
        let (windows, emit) = (self.windows, self.emit);
        let g = &self.grouped;
        let b = &g.stream.builder;
        let store = b.add_store("KSTREAM-SLIDING-BUFFER", StoreKind::SlidingBuffer, m);
        let store_name: Arc<str> = Arc::from(b.graph.lock().stores[store].name.as_str());
        let (key, value) = (g.key.clone(), g.value.clone());
        let id = b.add_node::<K, V>(
            &[g.stream.node],
            "KSTREAM-SLIDINGWINDOWAGGREGATE",
            vec![store],
            move |inst, id| {
                Ok(Box::new(SlidingAggregate {
                    windows,
                    emit,
                    store: inst.store(store)?,
                    store_name: store_name.clone(),
                    key: key.clone(),
                    value: value.clone(),
                    fold: fold.clone(),
                    index: BTreeSet::new(),
                    next_seq: 0,
                    closed_through: i64::MIN,
                    scanned: false,
                    next: inst.children::<Windowed<K>, Change<A>>(id)?,
                }))
            },
        );
        KTable::new(b.clone(), id)
    }

    /// The number of records per key and window.
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.count_with(Materialized::default_store())
    }

    /// [`count`](Self::count) with the record buffer configured by `m`.
    pub fn count_with(&self, m: Materialized<()>) -> KTable<Windowed<K>, i64> {
        self.sliding(count_fold(), &m)
    }

    /// Combines each key's values per window.
    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized<()>,
    ) -> KTable<Windowed<K>, V> {
        self.sliding(reduce_fold(f), &m)
    }

    /// Folds each key's values per window into an aggregate (`m`'s serde is unused: the
    /// buffer keeps records, and aggregates are folded from them when emitted).
    pub fn aggregate<A: Data, VS>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        m: Materialized<VS>,
    ) -> KTable<Windowed<K>, A> {
        self.sliding(aggregate_fold(init, f), &m)
    }
}

/// A grouped stream over tumbling or hopping windows.
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    /// When results go downstream: on every update (default) or once per window when it
    /// closes.
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    fn windowed<A: Data, M>(
        &self,
        fold: Fold<K, V, A>,
        value: SerdeRef<A>,
        m: &Materialized<M>,
    ) -> KTable<Windowed<K>, A> {
        let (windows, emit) = (self.windows, self.emit);
        let g = &self.grouped;
        let id = aggregate_node(
            &g.stream,
            g.key.clone(),
            value,
            StoreKind::Window,
            m,
            move |kv, inst, id| {
                Ok(Box::new(TimeWindowAggregate {
                    windows,
                    emit,
                    kv,
                    fold: fold.clone(),
                    open_starts: BTreeSet::new(),
                    scanned: false,
                    next: inst.children::<Windowed<K>, Change<A>>(id)?,
                }))
            },
        );
        KTable::new(g.stream.builder.clone(), id)
    }

    /// The number of records per key and window.
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.count_with(Materialized::default_store())
    }

    /// [`count`](Self::count) into a store configured by `m`.
    pub fn count_with(&self, m: Materialized<()>) -> KTable<Windowed<K>, i64> {
        self.windowed(count_fold(), erase(I64), &m)
    }

    /// Combines each key's values per window.
    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized<()>,
    ) -> KTable<Windowed<K>, V> {
        self.windowed(reduce_fold(f), self.grouped.value.clone(), &m)
    }

    /// Folds each key's values per window into an aggregate.
    pub fn aggregate<A: Data, VS: Serde<Target = A>>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        m: Materialized<VS>,
    ) -> KTable<Windowed<K>, A> {
        let value = erase(m.value.clone());
        self.windowed(aggregate_fold(init, f), value, &m)
    }
}

/// A grouped stream over session windows.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    /// When results go downstream: on every update (default; a merge also deletes the
    /// sessions it replaced) or once per session when it closes.
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    fn sessions<A: Data, M>(
        &self,
        fold: Fold<K, V, A>,
        merge: crate::processor::session::Merge<K, A>,
        value: SerdeRef<A>,
        m: &Materialized<M>,
    ) -> KTable<Windowed<K>, A> {
        let (windows, emit) = (self.windows, self.emit);
        let g = &self.grouped;
        let id = aggregate_node(
            &g.stream,
            g.key.clone(),
            value,
            StoreKind::Session,
            m,
            move |kv, inst, id| {
                Ok(Box::new(SessionAggregate {
                    windows,
                    emit,
                    kv,
                    fold: fold.clone(),
                    merge: merge.clone(),
                    open: BTreeSet::new(),
                    scanned: false,
                    next: inst.children::<Windowed<K>, Change<A>>(id)?,
                }))
            },
        );
        KTable::new(g.stream.builder.clone(), id)
    }

    /// The number of records per key and session.
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.count_with(Materialized::default_store())
    }

    /// [`count`](Self::count) into a store configured by `m`.
    pub fn count_with(&self, m: Materialized<()>) -> KTable<Windowed<K>, i64> {
        self.sessions(count_fold(), Arc::new(|_, a, b| a + b), erase(I64), &m)
    }

    /// Combines each key's values per session (`f` also merges two sessions).
    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized<()>,
    ) -> KTable<Windowed<K>, V> {
        let f = Arc::new(f);
        let g = f.clone();
        self.sessions(
            reduce_fold(move |a, b| f(a, b)),
            Arc::new(move |_, a, b| g(a, b)),
            self.grouped.value.clone(),
            &m,
        )
    }

    /// Folds each key's values per session; `merge(key, a, b)` combines the aggregates of
    /// two sessions a record joins together.
    pub fn aggregate<A: Data, VS: Serde<Target = A>>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merge: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        m: Materialized<VS>,
    ) -> KTable<Windowed<K>, A> {
        let value = erase(m.value.clone());
        self.sessions(aggregate_fold(init, f), Arc::new(merge), value, &m)
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
                    next: inst.children::<K, Change<A>>(id)?,
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
