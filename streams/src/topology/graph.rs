//! The graph a builder records: node descriptions (for `describe` and sub-topologies) and,
//! beside each, the typed factory that instantiates it in a task.

use std::any::Any;
use std::sync::Arc;

use super::{Instantiator, NodeId, StoreId};
use crate::error::Result;
use crate::processor::Node;
use crate::processor::source::SourceNode;
use crate::state::{StoreEngine, StoreKind};

/// A topic a node reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TopicName {
    /// A topic the user named.
    User(String),
    /// An internal topic: the full name is `<application id>-<suffix>`.
    Internal(String),
}

impl TopicName {
    pub fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicName::User(t) => t.clone(),
            TopicName::Internal(s) => format!("{application_id}-{s}"),
        }
    }

    pub fn display(&self) -> String {
        self.resolve("<application.id>")
    }
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Source {
        topics: Vec<TopicName>,
    },
    Processor,
    /// `topic` is `None` when a function picks the topic per record.
    Sink {
        topic: Option<TopicName>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct NodeDesc {
    pub name: String,
    pub kind: NodeKind,
    pub parents: Vec<NodeId>,
    pub stores: Vec<StoreId>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoreDesc {
    pub name: String,
    pub kind: StoreKind,
    pub engine: StoreEngine,
    /// Whether writes go to a changelog topic `<application id>-<name>-changelog`.
    pub logged: bool,
}

impl StoreDesc {
    pub fn changelog(&self) -> Option<TopicName> {
        self.logged
            .then(|| TopicName::Internal(format!("{}-changelog", self.name)))
    }
}

/// Instantiates a node taking `Record<K, V>` in a task; gets its own id to find children.
pub(crate) type Factory<K, V> =
    Arc<dyn Fn(&mut Instantiator<'_>, NodeId) -> Result<Box<dyn Node<K, V>>> + Send + Sync>;

/// Instantiates a source node in a task.
pub(crate) type SourceFactory =
    Arc<dyn Fn(&mut Instantiator<'_>, NodeId) -> Result<Box<dyn SourceNode>> + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Build {
    Source(SourceFactory),
    /// A `Factory<K, V>` for the node's input types.
    Node(Arc<dyn Any + Send + Sync>),
}

/// An internal repartition topic and the partition count asked for, if any.
#[derive(Debug, Clone)]
pub(crate) struct RepartitionTopic {
    pub name: TopicName,
    pub partitions: Option<i32>,
}

#[derive(Default, Clone)]
pub(crate) struct Graph {
    pub nodes: Vec<NodeDesc>,
    pub builds: Vec<Build>,
    pub stores: Vec<StoreDesc>,
    pub repartition_topics: Vec<RepartitionTopic>,
}

impl Graph {
    /// A Kafka-Streams-style name: `KSTREAM-FILTER-0000000003`.
    pub fn name(&self, kind: &str) -> String {
        format!("{kind}-{:010}", self.nodes.len())
    }

    pub fn add(&mut self, desc: NodeDesc, build: Build) -> NodeId {
        self.nodes.push(desc);
        self.builds.push(build);
        self.nodes.len() - 1
    }

    pub fn add_store(&mut self, desc: StoreDesc) -> StoreId {
        self.stores.push(desc);
        self.stores.len() - 1
    }
}
