//! A worker thread: one member of the application's consumer group, running the tasks of
//! the partitions assigned to it.
//!
//! Each loop: poll input, create tasks for newly assigned partitions (restoring their
//! stores) and close tasks for revoked ones, process buffered records in timestamp order,
//! send what the tasks produced, and commit when the commit interval has passed.
//!
//! A commit, at-least-once: flush store caches into changelogs, wait for every record
//! sent to be acknowledged, then commit input offsets, then checkpoint the stores.
//! Exactly-once: each task has its own transactional producer (transactional id
//! `<application id>-<task>`, so a task's next owner fences the previous one); its
//! outputs, changelog writes and input offsets commit in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::backend::{GroupConsumer, OutputProducer};
use super::checkpoint;
use super::instance::Runtime;
use crate::error::{Result, StreamsError};
use crate::processor::ctx::TaskStats;
use crate::runtime::ProcessingGuarantee;
use crate::state::{MemoryKv, Store, StoreEngine};
use crate::task::Task;
use crate::topology::{StoreDesc, TaskId};

/// Records the thread processes per loop before it polls again.
const RECORDS_PER_LOOP: usize = 5_000;
/// The longest the thread holds processing back for an input partition that has unread
/// records in the log but none buffered yet (see `held_back`).
const LAGGING_WAIT_MAX: Duration = Duration::from_millis(100);
/// Records buffered across a thread's tasks before it stops polling for more.
const BUFFERED_RECORDS_MAX: usize = 20_000;
/// How often `KafkaStreams::stats` is refreshed between commits.
const STATS_INTERVAL: Duration = Duration::from_millis(100);

struct ActiveTask {
    task: Task,
    /// Exactly-once: this task's transactional producer, inside an open transaction.
    producer: Option<Box<dyn OutputProducer>>,
    dir: PathBuf,
}

pub(crate) struct StreamThread {
    rt: Arc<Runtime>,
    name: String,
    consumer: Box<dyn GroupConsumer>,
    /// At-least-once: the thread's producer for every task.
    producer: Option<Box<dyn OutputProducer>>,
    tasks: BTreeMap<TaskId, ActiveTask>,
    assignment: BTreeSet<(String, i32)>,
    /// Since when processing has been held back for a lagging partition.
    waiting_since: Option<Instant>,
    /// Partitions rewound to their committed offsets since the last poll: records the
    /// poll returned for them are read again, so those are dropped.
    rewound: BTreeSet<(String, i32)>,
    last_commit: Instant,
    /// When the counters were last published for `KafkaStreams::stats`.
    last_stats: Instant,
    /// Committed offsets of repartition topics not purged yet, and the last purge.
    purgeable: HashMap<(String, i32), i64>,
    last_purge: Instant,
    /// Counters of tasks this thread closed.
    closed_stats: TaskStats,
}

fn now_ms() -> i64 {
    sluice_core::now_ms()
}

fn eos(rt: &Runtime) -> bool {
    rt.config.guarantee == ProcessingGuarantee::ExactlyOnce
}

impl StreamThread {
    pub fn new(rt: Arc<Runtime>, index: usize) -> Result<Self> {
        let consumer = rt.backend.group_consumer(
            &rt.config.application_id,
            &rt.plan.source_topics,
            eos(&rt),
        )?;
        let producer = if eos(&rt) {
            None
        } else {
            Some(rt.backend.producer(None)?)
        };
        Ok(StreamThread {
            name: format!("{}-thread-{index}", rt.config.application_id),
            rt,
            consumer,
            producer,
            tasks: BTreeMap::new(),
            assignment: BTreeSet::new(),
            rewound: BTreeSet::new(),
            waiting_since: None,
            last_commit: Instant::now(),
            last_stats: Instant::now(),
            purgeable: HashMap::new(),
            last_purge: Instant::now(),
            closed_stats: TaskStats::default(),
        })
    }

