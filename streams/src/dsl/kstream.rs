//! [`KStream`]: an unbounded stream of key-value records and the operators on it.

use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Grouped, KGroupedStream, Produced, Repartitioned, StreamsBuilder};
use crate::processor::sink::{Sink, SinkTopic};
use crate::processor::source::TypedSource;
use crate::processor::stateless::{
    BranchPredicate, Filter, FlatMap, FlatMapValues, Map, MapValues, Pass, Peek, Split,
};
use crate::processor::{Data, Discard};
use crate::serdes::{Serde, SerdeRef, erase};
use crate::topology::{Build, NodeDesc, NodeId, NodeKind, SourceFactory, TopicName};

/// A stream of records with keys of type `K` and values of type `V`.
///
/// Operators return new streams; a stream may feed several operators (each sees every
/// record). Nothing runs until the topology is started.
pub struct KStream<K, V> {
    pub(crate) builder: StreamsBuilder,
    pub(crate) node: NodeId,
    /// Whether an operator upstream may have changed keys, so grouping must repartition.
    pub(crate) key_changed: bool,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            builder: self.builder.clone(),
            node: self.node,
            key_changed: self.key_changed,
            _types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for KStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KStream").field("node", &self.node).finish()
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    fn then<K2, V2>(
        &self,
        kind: &str,
        key_changed: bool,
        factory: impl Fn(
            &mut crate::topology::Instantiator<'_>,
            NodeId,
        ) -> crate::error::Result<Box<dyn crate::processor::Node<K, V>>>
        + Send
        + Sync
        + 'static,
    ) -> KStream<K2, V2> {
        let id = self
            .builder
            .add_node::<K, V>(&[self.node], kind, Vec::new(), factory);
        KStream::new(self.builder.clone(), id, key_changed)
    }

    /// The records for which `pred` holds.
    pub fn filter(&self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        let pred = Arc::new(pred);
        self.then("KSTREAM-FILTER", self.key_changed, move |inst, id| {
            Ok(Box::new(Filter {
                pred: pred.clone(),
                keep_when: true,
                next: inst.children(id)?,
            }))
        })
    }

    /// The records for which `pred` does not hold.
    pub fn filter_not(
        &self,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        let pred = Arc::new(pred);
        self.then("KSTREAM-FILTER", self.key_changed, move |inst, id| {
            Ok(Box::new(Filter {
                pred: pred.clone(),
                keep_when: false,
                next: inst.children(id)?,
            }))
        })
    }

