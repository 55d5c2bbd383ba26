//! Windowed aggregations of a grouped stream: tumbling and hopping
//! ([`TimeWindowedKStream`]), sliding ([`SlidingWindowedKStream`]) and session
//! ([`SessionWindowedKStream`]) windows.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::grouped::{aggregate_fold, aggregate_node, count_fold, reduce_fold};
use super::{KGroupedStream, KTable, Materialized};
use crate::processor::Data;
use crate::processor::aggregate::Fold;
use crate::processor::emit_cache::CachedOutput;
use crate::processor::session::SessionAggregate;
use crate::processor::sliding::SlidingAggregate;
use crate::processor::table::Change;
use crate::processor::window::TimeWindowAggregate;
use crate::serdes::{I64, Serde, SerdeRef, erase};
use crate::state::StoreKind;
use crate::window::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Windowed};

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
                    key_buf: Vec::new(),
                    out: CachedOutput::new(inst.children::<Windowed<K>, Change<A>>(id)?),
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
