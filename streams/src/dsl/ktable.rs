//! [`KTable`]: the latest value per key, changing over time.

use std::marker::PhantomData;
use std::sync::Arc;

use super::{Grouped, KGroupedTable, KStream, Produced, StreamsBuilder};
use crate::processor::Data;
use crate::processor::table::{
    Change, ChangeSerde, TableFilter, TableMapValues, TableRegroup, ToStream,
};
use crate::serdes::{Nullable, Serde, erase};

/// A table: for each key, its current value. Its records are changes of a row.
pub struct KTable<K, V> {
    pub(crate) builder: StreamsBuilder,
    pub(crate) node: crate::topology::NodeId,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            builder: self.builder.clone(),
            node: self.node,
            _types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for KTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KTable").field("node", &self.node).finish()
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    fn table_filter(
        &self,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        keep_when: bool,
    ) -> KTable<K, V> {
        let pred = Arc::new(pred);
        let id = self.builder.add_node::<K, Change<V>>(
            &[self.node],
            "KTABLE-FILTER",
            Vec::new(),
            move |inst, id| {
                Ok(Box::new(TableFilter {
                    pred: pred.clone(),
                    keep_when,
                    next: inst.children(id)?,
                }))
            },
        );
        KTable::new(self.builder.clone(), id)
    }

    /// The rows for which `pred` holds; a row that stops matching is deleted.
    pub fn filter(&self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        self.table_filter(pred, true)
    }

    /// The rows for which `pred` does not hold.
    pub fn filter_not(
        &self,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        self.table_filter(pred, false)
    }

    /// Each row's value turned into a new value.
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let f = Arc::new(f);
        let id = self.builder.add_node::<K, Change<V>>(
            &[self.node],
            "KTABLE-MAPVALUES",
            Vec::new(),
            move |inst, id| {
                Ok(Box::new(TableMapValues {
                    f: f.clone(),
                    next: inst.children::<K, Change<V2>>(id)?,
                }))
            },
        );
        KTable::new(self.builder.clone(), id)
    }

    /// The stream of the table's updates (new values). Deletions are not in it: use
    /// [`to_change_stream`](Self::to_change_stream) to see them, or [`to`](Self::to) to
    /// write the table with tombstones.
    pub fn to_stream(&self) -> KStream<K, V> {
        let id = self.builder.add_node::<K, Change<V>>(
            &[self.node],
            "KTABLE-TOSTREAM",
            Vec::new(),
            |inst, id| {
                Ok(Box::new(ToStream {
                    next_updates: Some(inst.children::<K, V>(id)?),
                    next_changes: None,
                }))
            },
        );
        KStream::new(self.builder.clone(), id, false)
    }

    /// The stream of the table's changes: `Some(value)` for an update, `None` for a
    /// deletion.
    pub fn to_change_stream(&self) -> KStream<K, Option<V>> {
        let id = self.builder.add_node::<K, Change<V>>(
            &[self.node],
            "KTABLE-TOSTREAM",
            Vec::new(),
            |inst, id| {
                Ok(Box::new(ToStream {
                    next_updates: None,
                    next_changes: Some(inst.children::<K, Option<V>>(id)?),
                }))
            },
        );
        KStream::new(self.builder.clone(), id, false)
    }

    /// Writes the table's changes to `topic`: updates as values, deletions as tombstones.
    pub fn to<KS, VS>(&self, topic: impl Into<String>, produced: Produced<KS, VS>)
    where
        KS: Serde<Target = K>,
        VS: Serde<Target = V>,
    {
        self.to_change_stream().to(
            topic,
            Produced::with(produced.key, Nullable(produced.value)),
        );
    }

    /// Groups the rows by a new key and value computed from each row (always
    /// repartitions), for aggregation with an adder and a subtractor.
    pub fn group_by<K2: Data, V2: Data, KS, VS>(
        &self,
        select: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: Grouped<KS, VS>,
    ) -> KGroupedTable<K2, V2>
    where
        KS: Serde<Target = K2>,
        VS: Serde<Target = V2>,
    {
        let select: crate::processor::table::Regroup<K, V, K2, V2> = Arc::new(select);
        let id = self.builder.add_node::<K, Change<V>>(
            &[self.node],
            "KTABLE-SELECT",
            Vec::new(),
            move |inst, id| {
                Ok(Box::new(TableRegroup {
                    select: select.clone(),
                    next: inst.children::<K2, Change<V2>>(id)?,
                }))
            },
        );
        let regrouped: KStream<K2, Change<V2>> = KStream::new(self.builder.clone(), id, true);
        let name = grouped
            .name
            .unwrap_or_else(|| self.builder.next_name("KTABLE-AGGREGATE"));
        let key = erase(grouped.key);
        let value = erase(grouped.value);
        let stream =
            regrouped.through_internal(&name, key.clone(), erase(ChangeSerde(value.clone())), None);
        KGroupedTable { stream, key, value }
    }
}