    /// Each record turned into a new key and value.
    pub fn map<K2: Data, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let f = Arc::new(f);
        self.then("KSTREAM-MAP", true, move |inst, id| {
            Ok(Box::new(Map {
                f: f.clone(),
                next: inst.children::<K2, V2>(id)?,
            }))
        })
    }

    /// Each record's value turned into a new value; keys (and partitioning) unchanged.
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.map_values_with_key(move |_, v| f(v))
    }

    /// Like [`map_values`](Self::map_values), with the key to read.
    pub fn map_values_with_key<V2: Data>(
        &self,
        f: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let f = Arc::new(f);
        self.then("KSTREAM-MAPVALUES", self.key_changed, move |inst, id| {
            Ok(Box::new(MapValues {
                f: f.clone(),
                next: inst.children::<K, V2>(id)?,
            }))
        })
    }

    /// Each record turned into zero or more records.
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)> + 'static,
    {
        let f = Arc::new(f);
        self.then("KSTREAM-FLATMAP", true, move |inst, id| {
            Ok(Box::new(FlatMap {
                f: f.clone(),
                next: inst.children::<K2, V2>(id)?,
            }))
        })
    }

    /// Each record's value turned into zero or more values, each with the record's key.
    pub fn flat_map_values<V2: Data, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2> + 'static,
    {
        let f = Arc::new(move |_: &K, v: V| f(v));
        self.then(
            "KSTREAM-FLATMAPVALUES",
            self.key_changed,
            move |inst, id| {
                Ok(Box::new(FlatMapValues {
                    f: f.clone(),
                    next: inst.children::<K, V2>(id)?,
                }))
            },
        )
    }

    /// Each record with a new key computed from it; values unchanged.
    pub fn select_key<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let f = Arc::new(move |k: K, v: V| (f(&k, &v), v));
        self.then("KSTREAM-KEY-SELECT", true, move |inst, id| {
            Ok(Box::new(Map {
                f: f.clone(),
                next: inst.children::<K2, V>(id)?,
            }))
        })
    }

    /// Calls `f` on each record and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let f = Arc::new(f);
        self.then("KSTREAM-PEEK", self.key_changed, move |inst, id| {
            Ok(Box::new(Peek {
                f: f.clone(),
                next: inst.children(id)?,
            }))
        })
    }

    /// Calls `f` on each record; the end of this branch.
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        let f = Arc::new(f);
        let _: KStream<K, V> = self.then("KSTREAM-FOREACH", self.key_changed, move |_, _| {
            Ok(Box::new(Peek {
                f: f.clone(),
                next: Box::new(Discard),
            }))
        });
    }

    /// Prints each record to standard output as `[label]: key, value`.
    pub fn print(&self, label: impl Into<String>)
    where
        K: std::fmt::Debug,
        V: std::fmt::Debug,
    {
        let label = label.into();
        self.foreach(move |k, v| println!("[{label}]: {k:?}, {v:?}"));
    }

    /// Splits the stream by predicates: each record goes to the first branch it matches.
    ///
    /// ```
    /// # use sluice_streams::prelude::*;
    /// # let builder = StreamsBuilder::new();
    /// let words = builder.stream("words", Consumed::with(Unit, Str));
    /// let [short, long] = words
    ///     .split()
    ///     .branch(|_, w| w.len() < 5)
    ///     .default_branch()
    ///     .try_into()
    ///     .unwrap();
    /// short.to("short-words", Produced::with(Unit, Str));
    /// long.to("long-words", Produced::with(Unit, Str));
    /// ```
    pub fn split(&self) -> BranchedKStream<K, V> {
        let predicates: Arc<Mutex<Vec<BranchPredicate<K, V>>>> = Arc::default();
        let preds = predicates.clone();
        let split = self.then::<K, V>("KSTREAM-BRANCH", self.key_changed, move |inst, id| {
            Ok(Box::new(Split {
                predicates: preds.lock().clone(),
                branches: inst.child_list(id)?,
            }))
        });
        BranchedKStream {
            split,
            predicates,
            branches: Vec::new(),
        }
    }

    /// One stream of this stream's and `other`'s records.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let id = self.builder.add_node::<K, V>(
            &[self.node, other.node],
            "KSTREAM-MERGE",
            Vec::new(),
            |inst, id| {
                Ok(Box::new(Pass {
                    next: inst.children(id)?,
                }))
            },
        );
        KStream::new(
            self.builder.clone(),
            id,
            self.key_changed || other.key_changed,
        )
    }

    /// Writes every record to `topic`.
    pub fn to<KS, VS>(&self, topic: impl Into<String>, produced: Produced<KS, VS>)
    where
        KS: Serde<Target = K>,
        VS: Serde<Target = V>,
    {
        let topic = topic.into();
        let t = topic.clone();
        self.builder
            .add_sink::<K, V>(self.node, Some(TopicName::User(topic)), move |_, _| {
                Ok(Box::new(Sink {
                    topic: SinkTopic::Fixed(t.clone()),
                    key: produced.key.clone(),
                    value: produced.value.clone(),
                }))
            });
    }

    /// Writes each record to the topic `choose` names for it.
    pub fn to_dynamic<KS, VS>(
        &self,
        choose: impl Fn(&K, &V) -> String + Send + Sync + 'static,
        produced: Produced<KS, VS>,
    ) where
        KS: Serde<Target = K>,
        VS: Serde<Target = V>,
    {
        let choose: crate::processor::sink::TopicChooser<K, V> = Arc::new(choose);
        self.builder.add_sink::<K, V>(self.node, None, move |_, _| {
            Ok(Box::new(Sink {
                topic: SinkTopic::Chosen(choose.clone()),
                key: produced.key.clone(),
                value: produced.value.clone(),
            }))
        });
    }

    /// Sends the records through an internal topic partitioned by key, so each key's
    /// records meet in one task downstream.
    pub fn repartition<KS, VS>(&self, r: Repartitioned<KS, VS>) -> KStream<K, V>
    where
        KS: Serde<Target = K>,
        VS: Serde<Target = V>,
    {
        let name = r
            .name
            .unwrap_or_else(|| self.builder.next_name("KSTREAM-REPARTITION"));
        self.through_internal(&name, erase(r.key), erase(r.value), r.partitions)
    }

    pub(crate) fn through_internal(
        &self,
        name: &str,
        key: SerdeRef<K>,
        value: SerdeRef<V>,
        partitions: Option<i32>,
    ) -> KStream<K, V> {
        let topic = TopicName::Internal(format!("{name}-repartition"));
        self.builder
            .add_repartition_topic(topic.clone(), partitions);
        let (k, v) = (key.clone(), value.clone());
        let sink_topic = topic.clone();
        self.builder
            .add_sink::<K, V>(self.node, Some(topic.clone()), move |inst, _| {
                Ok(Box::new(Sink {
                    topic: SinkTopic::Fixed(inst.topic(&sink_topic)),
                    key: k.clone(),
                    value: v.clone(),
                }))
            });
        let factory: SourceFactory = Arc::new(move |inst, id| {
            Ok(Box::new(TypedSource {
                key: key.clone(),
                value: value.clone(),
                extractor: None,
                on_error: crate::processor::source::DeserializationHandler::Fail,
                next: inst.children::<K, V>(id)?,
            }))
        });
        let mut g = self.builder.graph.lock();
        let source_name = g.name("KSTREAM-SOURCE");
        let id = g.add(
            NodeDesc {
                name: source_name,
                kind: NodeKind::Source {
                    topics: vec![topic],
                },
                parents: Vec::new(),
                stores: Vec::new(),
            },
            Build::Source(factory),
        );
        drop(g);
        KStream::new(self.builder.clone(), id, false)
    }

    /// Groups records by their key, for aggregation. Repartitions first if an operator
    /// upstream may have changed keys.
    pub fn group_by_key<KS, VS>(&self, grouped: Grouped<KS, VS>) -> KGroupedStream<K, V>
    where
        KS: Serde<Target = K>,
        VS: Serde<Target = V>,
    {
        let (key, value) = (erase(grouped.key), erase(grouped.value));
        let stream = if self.key_changed {
            let name = grouped
                .name
                .unwrap_or_else(|| self.builder.next_name("KSTREAM-AGGREGATE"));
            self.through_internal(&name, key.clone(), value.clone(), None)
        } else {
            self.clone()
        };
        KGroupedStream { stream, key, value }
    }

    /// Groups records by a new key computed from each record (always repartitions).
    pub fn group_by<K2: Data, KS, VS>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<KS, VS>,
    ) -> KGroupedStream<K2, V>
    where
        KS: Serde<Target = K2>,
        VS: Serde<Target = V>,
    {
        self.select_key(f).group_by_key(grouped)
    }
}

/// The branches of [`KStream::split`] being defined.
pub struct BranchedKStream<K, V> {
    split: KStream<K, V>,
    predicates: Arc<Mutex<Vec<BranchPredicate<K, V>>>>,
    branches: Vec<KStream<K, V>>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    fn add(mut self, pred: BranchPredicate<K, V>) -> Self {
        self.predicates.lock().push(pred);
        let branch =
            self.split
                .then::<K, V>("KSTREAM-BRANCHCHILD", self.split.key_changed, |inst, id| {
                    Ok(Box::new(Pass {
                        next: inst.children(id)?,
                    }))
                });
        self.branches.push(branch);
        self
    }

    /// A branch for the records `pred` matches (and no earlier branch did).
    pub fn branch(self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.add(Some(Arc::new(pred)))
    }

    /// The branches, plus a last one for the records no predicate matched.
    pub fn default_branch(self) -> Vec<KStream<K, V>> {
        self.add(None).branches
    }

    /// The branches; records no predicate matched are dropped.
    pub fn no_default_branch(self) -> Vec<KStream<K, V>> {
        self.branches
    }
}
