//! The processors a topology is made of, as they run inside one task.
//!
//! A task instantiates its sub-topology as a tree of boxed [`Node`]s: each node owns its
//! children (`next`) and calls them directly, so a record moves through a chain of
//! stateless operators as plain function calls with no queue or allocation between
//! them. A node with several parents (after `merge`) is shared behind a [`Shared`] handle.
//!
//! Two signals flow through the tree: records ([`Node::process`]) and stream time
//! ([`Node::advance`]), which windowed operators use to close windows and every other
//! node passes on, as a watermark flows through Flink operators.

pub(crate) mod aggregate;
pub(crate) mod ctx;
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

/// One operator instance in a task, taking records of type `Record<K, V>`.
pub(crate) trait Node<K, V>: Send {
    /// Handles one record, forwarding whatever it produces to its children.
    fn process(&mut self, ctx: &mut Ctx, record: Record<K, V>) -> Result<()>;

    /// Stream time moved to `stream_time`: close what is due, then pass it on.
    fn advance(&mut self, ctx: &mut Ctx, stream_time: i64) -> Result<()>;
}

/// The children of a node that has none: records stop here.
pub(crate) struct Discard;

impl<K: Send, V: Send> Node<K, V> for Discard {
    fn process(&mut self, _: &mut Ctx, _: Record<K, V>) -> Result<()> {
        Ok(())
    }
    fn advance(&mut self, _: &mut Ctx, _: i64) -> Result<()> {
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
    fn advance(&mut self, ctx: &mut Ctx, stream_time: i64) -> Result<()> {
        for child in &mut self.children {
            child.advance(ctx, stream_time)?;
        }
        Ok(())
    }
}

/// A node with several parents (a merge): each parent holds one of these handles.
///
/// The lock is never contended: a task runs on one thread at a time. Stream time may
/// arrive once per parent; every node's `advance` is idempotent for a time it has seen.
pub(crate) struct Shared<K, V>(pub Arc<Mutex<Box<dyn Node<K, V>>>>);

impl<K, V> Node<K, V> for Shared<K, V> {
    fn process(&mut self, ctx: &mut Ctx, record: Record<K, V>) -> Result<()> {
        self.0.lock().process(ctx, record)
    }
    fn advance(&mut self, ctx: &mut Ctx, stream_time: i64) -> Result<()> {
        self.0.lock().advance(ctx, stream_time)
    }
}
