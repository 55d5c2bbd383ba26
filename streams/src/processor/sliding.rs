//! Aggregation over sliding windows: for each record at `t`, the window `[t - D, t]` of
//! its key's records.
//!
//! The records themselves are buffered (a sliding-buffer store, keyed by key, timestamp
//! and a sequence number) and each window's aggregate is folded from them when it is
//! emitted, so any aggregate works, not only invertible ones. A new record also changes
//! the open windows of later records within `D` of it; with emit-on-update those are
//! emitted again. A record is late when its own window has closed (stream time past
//! `t + grace`). Records leave the buffer once no open window can hold them.

use std::collections::BTreeSet;

use super::aggregate::Fold;
use super::table::Change;
use super::window::{restore_stream_time, save_stream_time};
use super::{Ctx, Data, Node, Signal};
use crate::error::{Result, StreamsError};
use crate::record::Record;
use crate::serdes::{Serde, SerdeRef, to_bytes};
use crate::state::StoreHandle;
use crate::state::layout::{keyed_key, split_keyed_key};
use crate::window::{EmitStrategy, SlidingWindows, Window, Windowed};

pub(crate) struct SlidingAggregate<K, V, A> {
    pub windows: SlidingWindows,
    pub emit: EmitStrategy,
    pub store: StoreHandle,
    pub store_name: std::sync::Arc<str>,
    pub key: SerdeRef<K>,
    pub value: SerdeRef<V>,
    pub fold: Fold<K, V, A>,
    /// (timestamp, key bytes, sequence) of every buffered record.
    pub index: BTreeSet<(i64, Vec<u8>, i64)>,
    pub next_seq: i64,
    /// Windows ending at or before this were emitted (emit-on-close).
    pub closed_through: i64,
    pub scanned: bool,
    pub next: Box<dyn Node<Windowed<K>, Change<A>>>,
}

impl<K: Data, V: Data, A: Data> SlidingAggregate<K, V, A> {
    fn err(&self, ctx: &Ctx, e: impl ToString) -> StreamsError {
        StreamsError::state(&self.store_name, ctx.task, e)
    }

    fn scan(&mut self, ctx: &mut Ctx) -> Result<()> {
        restore_stream_time(ctx, self.store)?;
        let mut index = BTreeSet::new();
        ctx.store_range(self.store, &[], None, &mut |k, _| {
            if let Some((kb, ts, seq)) = split_keyed_key(k) {
                index.insert((ts, kb.to_vec(), seq));
            }
            true
        })?;
        self.next_seq = index.iter().map(|e| e.2 + 1).max().unwrap_or(0);
        self.index = index;
        if ctx.stream_time > i64::MIN {
            self.closed_through = ctx
                .stream_time
                .saturating_sub(self.windows.grace_ms)
                .saturating_sub(1);
        }
        self.scanned = true;
        Ok(())
    }

    /// The aggregate of `kb`'s records in `[end - D, end]`.
    fn aggregate(&self, ctx: &mut Ctx, key: &K, kb: &[u8], end: i64) -> Result<Option<A>> {
        let from = keyed_key(kb, end.saturating_sub(self.windows.difference_ms), i64::MIN);
        let to = keyed_key(kb, end, i64::MAX);
        let mut values = Vec::new();
        ctx.store_range(self.store, &from, None, &mut |k, v| {
            if k > to.as_slice() {
                return false;
            }
            values.push(v.to_vec());
            true
        })?;
        let mut agg = None;
        for v in values {
            let v = self
                .value
                .deserialize(Some(&v))
                .map_err(|e| self.err(ctx, e))?;
            agg = Some((self.fold)(key, v, agg));
        }
        Ok(agg)
    }

    fn emit_window(&mut self, ctx: &mut Ctx, key: &K, kb: &[u8], end: i64) -> Result<()> {
        if let Some(agg) = self.aggregate(ctx, key, kb, end)? {
            let window = Window {
                start: end.saturating_sub(self.windows.difference_ms),
                end,
            };
            let record = Record::new(
                Windowed {
                    key: key.clone(),
                    window,
                },
                Change {
                    old: None,
                    new: Some(agg),
                },
                end,
            );
            self.next.process(ctx, record)?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data, A: Data> Node<K, V> for SlidingAggregate<K, V, A> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        if !self.scanned {
            self.scan(ctx)?;
        }
        let t = r.timestamp;
        if t.saturating_add(self.windows.grace_ms) < ctx.stream_time {
            ctx.stats.dropped_late += 1;
            return Ok(());
        }
        let kb = to_bytes(&self.key, &r.key).map_err(|e| self.err(ctx, e))?;
        let vb = to_bytes(&self.value, &r.value).map_err(|e| self.err(ctx, e))?;
        let seq = self.next_seq;
        self.next_seq += 1;
        ctx.store_put(self.store, keyed_key(&kb, t, seq), Some(vb))?;
        self.index.insert((t, kb.clone(), seq));
        if self.emit == EmitStrategy::OnWindowUpdate {
            // Its own window, then the later windows of this key it now falls into.
            let mut ends: Vec<i64> = self
                .index
                .range((t, kb.clone(), i64::MIN)..)
                .take_while(|(ts, _, _)| *ts <= t.saturating_add(self.windows.difference_ms))
                .filter(|(_, k, _)| *k == kb)
                .map(|(ts, _, _)| *ts)
                .collect();
            ends.dedup();
            for end in ends {
                self.emit_window(ctx, &r.key, &kb, end)?;
            }
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
        // Windows end at a record (inclusive): one ending at `e` closes once stream time
        // passes `e + grace`.
        let close_bound = t.saturating_sub(self.windows.grace_ms).saturating_sub(1);
        if self.emit == EmitStrategy::OnWindowClose && close_bound > self.closed_through {
            let due: Vec<(i64, Vec<u8>)> = self
                .index
                .range((self.closed_through.saturating_add(1), Vec::new(), i64::MIN)..)
                .take_while(|(ts, _, _)| *ts <= close_bound)
                .map(|(ts, kb, _)| (*ts, kb.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            for (end, kb) in &due {
                let key = self
                    .key
                    .deserialize(Some(kb))
                    .map_err(|e| self.err(ctx, e))?;
                self.emit_window(ctx, &key, kb, *end)?;
            }
            self.closed_through = close_bound;
            if !due.is_empty() {
                save_stream_time(ctx, self.store, t)?;
            }
        }
        // No open or future window reaches back past this.
        let keep_from = close_bound.saturating_sub(self.windows.difference_ms);
        while let Some((ts, kb, seq)) = self.index.first().cloned() {
            if ts >= keep_from {
                break;
            }
            self.index.pop_first();
            ctx.store_put(self.store, keyed_key(&kb, ts, seq), None)?;
        }
        self.next.signal(ctx, s)
    }
}
