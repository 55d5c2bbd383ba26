//! Aggregation over tumbling and hopping windows into a window store.
//!
//! Windows are closed as stream time passes `end + grace`: with
//! [`EmitStrategy::OnWindowClose`] each closed window's aggregate goes downstream once;
//! either way the window then leaves the store, since no record may change it any more.
//! The starts of open windows are kept in memory (rebuilt by one scan after a restore) so
//! the common case — nothing to close — costs a comparison, not a store scan.

use std::collections::BTreeSet;

use super::aggregate::{Fold, KvAccess};
use super::emit_cache::CachedOutput;
use super::table::Change;
use super::{Ctx, Data, Node, Signal};
use crate::error::Result;
use crate::record::Record;
use crate::serdes::Serde;
use crate::state::StoreHandle;
use crate::state::layout::{STREAM_TIME_KEY, set_window_start, split_window_key, time_bytes};
use crate::window::{EmitStrategy, TimeWindows, Window, Windowed};

pub(crate) struct TimeWindowAggregate<K, V, A> {
    pub windows: TimeWindows,
    pub emit: EmitStrategy,
    /// The window store; its key serde is the grouping key's.
    pub kv: KvAccess<K, A>,
    pub fold: Fold<K, V, A>,
    pub open_starts: BTreeSet<i64>,
    /// Whether `open_starts` has been read from the store since the task started.
    pub scanned: bool,
    /// The store key of the record being processed (reused: no allocation per record).
    pub key_buf: Vec<u8>,
    /// Downstream, behind the record cache (used by `EmitStrategy::OnWindowUpdate` only).
    pub out: CachedOutput<Windowed<K>, A>,
}

impl<K: Data, V: Data, A: Data> TimeWindowAggregate<K, V, A> {
    fn scan(&mut self, ctx: &mut Ctx) -> Result<()> {
        restore_stream_time(ctx, self.kv.store)?;
        let mut starts = BTreeSet::new();
        ctx.store_range(self.kv.store, &[], None, &mut |k, _| {
            if let Some((start, _)) = split_window_key(k) {
                starts.insert(start);
            }
            true
        })?;
        self.open_starts = starts;
        self.scanned = true;
        Ok(())
    }

    fn close_time(&self, w: &Window) -> i64 {
        w.end.saturating_add(self.windows.grace_ms)
    }
}

impl<K: Data, V: Data, A: Data> Node<K, V> for TimeWindowAggregate<K, V, A> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<K, V>) -> Result<()> {
        if !self.scanned {
            self.scan(ctx)?;
        }
        // The store key is built once per record in a buffer the node keeps, and moved
        // from window to window by rewriting its first 8 bytes.
        let mut wk = std::mem::take(&mut self.key_buf);
        self.kv.window_key_into(0, &r.key, &mut wk)?;
        let mut late = false;
        for w in self.windows.windows_for(r.timestamp) {
            if self.close_time(&w) <= ctx.stream_time {
                late = true;
                continue;
            }
            set_window_start(&mut wk, w.start);
            let fold = &self.fold;
            let (old, new) = self
                .kv
                .update(ctx, &wk, |old| fold(&r.key, r.value.clone(), old))?;
            self.open_starts.insert(w.start);
            if self.emit == EmitStrategy::OnWindowUpdate {
                let key = || Windowed {
                    key: r.key.clone(),
                    window: w,
                };
                let change = Change {
                    old,
                    new: Some(new),
                };
                let meta = (r.timestamp, &r.headers[..]);
                self.out.send(&self.kv, ctx, &wk, key, change, meta)?;
            }
        }
        self.key_buf = wk;
        if late {
            ctx.stats.dropped_late += 1;
        }
        Ok(())
    }

    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        let t = match s {
            Signal::StreamTime(t) => t,
            Signal::Flush => return self.out.signal(&self.kv, ctx, s),
        };
        if !self.scanned {
            self.scan(ctx)?;
        }
        // A window closes when end + grace <= t, i.e. start <= t - size - grace.
        let bound = t
            .saturating_sub(self.windows.size_ms)
            .saturating_sub(self.windows.grace_ms);
        if self.open_starts.first().is_some_and(|s| *s <= bound) {
            // Updates of the windows about to close go out before they leave the store.
            self.out.emit_held(&self.kv, ctx)?;
            let mut closed = Vec::new();
            let to = time_bytes(bound.saturating_add(1));
            let upper = (bound < i64::MAX).then_some(&to[..]);
            ctx.store_range(self.kv.store, &[], upper, &mut |k, v| {
                closed.push((k.to_vec(), v.to_vec()));
                true
            })?;
            for (k, v) in closed {
                let Some((start, kb)) = split_window_key(&k) else {
                    continue;
                };
                if self.emit == EmitStrategy::OnWindowClose {
                    let key = self.kv.key.deserialize(Some(kb)).map_err(|e| {
                        crate::error::StreamsError::state(&self.kv.store_name, ctx.task, e)
                    })?;
                    let agg = self.kv.value.deserialize(Some(&v)).map_err(|e| {
                        crate::error::StreamsError::state(&self.kv.store_name, ctx.task, e)
                    })?;
                    let window = Window {
                        start,
                        end: start + self.windows.size_ms,
                    };
                    self.out.next.process(
                        ctx,
                        Record::new(
                            Windowed { key, window },
                            Change {
                                old: None,
                                new: Some(agg),
                            },
                            window.end - 1,
                        ),
                    )?;
                }
                ctx.store_put(self.kv.store, k, None)?;
            }
            self.open_starts = self.open_starts.split_off(&bound.saturating_add(1));
            save_stream_time(ctx, self.kv.store, t)?;
        }
        self.out.next.signal(ctx, s)
    }
}

/// Stream time as of the store's last close: after a restart, records for windows that
/// closed (and were emitted and deleted) before it are late again, not new windows.
pub(crate) fn restore_stream_time(ctx: &mut Ctx, store: StoreHandle) -> Result<()> {
    if let Some(b) = ctx.store_get(store, STREAM_TIME_KEY)?
        && let Ok(b) = <[u8; 8]>::try_from(b.as_slice())
    {
        ctx.stream_time = ctx.stream_time.max(i64::from_be_bytes(b));
    }
    Ok(())
}

/// Records `t` as the stream time of the latest close (logged with the store).
pub(crate) fn save_stream_time(ctx: &mut Ctx, store: StoreHandle, t: i64) -> Result<()> {
    ctx.store_put(
        store,
        STREAM_TIME_KEY.to_vec(),
        Some(t.to_be_bytes().to_vec()),
    )
}