    /// Runs until the instance stops or something fails; always closes its tasks.
    pub fn run(mut self) -> Result<()> {
        let result = self.run_loop();
        let closed = if result.is_ok() {
            self.close_all(true)
        } else {
            self.close_all(false)
        };
        self.publish_stats();
        let consumer_closed = self.consumer.close();
        result.and(closed).and(consumer_closed)
    }

    fn run_loop(&mut self) -> Result<()> {
        let commit_interval = self.rt.config.effective_commit_interval();
        while !self.rt.stop.load(Ordering::Relaxed) {
            let buffered: usize = self.tasks.values().map(|t| t.task.buffered()).sum();
            let records = if buffered < BUFFERED_RECORDS_MAX {
                let timeout = if buffered == 0 {
                    self.rt.config.poll_timeout
                } else {
                    std::time::Duration::ZERO
                };
                self.consumer.poll(timeout)?
            } else {
                Vec::new()
            };
            self.sync_assignment()?;
            let rewound = std::mem::take(&mut self.rewound);
            // A poll returns runs of records of one topic: look its sub-topology up once
            // per run, not per record.
            let mut last: Option<(String, Option<usize>)> = None;
            for r in records {
                if !rewound.is_empty() && rewound.contains(&(r.topic.clone(), r.partition)) {
                    continue;
                }
                let sub = match &last {
                    Some((topic, sub)) if *topic == r.topic => *sub,
                    _ => {
                        let sub = self.rt.plan.topic_subtopology.get(&r.topic).copied();
                        last = Some((r.topic.clone(), sub));
                        sub
                    }
                };
                let Some(sub) = sub else {
                    continue;
                };
                let id = TaskId {
                    subtopology: sub,
                    partition: r.partition,
                };
                if let Some(t) = self.tasks.get_mut(&id) {
                    t.task.add(r)?;
                }
            }
            let now = now_ms();
            if !self.held_back() {
                self.process_in_time_order(now)?;
            }
            let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
            for id in ids {
                self.run_task(id, now)?;
            }
            if self.last_commit.elapsed() >= commit_interval {
                self.commit_all()?;
                self.publish_stats();
                if self.last_purge.elapsed() >= self.rt.config.repartition_purge_interval {
                    self.purge_repartition_topics();
                }
            } else if self.last_stats.elapsed() >= STATS_INTERVAL {
                self.publish_stats();
            }
        }
        Ok(())
    }

    fn run_task(&mut self, id: TaskId, now: i64) -> Result<()> {
        match self.run_task_inner(id, now) {
            Err(StreamsError::Fenced { reason, .. }) if eos(&self.rt) => self.migrated(id, &reason),
            r => r,
        }
    }

    /// Exactly-once: another member took this task over and fenced its producer. Drop it
    /// without committing; its uncommitted work is aborted and the new owner redoes it.
    fn migrated(&mut self, id: TaskId, reason: &str) -> Result<()> {
        tracing::info!(thread = %self.name, task = %id, "task moved to another member ({reason})");
        if let Some(t) = self.tasks.remove(&id) {
            self.closed_stats += t.task.stats();
        }
        // If the group still assigns it here (the other member fenced us while it was
        // catching up with a rebalance), the next assignment check takes it back.
        self.assignment.clear();
        Ok(())
    }

    /// Whether to wait for more input before processing: some input partition has no
    /// records buffered but unread ones in the log. Processing the others first would
    /// push stream time (and, through repartition topics, the stream time of downstream
    /// tasks) past that partition's records, which windows would then drop as late.
    /// This is Kafka Streams' `max.task.idle.ms` idea across all of a thread's tasks,
    /// bounded by [`LAGGING_WAIT_MAX`] and by the buffer limit.
    fn held_back(&mut self) -> bool {
        let buffered: usize = self.tasks.values().map(|t| t.task.buffered()).sum();
        if buffered == 0 || buffered >= BUFFERED_RECORDS_MAX {
            self.waiting_since = None;
            return false;
        }
        let assignment: Vec<(String, i32)> = self.assignment.iter().cloned().collect();
        for (topic, partition) in assignment {
            let Some(&sub) = self.rt.plan.topic_subtopology.get(&topic) else {
                continue;
            };
            let id = TaskId {
                subtopology: sub,
                partition,
            };
            let Some((0, next)) = self
                .tasks
                .get(&id)
                .map(|t| t.task.queued(&topic, partition))
            else {
                continue;
            };
            if self
                .consumer
                .lag(&topic, partition, next)
                .is_some_and(|lag| lag > 0)
            {
                let since = *self.waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() < LAGGING_WAIT_MAX {
                    return true;
                }
                tracing::debug!(thread = %self.name, %topic, partition, "stopped waiting for a lagging partition");
                break;
            }
        }
        self.waiting_since = None;
        false
    }

