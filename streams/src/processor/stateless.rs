//! Record-at-a-time operators: each holds the user's function and its children.

use std::sync::Arc;

use super::{Ctx, Data, Node, Signal};
use crate::error::Result;
use crate::record::Record;

/// Passes records and time on unchanged (merge points and branch heads).
pub(crate) struct Pass<K, V> {
    pub next: Box<dyn Node<K, V>>,
}

impl<K: Data, V: Data> Node<K, V> for Pass<K, V> {
    fn process(&mut self, ctx: &mut Ctx, record: Record<K, V>) -> Result<()> {
        self.next.process(ctx, record)
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

pub(crate) struct Filter<K, V, F> {
    pub pred: Arc<F>,
    /// `false` for `filter_not`.
    pub keep_when: bool,
    pub next: Box<dyn Node<K, V>>,
}

impl<K: Data, V: Data, F> Node<K, V> for Filter<K, V, F>
where
    F: Fn(&K, &V) -> bool + Send + Sync,
{
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        if (self.pred)(&r.key, &r.value) == self.keep_when {
            self.next.process(ctx, r)?;
        }
        Ok(())
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

pub(crate) struct Map<K2, V2, F> {
    pub f: Arc<F>,
    pub next: Box<dyn Node<K2, V2>>,
}

impl<K: Data, V: Data, K2: Data, V2: Data, F> Node<K, V> for Map<K2, V2, F>
where
    F: Fn(K, V) -> (K2, V2) + Send + Sync,
{
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        let Record {
            key,
            value,
            timestamp,
            headers,
        } = r;
        let (key, value) = (self.f)(key, value);
        self.next.process(
            ctx,
            Record {
                key,
                value,
                timestamp,
                headers,
            },
        )
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

pub(crate) struct MapValues<K, V2, F> {
    pub f: Arc<F>,
    pub next: Box<dyn Node<K, V2>>,
}

impl<K: Data, V: Data, V2: Data, F> Node<K, V> for MapValues<K, V2, F>
where
    F: Fn(&K, V) -> V2 + Send + Sync,
{
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        let value = (self.f)(&r.key, r.value);
        self.next.process(
            ctx,
            Record {
                key: r.key,
                value,
                timestamp: r.timestamp,
                headers: r.headers,
            },
        )
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

pub(crate) struct FlatMap<K2, V2, F> {
    pub f: Arc<F>,
    pub next: Box<dyn Node<K2, V2>>,
}

impl<K: Data, V: Data, K2: Data, V2: Data, F, I> Node<K, V> for FlatMap<K2, V2, F>
where
    F: Fn(K, V) -> I + Send + Sync,
    I: IntoIterator<Item = (K2, V2)>,
{
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        let (ts, headers) = (r.timestamp, r.headers);
        for (key, value) in (self.f)(r.key, r.value) {
            self.next.process(
                ctx,
                Record {
                    key,
                    value,
                    timestamp: ts,
                    headers: headers.clone(),
                },
            )?;
        }
        Ok(())
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

pub(crate) struct FlatMapValues<K, V2, F> {
    pub f: Arc<F>,
    pub next: Box<dyn Node<K, V2>>,
}

impl<K: Data, V: Data, V2: Data, F, I> Node<K, V> for FlatMapValues<K, V2, F>
where
    F: Fn(&K, V) -> I + Send + Sync,
    I: IntoIterator<Item = V2>,
{
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        let Record {
            key,
            value,
            timestamp,
            headers,
        } = r;
        for value in (self.f)(&key, value) {
            self.next.process(
                ctx,
                Record {
                    key: key.clone(),
                    value,
                    timestamp,
                    headers: headers.clone(),
                },
            )?;
        }
        Ok(())
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

/// `peek` (with children) and `foreach` (without).
pub(crate) struct Peek<K, V, F> {
    pub f: Arc<F>,
    pub next: Box<dyn Node<K, V>>,
}

impl<K: Data, V: Data, F> Node<K, V> for Peek<K, V, F>
where
    F: Fn(&K, &V) + Send + Sync,
{
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        (self.f)(&r.key, &r.value);
        self.next.process(ctx, r)
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

/// A predicate of `split`; `None` is the default branch.
pub(crate) type BranchPredicate<K, V> = Option<Arc<dyn Fn(&K, &V) -> bool + Send + Sync>>;

/// Sends each record to the first branch whose predicate holds (or the default branch).
pub(crate) struct Split<K, V> {
    pub predicates: Vec<BranchPredicate<K, V>>,
    pub branches: Vec<Box<dyn Node<K, V>>>,
}

impl<K: Data, V: Data> Node<K, V> for Split<K, V> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        let hit = self
            .predicates
            .iter()
            .position(|p| p.as_ref().is_none_or(|p| p(&r.key, &r.value)));
        if let Some(branch) = hit.and_then(|i| self.branches.get_mut(i)) {
            branch.process(ctx, r)?;
        }
        Ok(())
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        for b in &mut self.branches {
            b.signal(ctx, s)?;
        }
        Ok(())
    }
}
