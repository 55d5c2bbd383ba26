//! Table operators. A table's records are changes: the key's old value and its new one
//! (`None` on either side: absent, or deleted). Keeping the old value lets a grouped
//! table subtract what a key no longer contributes.

use std::sync::Arc;

use super::aggregate::KvAccess;
use super::{Ctx, Data, Node, Signal};
use crate::error::Result;
use crate::record::Record;
use crate::serdes::{Serde, SerdeError};

/// One change of a table row.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<V> {
    /// The value before (`None`: the key was absent).
    pub old: Option<V>,
    /// The value after (`None`: the key was deleted).
    pub new: Option<V>,
}

/// Materializes a topic as a table: a null value deletes the key.
pub(crate) struct TableSource<K, V> {
    pub kv: KvAccess<K, V>,
    pub next: Box<dyn Node<K, Change<V>>>,
}

impl<K: Data, V: Data> Node<K, Option<V>> for TableSource<K, V> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, Option<V>>) -> Result<()> {
        let kb = self.kv.key_bytes(&r.key)?;
        let old = self.kv.get(ctx, &kb)?;
        if old.is_none() && r.value.is_none() {
            return Ok(());
        }
        self.kv.put(ctx, kb, r.value.as_ref())?;
        self.next.process(ctx, r.with_change(old))
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

impl<K, V> Record<K, Option<V>> {
    fn with_change(self, old: Option<V>) -> Record<K, Change<V>> {
        Record {
            key: self.key,
            value: Change {
                old,
                new: self.value,
            },
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }
}

/// `KTable::filter`: a row that fails the predicate is absent from the result.
pub(crate) struct TableFilter<K, V, F> {
    pub pred: Arc<F>,
    pub keep_when: bool,
    pub next: Box<dyn Node<K, Change<V>>>,
}

impl<K: Data, V: Data, F> Node<K, Change<V>> for TableFilter<K, V, F>
where
    F: Fn(&K, &V) -> bool + Send + Sync,
{
    fn process(&mut self, ctx: &mut Ctx, mut r: Record<K, Change<V>>) -> Result<()> {
        let keep = |v: Option<V>| v.filter(|v| (self.pred)(&r.key, v) == self.keep_when);
        let old = keep(r.value.old.take());
        let new = keep(r.value.new.take());
        if old.is_none() && new.is_none() {
            return Ok(());
        }
        r.value = Change { old, new };
        self.next.process(ctx, r)
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

/// `KTable::map_values`.
pub(crate) struct TableMapValues<K, V2, F> {
    pub f: Arc<F>,
    pub next: Box<dyn Node<K, Change<V2>>>,
}

impl<K: Data, V: Data, V2: Data, F> Node<K, Change<V>> for TableMapValues<K, V2, F>
where
    F: Fn(&K, V) -> V2 + Send + Sync,
{
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, Change<V>>) -> Result<()> {
        let Record {
            key,
            value,
            timestamp,
            headers,
        } = r;
        let value = Change {
            old: value.old.map(|v| (self.f)(&key, v)),
            new: value.new.map(|v| (self.f)(&key, v)),
        };
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

/// `KTable::to_stream` (`deletes: false`: updates only) and `to_change_stream`.
pub(crate) struct ToStream<K, V> {
    pub next_updates: Option<Box<dyn Node<K, V>>>,
    pub next_changes: Option<Box<dyn Node<K, Option<V>>>>,
}

impl<K: Data, V: Data> Node<K, Change<V>> for ToStream<K, V> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, Change<V>>) -> Result<()> {
        if let Some(next) = &mut self.next_changes {
            return next.process(
                ctx,
                Record {
                    key: r.key,
                    value: r.value.new,
                    timestamp: r.timestamp,
                    headers: r.headers,
                },
            );
        }
        if let (Some(next), Some(v)) = (&mut self.next_updates, r.value.new) {
            next.process(
                ctx,
                Record {
                    key: r.key,
                    value: v,
                    timestamp: r.timestamp,
                    headers: r.headers,
                },
            )?;
        }
        Ok(())
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        if let Some(n) = &mut self.next_changes {
            n.signal(ctx, s)?;
        }
        if let Some(n) = &mut self.next_updates {
            n.signal(ctx, s)?;
        }
        Ok(())
    }
}

/// The key selector of `KTable::group_by`.
pub(crate) type Regroup<K, V, K2, V2> = Arc<dyn Fn(&K, &V) -> (K2, V2) + Send + Sync>;

/// `KTable::group_by`: re-keys a change as two records, subtract-old then add-new, since
/// the old and new rows may belong to different groups (and partitions).
pub(crate) struct TableRegroup<K, V, K2, V2> {
    pub select: Regroup<K, V, K2, V2>,
    pub next: Box<dyn Node<K2, Change<V2>>>,
}

impl<K: Data, V: Data, K2: Data, V2: Data> Node<K, Change<V>> for TableRegroup<K, V, K2, V2> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, Change<V>>) -> Result<()> {
        if let Some(old) = &r.value.old {
            let (k2, v2) = (self.select)(&r.key, old);
            let change = Change {
                old: Some(v2),
                new: None,
            };
            self.next.process(
                ctx,
                Record {
                    key: k2,
                    value: change,
                    timestamp: r.timestamp,
                    headers: r.headers.clone(),
                },
            )?;
        }
        if let Some(new) = &r.value.new {
            let (k2, v2) = (self.select)(&r.key, new);
            let change = Change {
                old: None,
                new: Some(v2),
            };
            self.next.process(
                ctx,
                Record {
                    key: k2,
                    value: change,
                    timestamp: r.timestamp,
                    headers: r.headers,
                },
            )?;
        }
        Ok(())
    }
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}

/// Serde for one side of a change on a repartition topic: a tag byte (0: new value,
/// 1: old value to subtract) then the value's bytes. A change with both sides is split
/// by [`TableRegroup`] before it gets here.
#[derive(Clone)]
pub(crate) struct ChangeSerde<S>(pub S);

impl<S: Serde> Serde for ChangeSerde<S> {
    type Target = Change<S::Target>;
    fn serialize(&self, value: &Self::Target) -> Result<Option<Vec<u8>>, SerdeError> {
        let (tag, v) = match (&value.old, &value.new) {
            (_, Some(new)) => (0u8, new),
            (Some(old), None) => (1u8, old),
            (None, None) => return Ok(None),
        };
        let mut out = vec![tag];
        out.extend(crate::serdes::to_bytes(&self.0, v)?);
        Ok(Some(out))
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Self::Target, SerdeError> {
        match data.and_then(|d| d.split_first()) {
            Some((0, rest)) => Ok(Change {
                old: None,
                new: Some(self.0.deserialize(Some(rest))?),
            }),
            Some((1, rest)) => Ok(Change {
                old: Some(self.0.deserialize(Some(rest))?),
                new: None,
            }),
            Some((tag, _)) => Err(SerdeError(format!("unknown change tag {tag}"))),
            None => Ok(Change {
                old: None,
                new: None,
            }),
        }
    }
    fn name(&self) -> String {
        format!("Change<{}>", self.0.name())
    }
}
