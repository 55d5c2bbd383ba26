//! [`KafkaStreams`]: a running instance of a topology.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::backend::{Backend, Embedded, Kafka};
use super::thread::StreamThread;
use super::topics::{self, TopicPlan};
use super::{Connection, StreamsConfig};
use crate::error::{Result, StreamsError};
use crate::processor::ctx::TaskStats;
use crate::state::{CacheBudget, FjallEngine};
use crate::topology::Topology;

/// What every thread of an instance shares.
pub(crate) struct Runtime {
    pub topology: Topology,
    pub config: StreamsConfig,
    pub backend: Arc<dyn Backend>,
    pub plan: TopicPlan,
    /// The persistent store engine, if any store is persistent.
    pub engine: Option<FjallEngine>,
    pub state_dir: PathBuf,
    pub budget: Arc<CacheBudget>,
    pub stop: AtomicBool,
    /// Thread name -> its tasks' counters.
    pub stats: Mutex<HashMap<String, TaskStats>>,
    /// The first error a thread stopped with.
    pub error: Mutex<Option<String>>,
}

/// A running instance of a topology: worker threads, each a member of the application's
/// consumer group, processing the tasks of the partitions it is assigned.
///
/// Several instances with the same application id (threads of one process, or processes
/// against one broker) share the work and take over each other's tasks.
pub struct KafkaStreams {
    rt: Arc<Runtime>,
    threads: Vec<JoinHandle<Result<()>>>,
    log: Option<sluice_core::Log>,
}

impl std::fmt::Debug for KafkaStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStreams")
            .field("application_id", &self.rt.config.application_id)
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl KafkaStreams {
    /// Connects, checks the input topics and creates the internal ones; nothing runs
    /// until [`start`](Self::start).
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self> {
        let (backend, log): (Arc<dyn Backend>, Option<sluice_core::Log>) = match &config.connection
        {
            Some(Connection::DataDir(dir)) => {
                let log = sluice_core::Log::open(dir)?;
                (Arc::new(Embedded { log: log.clone() }), Some(log))
            }
            Some(Connection::Log(log)) => {
                (Arc::new(Embedded { log: log.clone() }), Some(log.clone()))
            }
            Some(Connection::Bootstrap(servers)) => (
                Arc::new(Kafka::connect(servers, &config.application_id)?),
                None,
            ),
            None => {
                return Err(StreamsError::Topology(
                    "no log to run on: set StreamsConfig::data_dir, ::log or ::bootstrap".into(),
                ));
            }
        };
        let dead_letter = match &config.deserialization_handler {
            crate::processor::source::DeserializationHandler::DeadLetter(t) => Some(t.as_str()),
            _ => None,
        };
        let plan = topics::prepare(
            &topology,
            &config.application_id,
            dead_letter,
            backend.as_ref(),
        )?;
        let state_dir = config.effective_state_dir();
        let persistent = topology
            .graph
            .stores
            .iter()
            .any(|s| s.engine == crate::state::StoreEngine::Persistent);
        let engine = if persistent {
            std::fs::create_dir_all(&state_dir).map_err(|source| StreamsError::StateDir {
                path: state_dir.clone(),
                source,
            })?;
            let engine = FjallEngine::open(&state_dir.join("stores"), config.state_block_cache_bytes).map_err(|e| {
                StreamsError::state(
                    "*",
                    "-",
                    format!("{e} (two instances of one application in one process need their own StreamsConfig::state_dir)"),
                )
            })?;
            Some(engine)
        } else {
            None
        };
        let rt = Runtime {
            budget: CacheBudget::new(config.cache_max_bytes),
            topology,
            config,
            backend,
            plan,
            engine,
            state_dir,
            stop: AtomicBool::new(false),
            stats: Mutex::new(HashMap::new()),
            error: Mutex::new(None),
        };
        Ok(KafkaStreams {
            rt: Arc::new(rt),
            threads: Vec::new(),
            log,
        })
    }

    /// Starts the worker threads.
    pub fn start(&mut self) -> Result<()> {
        if !self.threads.is_empty() {
            return Err(StreamsError::Topology(
                "this instance is already started".into(),
            ));
        }
        for i in 0..self.rt.config.threads {
            let rt = self.rt.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{}-{i}", rt.config.application_id))
                .spawn(move || {
                    let result = StreamThread::new(rt.clone(), i).and_then(StreamThread::run);
                    if let Err(e) = &result {
                        tracing::error!(application = %rt.config.application_id, "stream thread stopped: {e}");
                        rt.error.lock().get_or_insert_with(|| e.to_string());
                        // One thread failing stops the instance: its tasks would otherwise
                        // be stuck with a member that no longer processes them.
                        rt.stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
                .map_err(|source| StreamsError::StateDir {
                    path: self.rt.state_dir.clone(),
                    source,
                })?;
            self.threads.push(handle);
        }
        Ok(())
    }

    /// Whether the instance is running (started, not closed, no thread failed).
    pub fn is_running(&self) -> bool {
        !self.threads.is_empty() && !self.rt.stop.load(Ordering::Relaxed)
    }

    /// The error a worker thread stopped with, if one did.
    pub fn error(&self) -> Option<String> {
        self.rt.error.lock().clone()
    }

    /// The counters of every task, summed (refreshed every 100 ms and at each commit).
    pub fn stats(&self) -> TaskStats {
        let mut total = TaskStats::default();
        for s in self.rt.stats.lock().values() {
            total += *s;
        }
        total
    }

    /// The embedded log the instance runs on, if it runs on one.
    pub fn log(&self) -> Option<&sluice_core::Log> {
        self.log.as_ref()
    }

    /// Stops: each thread commits, flushes and closes its stores, then leaves the group.
    /// Returns the first error any thread stopped with.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        self.rt.stop.store(true, Ordering::Relaxed);
        let mut result = Ok(());
        for handle in self.threads.drain(..) {
            let r = handle
                .join()
                .unwrap_or_else(|_| Err(StreamsError::Topology("a stream thread panicked".into())));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Runs until SIGINT or SIGTERM (or a thread fails), then closes cleanly.
    pub fn run_until_signal(mut self) -> Result<()> {
        let signalled = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, signalled.clone()).map_err(|source| {
                StreamsError::StateDir {
                    path: PathBuf::from("<signal handler>"),
                    source,
                }
            })?;
        }
        if self.threads.is_empty() {
            self.start()?;
        }
        while !signalled.load(Ordering::Relaxed) && self.is_running() {
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!(application = %self.rt.config.application_id, "stopping");
        self.shutdown()
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
