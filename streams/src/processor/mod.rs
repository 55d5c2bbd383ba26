//! The processors a topology is made of, as they run inside one task.
//!
//! A task instantiates its sub-topology as a tree of boxed [`Node`]s: each node owns its
//! children (`next`) and calls them directly, so a record moves through a chain of
//! stateless operators as plain function calls with no queue or allocation between
//! them. A node with several parents (after `merge`) is shared behind a [`Shared`] handle.
//!
//! Besides records ([`Node::process`]), [`Signal`]s flow through the tree
//! ([`Node::signal`]): stream time, which windowed operators use to close windows, as a
//! watermark flows through Flink operators; and a flush before each commit, at which
//! aggregations emit the updates their record cache holds (`emit_cache.rs`). Every node
//! passes each signal on after acting on it.

pub(crate) mod aggregate;
pub(crate) mod ctx;
pub(crate) mod emit_cache;
pub(crate) mod session;
pub(crate) mod sink;
pub(crate) mod sliding;
pub(crate) mod source;
pub(crate) mod stateless;
pub(crate) mod table;
pub(crate) mod window;

use std::sync::Arc;

use parking_lot::Mutex;

pub(crate) use ctx::Ctx;

use crate::error::Result;
use crate::record::Record;

/// Values that can flow through a topology: cloneable (a stream may feed several
/// children) and sendable (tasks move between worker threads).
pub trait Data: Clone + Send + 'static {}

impl<T: Clone + Send + 'static> Data for T {}

/// What flows through a task's nodes besides records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Stream time moved to this (ms): close what is due.
    StreamTime(i64),
    /// The task is about to commit: emit whatever is held back.
    Flush,
}

/// One operator instance in a task, taking records of type `Record<K, V>`.
pub(crate) trait Node<K, V>: Send {
    /// Handles one record, forwarding whatever it produces to its children.
    fn process(&mut self, ctx: &mut Ctx, record: Record<K, V>) -> Result<()>;

    /// Acts on a signal (see [`Signal`]), then passes it on.
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()>;
}

/// The children of a node that has none: records stop here.
pub(crate) struct Discard;

impl<K: Send, V: Send> Node<K, V> for Discard {
    fn process(&mut self, _: &mut Ctx, _: Record<K, V>) -> Result<()> {
        Ok(())
    }
    fn signal(&mut self, _: &mut Ctx, _: Signal) -> Result<()> {
        Ok(())
    }
}

/// Several children: each gets its own copy of every record.
pub(crate) struct Fanout<K, V> {
    pub children: Vec<Box<dyn Node<K, V>>>,
}

impl<K: Data, V: Data> Node<K, V> for Fanout<K, V> {
    fn process(&mut self, ctx: &mut Ctx, record: Record<K, V>) -> Result<()> {
        if let Some((last, rest)) = self.children.split_last_mut() {
            for child in rest {
                child.process(ctx, record.clone())?;
            }
            last.process(ctx, record)?;
        }
        Ok(())
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        for child in &mut self.children {
            child.signal(ctx, s)?;
        }
        Ok(())
    }
}

/// A node with several parents (a merge): each parent holds one of these handles.
///
/// The lock is never contended: a task runs on one thread at a time. Stream time may
/// arrive once per parent; every node's `signal` is idempotent for a time it has seen, and a
/// second flush finds nothing held.
pub(crate) struct Shared<K, V>(pub Arc<Mutex<Box<dyn Node<K, V>>>>);

impl<K, V> Node<K, V> for Shared<K, V> {
    fn process(&mut self, ctx: &mut Ctx, record: Record<K, V>) -> Result<()> {
        self.0.lock().process(ctx, record)
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.0.lock().signal(ctx, s)
    }
}
