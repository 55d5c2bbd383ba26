//! Turning a sub-topology into a task's tree of nodes.
//!
//! Factories run from the sources down: each node's factory asks the [`Instantiator`] for
//! its children, which builds them first. A node with several parents is built once and
//! shared; a store is opened once per task, however many nodes use it.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Build, Factory, NodeId, StoreDesc, StoreId, TaskId, TopicName, Topology};
use crate::error::{Result, StreamsError};
use crate::processor::source::{DeserializationHandler, SourceNode};
use crate::processor::{Ctx, Data, Discard, Fanout, Node, Shared};
use crate::state::{Store, StoreHandle};

/// A task's instantiated sub-topology.
pub(crate) struct TaskGraph {
    pub sources: Vec<Box<dyn SourceNode>>,
    /// Input topic (full name) -> index in `sources`.
    pub by_topic: HashMap<String, usize>,
    pub ctx: Ctx,
}

/// Opens a store for a task (the runtime's engines, or memory in the test driver).
pub(crate) type OpenStore<'a> = dyn FnMut(&StoreDesc, TaskId) -> Result<Store> + 'a;

pub(crate) struct Instantiator<'a> {
    topology: &'a Topology,
    pub application_id: &'a str,
    pub task: TaskId,
    /// What sources do with records they cannot deserialize, unless told otherwise.
    pub on_deserialization_error: DeserializationHandler,
    memo: HashMap<NodeId, Box<dyn Any + Send>>,
    store_handles: HashMap<StoreId, StoreHandle>,
    stores: Vec<Store>,
    open_store: &'a mut OpenStore<'a>,
}

impl Topology {
    pub(crate) fn instantiate<'a>(
        &'a self,
        application_id: &'a str,
        task: TaskId,
        on_deserialization_error: DeserializationHandler,
        open_store: &'a mut OpenStore<'a>,
    ) -> Result<TaskGraph> {
        let sub = self.subtopologies.get(task.subtopology).ok_or_else(|| {
            StreamsError::Topology(format!("no sub-topology {}", task.subtopology))
        })?;
        let mut inst = Instantiator {
            topology: self,
            application_id,
            task,
            on_deserialization_error,
            memo: HashMap::new(),
            store_handles: HashMap::new(),
            stores: Vec::new(),
            open_store,
        };
        let mut sources = Vec::new();
        let mut by_topic = HashMap::new();
        for &id in &sub.sources {
            let Build::Source(factory) = &self.graph.builds[id] else {
                return Err(internal("a source node without a source factory"));
            };
            let node = factory.clone()(&mut inst, id)?;
            if let super::NodeKind::Source { topics } = &self.graph.nodes[id].kind {
                for t in topics {
                    by_topic.insert(t.resolve(application_id), sources.len());
                }
            }
            sources.push(node);
        }
        let mut ctx = Ctx::new(task);
        ctx.stores = inst.stores;
        Ok(TaskGraph {
            sources,
            by_topic,
            ctx,
        })
    }
}

fn internal(what: &str) -> StreamsError {
    StreamsError::Topology(format!("internal error, please report: {what}"))
}

impl Instantiator<'_> {
    /// The children of `id` as one node (nothing, the only child, or a fan-out).
    pub fn children<K: Data, V: Data>(&mut self, id: NodeId) -> Result<Box<dyn Node<K, V>>> {
        let mut list = self.child_list::<K, V>(id)?;
        Ok(match list.len() {
            0 => Box::new(Discard),
            1 => list.pop().ok_or_else(|| internal("child list"))?,
            _ => Box::new(Fanout { children: list }),
        })
    }

    /// The children of `id`, in the order they were added.
    pub fn child_list<K: Data, V: Data>(&mut self, id: NodeId) -> Result<Vec<Box<dyn Node<K, V>>>> {
        let children = self.topology.children[id].clone();
        children
            .into_iter()
            .map(|c| self.build::<K, V>(c))
            .collect()
    }

    fn build<K: Data, V: Data>(&mut self, id: NodeId) -> Result<Box<dyn Node<K, V>>> {
        let shared = self.topology.graph.nodes[id].parents.len() > 1;
        if shared && let Some(node) = self.memo.get(&id) {
            let node = node
                .downcast_ref::<Arc<Mutex<Box<dyn Node<K, V>>>>>()
                .ok_or_else(|| internal("shared node type"))?;
            return Ok(Box::new(Shared(node.clone())));
        }
        let Build::Node(any) = &self.topology.graph.builds[id] else {
            return Err(internal("a processor node built as a source"));
        };
        let factory = any
            .downcast_ref::<Factory<K, V>>()
            .ok_or_else(|| internal("node factory type"))?
            .clone();
        let node = factory(self, id)?;
        if shared {
            let node = Arc::new(Mutex::new(node));
            self.memo.insert(id, Box::new(node.clone()));
            return Ok(Box::new(Shared(node)));
        }
        Ok(node)
    }

    /// The task's instance of store `id`, opened on first use.
    pub fn store(&mut self, id: StoreId) -> Result<StoreHandle> {
        if let Some(h) = self.store_handles.get(&id) {
            return Ok(*h);
        }
        let desc = self
            .topology
            .graph
            .stores
            .get(id)
            .ok_or_else(|| internal("store id"))?;
        let store = (self.open_store)(desc, self.task)?;
        let h = StoreHandle(self.stores.len());
        self.stores.push(store);
        self.store_handles.insert(id, h);
        Ok(h)
    }

    /// A topic's full name.
    pub fn topic(&self, t: &TopicName) -> String {
        t.resolve(self.application_id)
    }
}