    /// Processes buffered records across all tasks, lowest timestamp first, until the
    /// budget is spent or an input partition runs dry (then polling comes first again).
    ///
    /// At-least-once, the output of all tasks goes to the thread's one producer in the
    /// order it was produced, so a repartition topic fed by several of this thread's
    /// tasks receives their records in event-time order too. (Exactly-once, each task
    /// has its own producer and its output is sent per task after the loop.)
    fn process_in_time_order(&mut self, now: i64) -> Result<()> {
        let shared_producer = self.producer.is_some();
        let mut out = Vec::new();
        for _ in 0..RECORDS_PER_LOOP {
            let next = self
                .tasks
                .iter()
                .filter_map(|(id, t)| t.task.head_timestamp().map(|ts| (ts, *id)))
                .min();
            let Some((_, id)) = next else {
                break;
            };
            let Some(t) = self.tasks.get_mut(&id) else {
                break;
            };
            let processed = t.task.process_next(now)?;
            if shared_producer {
                t.task.move_output_into(&mut out);
            }
            if processed != Some(false) {
                break;
            }
        }
        if let Some(p) = self.producer.as_mut() {
            p.send_all(out)?;
        }
        Ok(())
    }

    fn run_task_inner(&mut self, id: TaskId, now: i64) -> Result<()> {
        let Some(t) = self.tasks.get_mut(&id) else {
            return Ok(());
        };
        t.task.on_wall_clock(now)?;
        let out = t.task.take_output();
        let producer = match t.producer.as_mut() {
            Some(p) => p,
            None => self
                .producer
                .as_mut()
                .ok_or_else(|| StreamsError::Topology("no producer".into()))?,
        };
        producer.send_all(out).map_err(|e| fenced(&self.rt, e))?;
        Ok(())
    }

    /// Creates tasks for partitions newly assigned and closes those no longer assigned.
    fn sync_assignment(&mut self) -> Result<()> {
        let now: BTreeSet<(String, i32)> = self.consumer.assignment().into_iter().collect();
        if now == self.assignment {
            return Ok(());
        }
        let wanted: BTreeSet<TaskId> = now
            .iter()
            .filter_map(|(t, p)| {
                self.rt.plan.topic_subtopology.get(t).map(|s| TaskId {
                    subtopology: *s,
                    partition: *p,
                })
            })
            .collect();
        let revoked: Vec<TaskId> = self
            .tasks
            .keys()
            .filter(|id| !wanted.contains(id))
            .copied()
            .collect();
        if !revoked.is_empty() {
            // Hand back what we hold: commit first, so the next owner starts from here.
            self.commit_all()?;
            for id in revoked {
                if let Some(t) = self.tasks.remove(&id) {
                    self.close_task(t, true)?;
                }
            }
        }
        for id in wanted {
            if !self.tasks.contains_key(&id) {
                let t = self.open_task(id)?;
                self.tasks.insert(id, t);
            }
        }
        tracing::info!(thread = %self.name, tasks = ?self.tasks.keys().map(|t| t.to_string()).collect::<Vec<_>>(), "assignment");
        self.assignment = now;
        Ok(())
    }

