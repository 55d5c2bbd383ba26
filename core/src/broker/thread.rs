//! [`BrokerThread`]: a broker serving on a thread of its own, with its own tokio runtime,
//! for programs that embed a broker beside synchronous work (and for tests that talk to
//! one through a Kafka client).

use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::config::BrokerConfig;
use super::server::Broker;
use crate::error::{Error, Result};
use crate::log::Log;

/// Worker threads of the broker's runtime.
const WORKER_THREADS: usize = 2;

/// A broker running on its own thread; it stops (answering what is in flight, then
/// flushing the log) on [`stop`](Self::stop) or when dropped.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::net::SocketAddr;
/// use sluice_core::broker::{BrokerConfig, BrokerThread};
///
/// let dir = tempfile::tempdir()?;
/// let log = sluice_core::Log::open(dir.path())?;
/// let config = BrokerConfig {
///     listen: SocketAddr::from(([127, 0, 0, 1], 0)), // any free port
///     metrics_listen: None,
///     ..BrokerConfig::default()
/// };
/// let broker = BrokerThread::start(log, config)?;
/// println!("Kafka clients connect to {}", broker.local_addr());
/// broker.stop()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BrokerThread {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl BrokerThread {
    /// Binds `config.listen` and serves `log` from a new thread; returns once the broker
    /// is listening (port 0 picks a free port: see [`local_addr`](Self::local_addr)).
    pub fn start(log: Log, config: BrokerConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("sluice-broker")
            .enable_all()
            .build()
            .map_err(|e| Error::Network {
                op: "start the runtime of the broker on",
                addr: config.listen.to_string(),
                source: e,
            })?;
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sluice-broker".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let broker = match Broker::bind(log, config).await {
                        Ok(broker) => broker,
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    let _ = bound_tx.send(Ok(broker.local_addr()));
                    broker
                        .run(async move {
                            // A dropped sender stops the broker too.
                            let _ = shutdown_rx.await;
                        })
                        .await
                })
            })
            .map_err(|e| Error::Network {
                op: "start the thread of the broker",
                addr: String::new(),
                source: e,
            })?;
        let mut started = Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            shutdown: Some(shutdown),
            thread: Some(thread),
        };
        // Binding either succeeds or fails, and says which, before anything else.
        match bound_rx.recv() {
            Ok(Ok(addr)) => started.addr = addr,
            Ok(Err(e)) => return Err(e),
            // The thread ended without a word: it panicked.
            Err(_) => {
                started.join()?;
                return Err(Error::Network {
                    op: "listen on",
                    addr: started.addr.to_string(),
                    source: std::io::Error::other("the broker stopped before listening"),
                });
            }
        }
        Ok(started)
    }

    /// The address the broker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the broker and waits for it; the error it stopped with, if any.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown.take();
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            // The panic itself was printed where it happened.
            Some(Err(_)) => Err(Error::Network {
                op: "serve on",
                addr: self.addr.to_string(),
                source: std::io::Error::other("the broker's thread panicked"),
            }),
        }
    }
}

impl Drop for BrokerThread {
    fn drop(&mut self) {
        self.shutdown.take();
        // An error here has no one to go to; `stop` is the way to see it.
        let _ = self.join();
    }
}
