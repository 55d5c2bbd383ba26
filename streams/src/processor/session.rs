//! Aggregation over session windows into a session store.
//!
//! A record joins every session of its key that it is within the gap of; they merge
//! into one session spanning them all (a record exactly `gap` after a session's last one
//! still joins it). A session closes when stream time passes `end + gap + grace`: until
//! then an accepted record could still extend it. Open sessions are
//! indexed by end in memory (rebuilt by one scan after a restore) so closing them is not
//! a scan of the store.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::aggregate::{Fold, KvAccess};
use super::table::Change;
use super::{Ctx, Data, Node, Signal};
use crate::error::{Result, StreamsError};
use crate::record::Record;
use crate::serdes::Serde;
use crate::state::layout::{keyed_key, keyed_prefix, prefix_end, split_keyed_key};
use crate::window::{EmitStrategy, SessionWindows, Window, Windowed};

/// Merges two sessions' aggregates into one.
pub(crate) type Merge<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;

pub(crate) struct SessionAggregate<K, V, A> {
    pub windows: SessionWindows,
    pub emit: EmitStrategy,
    pub kv: KvAccess<K, A>,
    pub fold: Fold<K, V, A>,
    pub merge: Merge<K, A>,
    /// (end, key bytes, start) of every session in the store.
    pub open: BTreeSet<(i64, Vec<u8>, i64)>,
    pub scanned: bool,
    pub next: Box<dyn Node<Windowed<K>, Change<A>>>,
}

impl<K: Data, V: Data, A: Data> SessionAggregate<K, V, A> {
    fn scan(&mut self, ctx: &mut Ctx) -> Result<()> {
        super::window::restore_stream_time(ctx, self.kv.store)?;
        let mut open = BTreeSet::new();
        ctx.store_range(self.kv.store, &[], None, &mut |k, _| {
            if let Some((kb, end, start)) = split_keyed_key(k) {
                open.insert((end, kb.to_vec(), start));
            }
            true
        })?;
        self.open = open;
        self.scanned = true;
        Ok(())
    }

    fn agg_of(&self, ctx: &Ctx, bytes: &[u8]) -> Result<A> {
        self.kv
            .value
            .deserialize(Some(bytes))
            .map_err(|e| StreamsError::state(&self.kv.store_name, ctx.task, e))
    }

    fn forward(
        &mut self,
        ctx: &mut Ctx,
        key: &K,
        w: Window,
        change: Change<A>,
        ts: i64,
    ) -> Result<()> {
        self.next.process(
            ctx,
            Record::new(
                Windowed {
                    key: key.clone(),
                    window: w,
                },
                change,
                ts,
            ),
        )
    }

    fn closes_at(&self, end: i64) -> i64 {
        end.saturating_add(self.windows.gap_ms)
            .saturating_add(self.windows.grace_ms)
    }
}

impl<K: Data, V: Data, A: Data> Node<K, V> for SessionAggregate<K, V, A> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        if !self.scanned {
            self.scan(ctx)?;
        }
        let ts = r.timestamp;
        let gap = self.windows.gap_ms;
        let kb = self.kv.key_bytes(&r.key)?;
        // Sessions of this key ending at or after ts - gap and starting at or before ts + gap.
        let from = keyed_key(&kb, ts.saturating_sub(gap), i64::MIN);
        let to = prefix_end(&keyed_prefix(&kb));
        let mut found: Vec<(Vec<u8>, i64, i64, Vec<u8>)> = Vec::new();
        ctx.store_range(self.kv.store, &from, to.as_deref(), &mut |k, v| {
            if let Some((_, end, start)) = split_keyed_key(k)
                && start <= ts.saturating_add(gap)
            {
                found.push((k.to_vec(), end, start, v.to_vec()));
            }
            true
        })?;
        found.sort_by_key(|f| f.2);
        let start = found.iter().map(|f| f.2).chain([ts]).min().unwrap_or(ts);
        let end = found.iter().map(|f| f.1).chain([ts]).max().unwrap_or(ts);
        if self.closes_at(end) < ctx.stream_time {
            ctx.stats.dropped_late += 1;
            return Ok(());
        }
        let mut merged: Option<A> = None;
        let mut same_window_old = None;
        for (k, old_end, old_start, v) in &found {
            let agg = self.agg_of(ctx, v)?;
            let window = Window {
                start: *old_start,
                end: *old_end,
            };
            ctx.store_put(self.kv.store, k.clone(), None)?;
            self.open.remove(&(*old_end, kb.clone(), *old_start));
            if *old_start == start && *old_end == end {
                same_window_old = Some(agg.clone());
            } else if self.emit == EmitStrategy::OnWindowUpdate {
                let change = Change {
                    old: Some(agg.clone()),
                    new: None,
                };
                self.forward(ctx, &r.key, window, change, ts)?;
            }
            merged = Some(match merged {
                None => agg,
                Some(m) => (self.merge)(&r.key, m, agg),
            });
        }
        let new = (self.fold)(&r.key, r.value, merged);
        self.kv.put(ctx, keyed_key(&kb, end, start), Some(&new))?;
        self.open.insert((end, kb, start));
        if self.emit == EmitStrategy::OnWindowUpdate {
            let change = Change {
                old: same_window_old,
                new: Some(new),
            };
            self.forward(ctx, &r.key, Window { start, end }, change, ts)?;
        }
        Ok(())
    }

    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        let Signal::StreamTime(t) = s else {
            return self.next.signal(ctx, s);
        };
        if !self.scanned {
            self.scan(ctx)?;
        }
        let mut closed_any = false;
        while let Some((end, kb, start)) = self.open.first().cloned() {
            if self.closes_at(end) >= t {
                break;
            }
            closed_any = true;
            self.open.pop_first();
            let sk = keyed_key(&kb, end, start);
            if self.emit == EmitStrategy::OnWindowClose
                && let Some(agg) = self.kv.get(ctx, &sk)?
            {
                let key = self
                    .kv
                    .key
                    .deserialize(Some(&kb))
                    .map_err(|e| StreamsError::state(&self.kv.store_name, ctx.task, e))?;
                let change = Change {
                    old: None,
                    new: Some(agg),
                };
                self.forward(ctx, &key, Window { start, end }, change, end)?;
            }
            ctx.store_put(self.kv.store, sk, None)?;
        }
        if closed_any {
            super::window::save_stream_time(ctx, self.kv.store, t)?;
        }
        self.next.signal(ctx, s)
    }
}