    fn open_store(&self, desc: &StoreDesc, task: TaskId) -> Result<Store> {
        let engine: Box<dyn crate::state::KvBytes> = match (desc.engine, &self.rt.engine) {
            (StoreEngine::Persistent, Some(engine)) => Box::new(
                engine
                    .store(&task.to_string(), &desc.name)
                    .map_err(|e| StreamsError::state(&desc.name, task, e))?,
            ),
            _ => Box::new(MemoryKv::default()),
        };
        let app = &self.rt.config.application_id;
        Ok(Store::new(
            desc.name.clone(),
            task.to_string(),
            desc.changelog().map(|t| (t.resolve(app), task.partition)),
            engine,
            self.rt.budget.clone(),
        ))
    }

    fn open_task(&mut self, id: TaskId) -> Result<ActiveTask> {
        let rt = self.rt.clone();
        let started = Instant::now();
        let mut open = |desc: &StoreDesc, task: TaskId| self.open_store(desc, task);
        let graph = rt.topology.instantiate(
            &rt.config.application_id,
            id,
            rt.config.deserialization_handler.clone(),
            &mut open,
        )?;
        let mut task = Task::new(id, graph, rt.config.idle_timeout_ms());
        let dir = rt.state_dir.join(id.to_string());
        // Exactly-once: fence the task's previous owner first, which aborts its open
        // transaction, so the restore below reads only committed changelog entries.
        let producer = if eos(&rt) {
            let txn_id = format!("{}-{id}", rt.config.application_id);
            Some(
                rt.backend
                    .producer(Some(&txn_id))
                    .map_err(|e| fenced(&rt, e))?,
            )
        } else {
            None
        };
        // Restore every logged store: from its checkpoint if the local copy is current,
        // else from the start of its changelog.
        let checkpoints = checkpoint::read(&dir);
        let persistent: BTreeSet<String> = rt
            .topology
            .graph
            .stores
            .iter()
            .filter(|s| s.engine == StoreEngine::Persistent && rt.engine.is_some())
            .map(|s| s.name.clone())
            .collect();
        let mut restored = 0usize;
        for store in task.stores_mut() {
            let Some((topic, partition)) = store.changelog.clone() else {
                continue;
            };
            let from = match checkpoints.get(&topic) {
                Some(offset) if persistent.contains(&store.name) => *offset,
                _ => {
                    store.clear()?;
                    0
                }
            };
            rt.backend
                .read_changelog(&topic, partition, from, eos(&rt), &mut |batch| {
                    restored += batch.len();
                    store.restore_batch(batch)
                })?;
        }
        if eos(&rt) {
            checkpoint::delete(&dir)?;
        }
        let mut producer = producer;
        if let Some(p) = producer.as_mut() {
            p.begin()?;
        }
        let inputs: Vec<(String, i32)> = self
            .consumer
            .assignment()
            .into_iter()
            .filter(|(t, p)| {
                *p == id.partition && rt.plan.topic_subtopology.get(t) == Some(&id.subtopology)
            })
            .collect();
        // A new task has nothing buffered: what it reads starts at the committed offsets.
        self.consumer.rewind(&inputs)?;
        self.rewound.extend(inputs);
        tracing::info!(thread = %self.name, task = %id, restored, ms = started.elapsed().as_millis() as u64, "task started");
        Ok(ActiveTask {
            task,
            producer,
            dir,
        })
    }

    /// Commits every task (see the module docs for the order of steps).
    fn commit_all(&mut self) -> Result<()> {
        self.last_commit = Instant::now();
        let group = self.consumer.group_metadata();
        let mut offsets: Vec<(String, i32, i64)> = Vec::new();
        let mut moved = Vec::new();
        for (id, t) in self.tasks.iter_mut() {
            t.task.flush()?;
            let out = t.task.take_output();
            let task_offsets: Vec<(String, i32, i64)> = t
                .task
                .consumed()
                .map(|(topic, p, o)| (topic.to_string(), p, o))
                .collect();
            match t.producer.as_mut() {
                Some(p) => {
                    let committed = out
                        .into_iter()
                        .try_for_each(|r| p.send(r))
                        .and_then(|()| p.commit(&task_offsets, &group))
                        .map_err(|e| fenced(&self.rt, e));
                    match committed {
                        Ok(()) => {
                            remember_purgeable(&self.rt, &mut self.purgeable, &task_offsets);
                            p.begin()?
                        }
                        Err(StreamsError::Fenced { reason, .. }) => moved.push((*id, reason)),
                        Err(e) => return Err(e),
                    }
                }
                None => {
                    let p = self
                        .producer
                        .as_mut()
                        .ok_or_else(|| StreamsError::Topology("no producer".into()))?;
                    p.send_all(out)?;
                    offsets.extend(task_offsets);
                }
            }
        }
        for (id, reason) in moved {
            self.migrated(id, &reason)?;
        }
        if let Some(p) = self.producer.as_mut() {
            p.flush()?;
            if !offsets.is_empty() {
                self.consumer.commit(&offsets)?;
                remember_purgeable(&self.rt, &mut self.purgeable, &offsets);
            }
            for t in self.tasks.values_mut() {
                checkpoint_task(&self.rt, t)?;
            }
        }
        Ok(())
    }

