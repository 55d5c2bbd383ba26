//! A task: one sub-topology over one partition of its inputs, with its stores, its
//! buffered input and its stream time.
//!
//! Records are taken from the input partitions in timestamp order (the lowest head
//! first), so co-partitioned inputs interleave as their event times do. Stream time is
//! the largest event time seen; when the task's inputs go quiet for the idle timeout,
//! stream time follows the wall clock from the last record on, so windows still close
//! (Kafka Streams leaves them open until a new record arrives).

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::error::{Result, StreamsError};
use crate::processor::ctx::TaskStats;
use crate::record::{InputRecord, OutputRecord};
use crate::topology::{TaskGraph, TaskId};

pub(crate) struct Task {
    pub id: TaskId,
    graph: TaskGraph,
    queues: BTreeMap<(String, i32), VecDeque<InputRecord>>,
    /// Input partition -> the offset after the last record processed (what to commit).
    pub consumed: HashMap<(String, i32), i64>,
    /// Stream time nodes were last advanced to.
    advanced: i64,
    /// Wall-clock ms and stream time when the last record was processed.
    last_record: Option<(i64, i64)>,
    idle_timeout_ms: Option<i64>,
}

impl Task {
    pub fn new(id: TaskId, graph: TaskGraph, idle_timeout_ms: Option<i64>) -> Self {
        Task {
            id,
            graph,
            queues: BTreeMap::new(),
            consumed: HashMap::new(),
            advanced: i64::MIN,
            last_record: None,
            idle_timeout_ms,
        }
    }

    /// Whether this task reads `topic`.
    pub fn reads(&self, topic: &str) -> bool {
        self.graph.by_topic.contains_key(topic)
    }

    /// Buffers records read from one of this task's input partitions.
    pub fn add(&mut self, record: InputRecord) {
        self.queues
            .entry((record.topic.clone(), record.partition))
            .or_default()
            .push_back(record);
    }

    /// Records buffered and not yet processed.
    pub fn buffered(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    /// Processes the buffered record with the lowest timestamp; false if none.
    pub fn process_next(&mut self, now_ms: i64) -> Result<bool> {
        let next = self
            .queues
            .iter_mut()
            .filter_map(|(k, q)| q.front().map(|r| (r.timestamp, k.clone())))
            .min();
        let Some((_, key)) = next else {
            return Ok(false);
        };
        let record = self
            .queues
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
            .ok_or_else(|| StreamsError::Topology("task queue vanished".into()))?;
        self.process(record, now_ms)?;
        Ok(true)
    }

    /// Processes one record now (the test driver's path; the runtime buffers first).
    pub fn process(&mut self, record: InputRecord, now_ms: i64) -> Result<()> {
        let source = *self.graph.by_topic.get(&record.topic).ok_or_else(|| {
            StreamsError::Topology(format!("task {} does not read {}", self.id, record.topic))
        })?;
        self.consumed
            .insert((record.topic.clone(), record.partition), record.offset + 1);
        let node = self
            .graph
            .sources
            .get_mut(source)
            .ok_or_else(|| StreamsError::Topology("source index".into()))?;
        node.process(&mut self.graph.ctx, record)?;
        self.last_record = Some((now_ms, self.graph.ctx.stream_time));
        self.advance_nodes()
    }

    fn advance_nodes(&mut self) -> Result<()> {
        let t = self.graph.ctx.stream_time;
        if t > self.advanced {
            self.advanced = t;
            for source in &mut self.graph.sources {
                source.advance(&mut self.graph.ctx, t)?;
            }
        }
        Ok(())
    }

    /// Lets stream time follow the wall clock after the idle timeout without records.
    pub fn on_wall_clock(&mut self, now_ms: i64) -> Result<()> {
        let (Some(timeout), Some((wall, stream))) = (self.idle_timeout_ms, self.last_record) else {
            return Ok(());
        };
        let quiet = now_ms - wall;
        if quiet >= timeout && self.buffered() == 0 {
            let t = stream.saturating_add(quiet);
            if t > self.graph.ctx.stream_time {
                self.graph.ctx.stream_time = t;
                self.advance_nodes()?;
            }
        }
        Ok(())
    }

    /// The output produced since the last call (job output, repartition, changelog).
    pub fn take_output(&mut self) -> Vec<OutputRecord> {
        std::mem::take(&mut self.graph.ctx.out)
    }

    /// Flushes store caches into the stores and their changelogs (output grows).
    pub fn flush(&mut self) -> Result<()> {
        self.graph.ctx.flush_stores()
    }

    /// Makes the stores durable (after a commit, before writing a checkpoint).
    pub fn persist_stores(&mut self) -> Result<()> {
        for s in &mut self.graph.ctx.stores {
            s.persist()?;
        }
        Ok(())
    }

    pub fn stats(&self) -> TaskStats {
        self.graph.ctx.stats
    }

    pub fn stores_mut(&mut self) -> &mut [crate::state::Store] {
        &mut self.graph.ctx.stores
    }

    /// Every entry of the store `name`, flushed first.
    pub fn store_entries(&mut self, name: &str) -> Result<Option<crate::state::Entries>> {
        let ctx = &mut self.graph.ctx;
        let ts = ctx.stream_time.max(0);
        let Some(store) = ctx.stores.iter_mut().find(|s| s.name == name) else {
            return Ok(None);
        };
        store.entries(&mut ctx.out, ts).map(Some)
    }
}
