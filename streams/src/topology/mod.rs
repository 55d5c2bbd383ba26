//! The topology: the graph of nodes a [`StreamsBuilder`](crate::StreamsBuilder) records,
//! split into sub-topologies, and instantiated once per task.
//!
//! A sub-topology is a connected part of the graph: nodes joined by parent edges or by a
//! shared state store. Repartition topics are the only links between sub-topologies: a
//! sink writes to one and a source of another sub-topology reads it. A **task** is one
//! sub-topology over one partition of its input topics, so co-partitioned inputs meet in
//! the same task.

mod describe;
mod graph;
mod instantiate;

use std::collections::BTreeSet;
use std::sync::Arc;

pub(crate) use graph::{
    Build, Factory, Graph, NodeDesc, NodeKind, RepartitionTopic, SourceFactory, StoreDesc,
    TopicName,
};
pub(crate) use instantiate::{Instantiator, TaskGraph};

use crate::error::{Result, StreamsError};

pub(crate) type NodeId = usize;
pub(crate) type StoreId = usize;

/// A task: one sub-topology over one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The sub-topology.
    pub subtopology: usize,
    /// The partition of its input topics.
    pub partition: i32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// A connected part of the topology, run as one task per input partition.
#[derive(Debug, Clone)]
pub(crate) struct Subtopology {
    pub id: usize,
    pub nodes: Vec<NodeId>,
    /// Source nodes, in node order.
    pub sources: Vec<NodeId>,
    pub source_topics: Vec<TopicName>,
    pub stores: Vec<StoreId>,
    /// Repartition topics this sub-topology writes.
    pub sink_topics: Vec<TopicName>,
}

/// A built topology: what a [`StreamsBuilder`](crate::StreamsBuilder) described, ready to
/// run in a [`KafkaStreams`](crate::KafkaStreams) instance or a
/// [`TopologyTestDriver`](crate::TopologyTestDriver).
#[derive(Clone)]
pub struct Topology {
    pub(crate) graph: Arc<Graph>,
    pub(crate) children: Arc<Vec<Vec<NodeId>>>,
    pub(crate) subtopologies: Arc<Vec<Subtopology>>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Topology {
    pub(crate) fn new(graph: Graph) -> Result<Topology> {
        let n = graph.nodes.len();
        let mut children = vec![Vec::new(); n];
        for (id, node) in graph.nodes.iter().enumerate() {
            for &p in &node.parents {
                children[p].push(id);
            }
        }
        // Union-find over parent edges and shared stores.
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
            let (ra, rb) = (find(parent, a), find(parent, b));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        };
        let mut store_owner: Vec<Option<NodeId>> = vec![None; graph.stores.len()];
        for (id, node) in graph.nodes.iter().enumerate() {
            for &p in &node.parents {
                union(&mut parent, id, p);
            }
            for &s in &node.stores {
                match store_owner[s] {
                    Some(o) => union(&mut parent, id, o),
                    None => store_owner[s] = Some(id),
                }
            }
        }
        let mut roots: Vec<usize> = Vec::new();
        let mut subtopologies: Vec<Subtopology> = Vec::new();
        for id in 0..n {
            let root = find(&mut parent, id);
            let idx = match roots.iter().position(|r| *r == root) {
                Some(i) => i,
                None => {
                    roots.push(root);
                    subtopologies.push(Subtopology {
                        id: roots.len() - 1,
                        nodes: Vec::new(),
                        sources: Vec::new(),
                        source_topics: Vec::new(),
                        stores: Vec::new(),
                        sink_topics: Vec::new(),
                    });
                    roots.len() - 1
                }
            };
            let sub = &mut subtopologies[idx];
            sub.nodes.push(id);
            let node = &graph.nodes[id];
            match &node.kind {
                NodeKind::Source { topics } => {
                    sub.sources.push(id);
                    sub.source_topics.extend(topics.iter().cloned());
                }
                NodeKind::Sink {
                    topic: Some(t @ TopicName::Internal(_)),
                } => sub.sink_topics.push(t.clone()),
                _ => {}
            }
            for &s in &node.stores {
                if !sub.stores.contains(&s) {
                    sub.stores.push(s);
                }
            }
        }
        // Every topic is read by one source only: two would split its records unpredictably.
        let mut seen = BTreeSet::new();
        for sub in &subtopologies {
            for t in &sub.source_topics {
                if !seen.insert(t.clone()) {
                    return Err(StreamsError::Topology(format!(
                        "topic '{}' is read by two sources; read it once and reuse the stream",
                        t.display()
                    )));
                }
            }
        }
        if subtopologies.iter().any(|s| s.sources.is_empty()) {
            return Err(StreamsError::Topology(
                "a part of the topology has no source topic".into(),
            ));
        }
        Ok(Topology {
            graph: Arc::new(graph),
            children: Arc::new(children),
            subtopologies: Arc::new(subtopologies),
        })
    }

    /// The topology as text, in the layout Kafka Streams' `Topology#describe` uses.
    pub fn describe(&self) -> String {
        describe::describe(self)
    }

    /// Every topic the topology reads that is not internal, in sorted order.
    pub fn source_topics(&self) -> Vec<String> {
        let mut topics: BTreeSet<String> = BTreeSet::new();
        for sub in self.subtopologies.iter() {
            for t in &sub.source_topics {
                if let TopicName::User(t) = t {
                    topics.insert(t.clone());
                }
            }
        }
        topics.into_iter().collect()
    }

    /// The names of the state stores, in creation order.
    pub fn store_names(&self) -> Vec<String> {
        self.graph.stores.iter().map(|s| s.name.clone()).collect()
    }
}