    fn close_task(&mut self, mut t: ActiveTask, clean: bool) -> Result<()> {
        self.closed_stats += t.task.stats();
        if clean {
            // Committed just before: the stores are current to the changelog's end.
            checkpoint_task(&self.rt, &mut t)?;
        } else if let Some(p) = t.producer.as_mut() {
            let _ = p.abort();
        }
        Ok(())
    }

    fn close_all(&mut self, clean: bool) -> Result<()> {
        let committed = if clean { self.commit_all() } else { Ok(()) };
        let tasks = std::mem::take(&mut self.tasks);
        let mut result = committed;
        for (_, t) in tasks {
            let r = self.close_task(t, clean && result.is_ok());
            result = result.and(r);
        }
        result
    }

    /// Deletes what the job has committed of the repartition topics it reads. A failure
    /// is logged, not fatal: a later purge covers the partition again once its task
    /// commits further.
    fn purge_repartition_topics(&mut self) {
        self.last_purge = Instant::now();
        for ((topic, partition), offset) in std::mem::take(&mut self.purgeable) {
            if let Err(e) = self.rt.backend.purge(&topic, partition, offset) {
                tracing::warn!(thread = %self.name, %topic, partition, offset, "could not purge a repartition topic: {e}");
            }
        }
    }

    fn publish_stats(&mut self) {
        self.last_stats = Instant::now();
        let mut s = self.closed_stats;
        for t in self.tasks.values() {
            s += t.task.stats();
        }
        self.rt.stats.lock().insert(self.name.clone(), s);
    }
}

/// Notes the committed offsets of repartition topics among `offsets`, to purge later.
fn remember_purgeable(
    rt: &Runtime,
    purgeable: &mut HashMap<(String, i32), i64>,
    offsets: &[(String, i32, i64)],
) {
    for (topic, partition, offset) in offsets {
        if rt.plan.repartition_topics.contains(topic) {
            purgeable.insert((topic.clone(), *partition), *offset);
        }
    }
}

/// Makes a task's persistent stores durable and records the changelog offsets they are
/// current to.
fn checkpoint_task(rt: &Runtime, t: &mut ActiveTask) -> Result<()> {
    if rt.engine.is_none() {
        return Ok(());
    }
    t.task.persist_stores()?;
    let mut offsets = HashMap::new();
    for store in t.task.stores_mut() {
        if let Some((topic, partition)) = &store.changelog {
            offsets.insert(topic.clone(), rt.backend.end_offset(topic, *partition)?);
        }
    }
    checkpoint::write(&t.dir, &offsets)
}

/// Turns a producer-fenced error into [`StreamsError::Fenced`].
fn fenced(rt: &Runtime, e: StreamsError) -> StreamsError {
    let text = e.to_string();
    let embedded_fence = matches!(
        e,
        StreamsError::Log(
            sluice_core::Error::TransactionalIdFenced { .. }
                | sluice_core::Error::ProducerFenced { .. }
        )
    );
    if embedded_fence || text.contains("fenced") || text.contains("Fenced") {
        StreamsError::Fenced {
            application_id: rt.config.application_id.clone(),
            reason: text,
        }
    } else {
        e
    }
}
