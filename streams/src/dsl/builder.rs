//! [`StreamsBuilder`]: where a topology starts.

use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Consumed, KStream, KTable, Materialized};
use crate::error::Result;
use crate::processor::aggregate::KvAccess;
use crate::processor::source::TypedSource;
use crate::processor::table::TableSource;
use crate::processor::{Data, Node};
use crate::serdes::{Nullable, Serde, erase};
use crate::state::StoreKind;
use crate::topology::{
    Build, Factory, Graph, Instantiator, NodeDesc, NodeId, NodeKind, SourceFactory, StoreDesc,
    StoreId, TopicName, Topology,
};

/// Records the streams and tables of a job; [`build`](StreamsBuilder::build) turns them
/// into a [`Topology`].
///
/// ```
/// use sluice_streams::prelude::*;
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("orders", Consumed::with(Str, Str))
///     .filter(|_customer, amount| amount.parse::<f64>().is_ok_and(|a| a > 100.0))
///     .to("large-orders", Produced::with(Str, Str));
/// let topology = builder.build().unwrap();
/// assert!(topology.describe().contains("large-orders"));
/// ```
#[derive(Clone, Default)]
pub struct StreamsBuilder {
    pub(crate) graph: Arc<Mutex<Graph>>,
}

impl std::fmt::Debug for StreamsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsBuilder")
            .field("nodes", &self.graph.lock().nodes.len())
            .finish()
    }
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        StreamsBuilder::default()
    }

    /// A stream of the records of `topic`.
    pub fn stream<KS: Serde, VS: Serde>(
        &self,
        topic: impl Into<String>,
        consumed: Consumed<KS, VS>,
    ) -> KStream<KS::Target, VS::Target> {
        self.stream_from(vec![TopicName::User(topic.into())], consumed)
    }

    /// One stream of the records of several topics.
    pub fn streams<KS: Serde, VS: Serde>(
        &self,
        topics: &[&str],
        consumed: Consumed<KS, VS>,
    ) -> KStream<KS::Target, VS::Target> {
        let topics = topics
            .iter()
            .map(|t| TopicName::User(t.to_string()))
            .collect();
        self.stream_from(topics, consumed)
    }

    pub(crate) fn stream_from<KS: Serde, VS: Serde>(
        &self,
        topics: Vec<TopicName>,
        consumed: Consumed<KS, VS>,
    ) -> KStream<KS::Target, VS::Target> {
        let Consumed {
            key,
            value,
            extractor,
            on_error,
        } = consumed;
        let factory: SourceFactory = Arc::new(move |inst: &mut Instantiator<'_>, id: NodeId| {
            Ok(Box::new(TypedSource {
                key: key.clone(),
                value: value.clone(),
                extractor: extractor.clone(),
                on_error: on_error
                    .clone()
                    .unwrap_or_else(|| inst.on_deserialization_error.clone()),
                next: inst.children::<KS::Target, VS::Target>(id)?,
            }))
        });
        let mut g = self.graph.lock();
        let name = g.name("KSTREAM-SOURCE");
        let id = g.add(
            NodeDesc {
                name,
                kind: NodeKind::Source { topics },
                parents: Vec::new(),
                stores: Vec::new(),
            },
            Build::Source(factory),
        );
        drop(g);
        KStream::new(self.clone(), id, false)
    }

    /// A table of the latest value per key of `topic` (a null value deletes the key),
    /// materialized in a store.
    pub fn table<KS: Serde, VS: Serde>(
        &self,
        topic: impl Into<String>,
        consumed: Consumed<KS, VS>,
        materialized: Materialized<()>,
    ) -> KTable<KS::Target, VS::Target> {
        let key_serde = erase(consumed.key.clone());
        let value_serde = erase(consumed.value.clone());
        let lifted = Consumed {
            key: consumed.key,
            value: Nullable(consumed.value),
            extractor: consumed.extractor.map(|f| {
                let f: crate::processor::source::Extractor<KS::Target, Option<VS::Target>> =
                    Arc::new(move |k, v: &Option<VS::Target>, ts| match v {
                        Some(v) => f(k, v, ts),
                        None => ts,
                    });
                f
            }),
            on_error: consumed.on_error,
        };
        let source = self.stream_from(vec![TopicName::User(topic.into())], lifted);
        let store = self.add_store(
            "KTABLE-SOURCE-STATE-STORE",
            StoreKind::KeyValue,
            &materialized,
        );
        let store_name: Arc<str> = Arc::from(self.graph.lock().stores[store].name.as_str());
        let id = self.add_node::<KS::Target, Option<VS::Target>>(
            &[source.node],
            "KTABLE-SOURCE",
            vec![store],
            move |inst, id| {
                Ok(Box::new(TableSource {
                    kv: KvAccess {
                        store: inst.store(store)?,
                        store_name: store_name.clone(),
                        key: key_serde.clone(),
                        value: value_serde.clone(),
                    },
                    next: inst.children(id)?,
                }))
            },
        );
        KTable::new(self.clone(), id)
    }

    /// The topology recorded so far.
    pub fn build(&self) -> Result<Topology> {
        Topology::new(self.graph.lock().clone())
    }

    /// Adds a processor taking `Record<K, V>` from `parents`.
    pub(crate) fn add_node<K: Data, V: Data>(
        &self,
        parents: &[NodeId],
        kind: &str,
        stores: Vec<StoreId>,
        factory: impl Fn(&mut Instantiator<'_>, NodeId) -> Result<Box<dyn Node<K, V>>>
        + Send
        + Sync
        + 'static,
    ) -> NodeId {
        let factory: Factory<K, V> = Arc::new(factory);
        let mut g = self.graph.lock();
        let name = g.name(kind);
        g.add(
            NodeDesc {
                name,
                kind: NodeKind::Processor,
                parents: parents.to_vec(),
                stores,
            },
            Build::Node(Arc::new(factory)),
        )
    }

    /// Adds a sink taking `Record<K, V>` from `parent`.
    pub(crate) fn add_sink<K: Data, V: Data>(
        &self,
        parent: NodeId,
        topic: Option<TopicName>,
        factory: impl Fn(&mut Instantiator<'_>, NodeId) -> Result<Box<dyn Node<K, V>>>
        + Send
        + Sync
        + 'static,
    ) -> NodeId {
        let factory: Factory<K, V> = Arc::new(factory);
        let mut g = self.graph.lock();
        let name = g.name("KSTREAM-SINK");
        g.add(
            NodeDesc {
                name,
                kind: NodeKind::Sink { topic },
                parents: vec![parent],
                stores: Vec::new(),
            },
            Build::Node(Arc::new(factory)),
        )
    }

    /// Registers a store; its default name is `<prefix>-<node number>`.
    pub(crate) fn add_store<VS>(
        &self,
        prefix: &str,
        kind: StoreKind,
        m: &Materialized<VS>,
    ) -> StoreId {
        let mut g = self.graph.lock();
        let name = m.name.clone().unwrap_or_else(|| g.name(prefix));
        g.add_store(StoreDesc {
            name,
            kind,
            engine: m.engine,
            logged: m.logging,
        })
    }

    pub(crate) fn add_repartition_topic(&self, name: TopicName, partitions: Option<i32>) {
        self.graph
            .lock()
            .repartition_topics
            .push(crate::topology::RepartitionTopic { name, partitions });
    }

    pub(crate) fn next_name(&self, kind: &str) -> String {
        self.graph.lock().name(kind)
    }
}

impl<K, V> KStream<K, V> {
    pub(crate) fn new(builder: StreamsBuilder, node: NodeId, key_changed: bool) -> Self {
        KStream {
            builder,
            node,
            key_changed,
            _types: PhantomData,
        }
    }
}

impl<K, V> KTable<K, V> {
    pub(crate) fn new(builder: StreamsBuilder, node: NodeId) -> Self {
        KTable {
            builder,
            node,
            _types: PhantomData,
        }
    }
}
