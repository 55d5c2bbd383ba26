//! [`TopologyTestDriver`]: runs a topology in the calling thread with no log, broker or
//! threads, as Kafka Streams' driver of the same name does.
//!
//! Every topic has one partition. A record piped in is processed at once, through
//! repartition topics too, and the task's stores are flushed after it (as if every record
//! were committed), so outputs and changelogs are readable right away. Wall-clock time is
//! the driver's own and moves only when told.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Result, StreamsError};
use crate::processor::ctx::TaskStats;
use crate::record::{Header, InputRecord, OutputRecord};
use crate::runtime::StreamsConfig;
use crate::serdes::Serde;
use crate::state::{CacheBudget, MemoryKv, Store, StoreKind, layout};
use crate::task::Task;
use crate::topology::{TaskId, Topology};
use crate::window::Window;

/// Rows of a window store: (key, window start, aggregate).
pub type WindowRows<K, V> = Vec<(K, i64, V)>;
/// Rows of a session store: (key, session, aggregate).
pub type SessionRows<K, V> = Vec<(K, Window, V)>;

/// Runs a topology synchronously for tests.
///
/// ```
/// use sluice_streams::prelude::*;
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Str, Str))
///     .map_values(|v| v.to_uppercase())
///     .to("out", Produced::with(Str, Str));
/// let mut driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
/// let input = TestInputTopic::new("in", Str, Str);
/// let output = TestOutputTopic::new("out", Str, Str);
/// input.pipe(&mut driver, "k".into(), "hello".into(), 0).unwrap();
/// assert_eq!(output.read_key_values(&mut driver).unwrap(), vec![("k".into(), "HELLO".into())]);
/// ```
pub struct TopologyTestDriver {
    application_id: String,
    tasks: Vec<Task>,
    repartition_topics: HashSet<String>,
    store_kinds: HashMap<String, StoreKind>,
    outputs: HashMap<String, VecDeque<OutputRecord>>,
    offsets: HashMap<String, i64>,
    wall_clock_ms: i64,
}

impl std::fmt::Debug for TopologyTestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyTestDriver")
            .field("application_id", &self.application_id)
            .finish_non_exhaustive()
    }
}

impl TopologyTestDriver {
    /// A driver with the application id `test-driver` and default settings.
    pub fn new(topology: Topology) -> Result<Self> {
        Self::with_config(topology, StreamsConfig::new("test-driver"))
    }

    /// A driver with these settings (application id, idle timeout, deserialization
    /// handler); the connection, threads and guarantee are ignored. Stores are in memory.
    pub fn with_config(topology: Topology, config: StreamsConfig) -> Result<Self> {
        let budget = CacheBudget::new(config.cache_max_bytes);
        let app = config.application_id.clone();
        let mut tasks = Vec::new();
        for sub in topology.subtopologies.iter() {
            let id = TaskId {
                subtopology: sub.id,
                partition: 0,
            };
            let budget = budget.clone();
            let app_for_store = app.clone();
            let mut open =
                move |desc: &crate::topology::StoreDesc, task: TaskId| -> Result<Store> {
                    Ok(Store::new(
                        desc.name.clone(),
                        task.to_string(),
                        desc.changelog()
                            .map(|t| (t.resolve(&app_for_store), task.partition)),
                        Box::new(MemoryKv::default()),
                        budget.clone(),
                    ))
                };
            let graph = topology.instantiate(
                &app,
                id,
                config.deserialization_handler.clone(),
                &mut open,
            )?;
            tasks.push(Task::new(id, graph, config.idle_timeout_ms()));
        }
        let repartition_topics = topology
            .graph
            .repartition_topics
            .iter()
            .map(|t| t.name.resolve(&app))
            .collect();
        let store_kinds = topology
            .graph
            .stores
            .iter()
            .map(|s| (s.name.clone(), s.kind))
            .collect();
        Ok(TopologyTestDriver {
            application_id: app,
            store_kinds,
            tasks,
            repartition_topics,
            outputs: HashMap::new(),
            offsets: HashMap::new(),
            wall_clock_ms: 0,
        })
    }

