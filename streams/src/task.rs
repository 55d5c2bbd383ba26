//! A task: one sub-topology over one partition of its inputs, with its stores, its
//! buffered input and its stream time.
//!
//! Records are taken from the input partitions in timestamp order (the lowest head
//! first), so co-partitioned inputs interleave as their event times do. Stream time is
//! the largest event time seen; when the task's inputs go quiet for the idle timeout,
//! stream time follows the wall clock from the last record on, so windows still close
//! (Kafka Streams leaves them open until a new record arrives).

use std::collections::VecDeque;

use crate::error::{Result, StreamsError};
use crate::processor::Signal;
use crate::processor::ctx::TaskStats;
use crate::record::{InputRecord, OutputRecord};
use crate::topology::{TaskGraph, TaskId};

/// One input partition of a task: its buffered records and how far it has been processed.
struct Input {
    topic: String,
    partition: i32,
    /// Index of the source node reading `topic`.
    source: usize,
    queue: VecDeque<InputRecord>,
    /// The offset after the last record processed (what to commit), if any was.
    next_offset: Option<i64>,
    /// The offset after the last record buffered, if any was.
    received: Option<i64>,
}

pub(crate) struct Task {
    pub id: TaskId,
    graph: TaskGraph,
    /// The task's input partitions, in (topic, partition) order. A task has a handful, so
    /// a linear search beats hashing the topic name for every record.
    inputs: Vec<Input>,
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
            inputs: Vec::new(),
            advanced: i64::MIN,
            last_record: None,
            idle_timeout_ms,
        }
    }

    /// Whether this task reads `topic`.
    pub fn reads(&self, topic: &str) -> bool {
        self.graph.by_topic.contains_key(topic)
    }

    /// The index of the input `(topic, partition)`, added if new; an error if the task
    /// does not read `topic`.
    fn input(&mut self, topic: &str, partition: i32) -> Result<usize> {
        if let Some(i) = self
            .inputs
            .iter()
            .position(|q| q.partition == partition && q.topic == topic)
        {
            return Ok(i);
        }
        let source = *self.graph.by_topic.get(topic).ok_or_else(|| {
            StreamsError::Topology(format!("task {} does not read {topic}", self.id))
        })?;
        let at = self
            .inputs
            .partition_point(|q| (q.topic.as_str(), q.partition) < (topic, partition));
        self.inputs.insert(
            at,
            Input {
                topic: topic.to_string(),
                partition,
                source,
                queue: VecDeque::new(),
                next_offset: None,
                received: None,
            },
        );
        Ok(at)
    }

    /// Buffers records read from one of this task's input partitions.
    pub fn add(&mut self, record: InputRecord) -> Result<()> {
        let i = self.input(&record.topic, record.partition)?;
        if let Some(q) = self.inputs.get_mut(i) {
            q.received = Some(record.offset + 1);
            q.queue.push_back(record);
        }
        Ok(())
    }

    /// Records buffered and not yet processed.
    pub fn buffered(&self) -> usize {
        self.inputs.iter().map(|q| q.queue.len()).sum()
    }

    /// The timestamp of the record [`process_next`](Self::process_next) would take.
    pub fn head_timestamp(&self) -> Option<i64> {
        self.inputs
            .iter()
            .filter_map(|q| q.queue.front().map(|r| r.timestamp))
            .min()
    }

    /// Records buffered for one input partition, and the offset after the last record
    /// buffered for it (`None`: none yet).
    pub fn queued(&self, topic: &str, partition: i32) -> (usize, Option<i64>) {
        self.inputs
            .iter()
            .find(|q| q.partition == partition && q.topic == topic)
            .map_or((0, None), |q| (q.queue.len(), q.received))
    }

    /// Input partition -> the offset after the last record processed (what to commit).
    pub fn consumed(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.inputs
            .iter()
            .filter_map(|q| q.next_offset.map(|o| (q.topic.as_str(), q.partition, o)))
    }

    /// Processes the buffered record with the lowest timestamp (ties: the first input in
    /// (topic, partition) order). `None` if there was none; otherwise whether that
    /// record's input partition has nothing more buffered.
    pub fn process_next(&mut self, now_ms: i64) -> Result<Option<bool>> {
        let mut next: Option<(i64, usize)> = None;
        for (i, q) in self.inputs.iter().enumerate() {
            if let Some(r) = q.queue.front()
                && next.is_none_or(|(ts, _)| r.timestamp < ts)
            {
                next = Some((r.timestamp, i));
            }
        }
        let Some((_, i)) = next else {
            return Ok(None);
        };
        let (record, drained) = self
            .inputs
            .get_mut(i)
            .and_then(|q| q.queue.pop_front().map(|r| (r, q.queue.is_empty())))
            .ok_or_else(|| StreamsError::Topology("task queue vanished".into()))?;
        self.process_at(i, record, now_ms)?;
        Ok(Some(drained))
    }

    /// Processes one record now (the test driver's path; the runtime buffers first).
    pub fn process(&mut self, record: InputRecord, now_ms: i64) -> Result<()> {
        let i = self.input(&record.topic, record.partition)?;
        self.process_at(i, record, now_ms)
    }

    fn process_at(&mut self, input: usize, record: InputRecord, now_ms: i64) -> Result<()> {
        let q = self
            .inputs
            .get_mut(input)
            .ok_or_else(|| StreamsError::Topology("input index".into()))?;
        q.next_offset = Some(record.offset + 1);
        let node = self
            .graph
            .sources
            .get_mut(q.source)
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
                source.signal(&mut self.graph.ctx, Signal::StreamTime(t))?;
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

    /// Moves the output produced so far to the end of `out`, keeping its order.
    pub fn move_output_into(&mut self, out: &mut Vec<OutputRecord>) {
        out.append(&mut self.graph.ctx.out);
    }

    /// The output produced since the last call (job output, repartition, changelog).
    pub fn take_output(&mut self) -> Vec<OutputRecord> {
        std::mem::take(&mut self.graph.ctx.out)
    }

    /// Emits what aggregations hold back, then flushes store caches into the stores and
    /// their changelogs (output grows). Runs before every commit.
    pub fn flush(&mut self) -> Result<()> {
        for source in &mut self.graph.sources {
            source.signal(&mut self.graph.ctx, Signal::Flush)?;
        }
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