    /// Feeds one raw record into `topic`, then runs everything it causes.
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
        headers: Vec<Header>,
    ) -> Result<()> {
        let offset = self.offsets.entry(topic.to_string()).or_insert(0);
        let record = InputRecord {
            topic: topic.to_string(),
            partition: 0,
            offset: *offset,
            timestamp,
            key,
            value,
            headers,
        };
        *offset += 1;
        let Some(i) = self.tasks.iter().position(|t| t.reads(topic)) else {
            return Err(StreamsError::Topology(format!(
                "no source reads topic '{topic}' (the topology reads: {})",
                self.tasks
                    .iter()
                    .map(|t| t.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let now = self.wall_clock_ms;
        self.tasks[i].process(record, now)?;
        self.drain()
    }

    /// Moves the driver's wall clock forward: tasks idle past the idle timeout advance
    /// their stream time and close windows.
    pub fn advance_wall_clock(&mut self, by: Duration) -> Result<()> {
        self.wall_clock_ms += i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = self.wall_clock_ms;
        for task in &mut self.tasks {
            task.on_wall_clock(now)?;
        }
        self.drain()
    }

    /// Routes every task's output: repartition records into the task reading them, the
    /// rest into output topics.
    fn drain(&mut self) -> Result<()> {
        loop {
            let mut pending: Vec<OutputRecord> = Vec::new();
            for task in &mut self.tasks {
                task.flush()?;
                pending.extend(task.take_output());
            }
            if pending.is_empty() {
                return Ok(());
            }
            for out in pending {
                if self.repartition_topics.contains(&out.topic) {
                    let offset = self.offsets.entry(out.topic.clone()).or_insert(0);
                    let record = InputRecord {
                        topic: out.topic,
                        partition: 0,
                        offset: *offset,
                        timestamp: out.timestamp,
                        key: out.key,
                        value: out.value,
                        headers: out.headers,
                    };
                    *offset += 1;
                    let now = self.wall_clock_ms;
                    if let Some(task) = self.tasks.iter_mut().find(|t| t.reads(&record.topic)) {
                        task.process(record, now)?;
                    }
                } else {
                    self.outputs
                        .entry(out.topic.clone())
                        .or_default()
                        .push_back(out);
                }
            }
        }
    }

    /// Takes the raw records written to `topic` so far (job output or a changelog).
    pub fn read_raw(&mut self, topic: &str) -> Vec<OutputRecord> {
        self.outputs
            .remove(topic)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// The counters of all tasks summed.
    pub fn stats(&self) -> TaskStats {
        let mut s = TaskStats::default();
        for t in &self.tasks {
            s += t.stats();
        }
        s
    }

    /// The name of the changelog topic of store `store`.
    pub fn changelog_topic(&self, store: &str) -> String {
        format!("{}-{store}-changelog", self.application_id)
    }

    fn store_entries(&mut self, name: &str, kind: StoreKind) -> Result<crate::state::Entries> {
        match self.store_kinds.get(name) {
            Some(k) if *k == kind => {}
            Some(k) => {
                return Err(StreamsError::Topology(format!(
                    "store '{name}' is a {k:?} store, not a {kind:?} store"
                )));
            }
            None => return Err(StreamsError::Topology(format!("no store named '{name}'"))),
        }
        for task in &mut self.tasks {
            if let Some(entries) = task.store_entries(name)? {
                return Ok(entries);
            }
        }
        Ok(Vec::new())
    }

    /// The contents of key-value store `name`, in key-byte order.
    pub fn key_value_store<KS: Serde, VS: Serde>(
        &mut self,
        name: &str,
        key: KS,
        value: VS,
    ) -> Result<Vec<(KS::Target, VS::Target)>> {
        self.store_entries(name, StoreKind::KeyValue)?
            .into_iter()
            .map(|(k, v)| Ok((de(&key, &k, name)?, de(&value, &v, name)?)))
            .collect()
    }

    /// The contents of window store `name`: (key, window start, aggregate), oldest first.
    pub fn window_store<KS: Serde, VS: Serde>(
        &mut self,
        name: &str,
        key: KS,
        value: VS,
    ) -> Result<WindowRows<KS::Target, VS::Target>> {
        // Keys that are not windows (the saved stream time) are skipped.
        self.store_entries(name, StoreKind::Window)?
            .into_iter()
            .filter_map(|(k, v)| {
                let (start, kb) = layout::split_window_key(&k)?;
                Some((|| Ok((de(&key, kb, name)?, start, de(&value, &v, name)?)))())
            })
            .collect()
    }

    /// The contents of session store `name`: (key, session, aggregate).
    pub fn session_store<KS: Serde, VS: Serde>(
        &mut self,
        name: &str,
        key: KS,
        value: VS,
    ) -> Result<SessionRows<KS::Target, VS::Target>> {
        self.store_entries(name, StoreKind::Session)?
            .into_iter()
            .filter_map(|(k, v)| {
                let (kb, end, start) = layout::split_keyed_key(&k)?;
                Some((|| {
                    Ok((
                        de(&key, kb, name)?,
                        Window { start, end },
                        de(&value, &v, name)?,
                    ))
                })())
            })
            .collect()
    }
}

fn de<S: Serde>(serde: &S, bytes: &[u8], store: &str) -> Result<S::Target> {
    serde
        .deserialize(Some(bytes))
        .map_err(|e| StreamsError::state(store, "driver", e))
}

/// An input topic of a [`TopologyTestDriver`], with the serdes to write it.
#[derive(Debug, Clone)]
pub struct TestInputTopic<KS, VS> {
    topic: String,
    key: KS,
    value: VS,
}

impl<KS: Serde, VS: Serde> TestInputTopic<KS, VS> {
    /// Writes `topic` with these serdes.
    pub fn new(topic: impl Into<String>, key: KS, value: VS) -> Self {
        TestInputTopic {
            topic: topic.into(),
            key,
            value,
        }
    }

    /// Pipes one record with this timestamp (ms) through the topology.
    pub fn pipe(
        &self,
        driver: &mut TopologyTestDriver,
        key: KS::Target,
        value: VS::Target,
        timestamp: i64,
    ) -> Result<()> {
        let ser = |r: std::result::Result<Option<Vec<u8>>, crate::serdes::SerdeError>, what| {
            r.map(|b| b.map(Bytes::from))
                .map_err(|e| StreamsError::Serialization {
                    what,
                    target: self.topic.clone(),
                    reason: e.0,
                })
        };
        let k = ser(self.key.serialize(&key), "key")?;
        let v = ser(self.value.serialize(&value), "value")?;
        driver.pipe_raw(&self.topic, k, v, timestamp, Vec::new())
    }
}

/// A record read from a [`TestOutputTopic`].
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord<K, V> {
    /// Key.
    pub key: K,
    /// Value.
    pub value: V,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Headers.
    pub headers: Vec<Header>,
}

/// An output topic of a [`TopologyTestDriver`], with the serdes to read it.
#[derive(Debug, Clone)]
pub struct TestOutputTopic<KS, VS> {
    topic: String,
    key: KS,
    value: VS,
}

impl<KS: Serde, VS: Serde> TestOutputTopic<KS, VS> {
    /// Reads `topic` with these serdes.
    pub fn new(topic: impl Into<String>, key: KS, value: VS) -> Self {
        TestOutputTopic {
            topic: topic.into(),
            key,
            value,
        }
    }

    /// Takes every record written since the last read.
    pub fn read_records(
        &self,
        driver: &mut TopologyTestDriver,
    ) -> Result<Vec<TestRecord<KS::Target, VS::Target>>> {
        driver
            .read_raw(&self.topic)
            .into_iter()
            .map(|r| {
                let err = |what, e: crate::serdes::SerdeError| StreamsError::Deserialization {
                    topic: self.topic.clone(),
                    partition: 0,
                    offset: -1,
                    what,
                    reason: e.0,
                };
                Ok(TestRecord {
                    key: self
                        .key
                        .deserialize(r.key.as_deref())
                        .map_err(|e| err("key", e))?,
                    value: self
                        .value
                        .deserialize(r.value.as_deref())
                        .map_err(|e| err("value", e))?,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            })
            .collect()
    }

    /// Takes every (key, value) written since the last read.
    pub fn read_key_values(
        &self,
        driver: &mut TopologyTestDriver,
    ) -> Result<Vec<(KS::Target, VS::Target)>> {
        Ok(self
            .read_records(driver)?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }
}
