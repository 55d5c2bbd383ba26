//! The listener: accepts connections up to the configured cap and runs each as a task;
//! on shutdown stops accepting, lets every connection answer the request it is handling,
//! then flushes the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::config::BrokerConfig;
use super::group::{GroupCoordinator, GroupLimits};
use super::prometheus::Metrics;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::txn::TxnCoordinator;

/// What every request handler can reach.
pub(crate) struct Context {
    pub log: Log,
    pub config: BrokerConfig,
    /// Permits for request bytes held in memory, across connections
    /// (`max_inflight_bytes`).
    pub inflight: tokio::sync::Semaphore,
    /// Host and port clients are told to connect to.
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Becomes true when the broker stops: parked fetches answer at once.
    pub stopping: watch::Receiver<bool>,
    /// Consumer groups with members (the classic group protocol).
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids, their producers and open transactions: the log's coordinator,
    /// shared with embedded producers.
    pub txn: Arc<TxnCoordinator>,
    /// Counters and histograms for `GET /metrics`, this broker's own (see `prometheus.rs`).
    pub metrics: Metrics,
    /// Connections open now: enforces `max_connections` and is reported at scrape time.
    pub open_connections: AtomicUsize,
}

/// A bound Kafka-protocol server over a [`Log`].
pub struct Broker {
    listener: TcpListener,
    /// The `/metrics` listener, unless `metrics_listen` is off.
    metrics_listener: Option<TcpListener>,
    ctx: Arc<Context>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("addr", &self.local_addr())
            .field("metrics_addr", &self.metrics_addr())
            .finish()
    }
}

impl Broker {
    /// Binds the listener and, unless turned off, the metrics listener (port 0 picks a free
    /// port; see [`local_addr`](Self::local_addr) and [`metrics_addr`](Self::metrics_addr)).
    pub async fn bind(log: Log, config: BrokerConfig) -> Result<Broker> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Network {
                op: "listen on",
                addr: config.listen.to_string(),
                source: e,
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Network {
            op: "read the address of",
            addr: config.listen.to_string(),
            source: e,
        })?;
        let advertised_host = config.advertised_host.clone().unwrap_or_else(|| {
            if addr.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                addr.ip().to_string()
            }
        });
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(super::prometheus::bind(addr).await?),
            None => None,
        };
        let txn = log.txn_coordinator()?;
        let (stop, stopping) = watch::channel(false);
        Ok(Broker {
            listener,
            metrics_listener,
            ctx: Arc::new(Context {
                log,
                inflight: tokio::sync::Semaphore::new(
                    config
                        .max_inflight_bytes
                        .max(config.max_frame_bytes)
                        .min(tokio::sync::Semaphore::MAX_PERMITS),
                ),
                config,
                advertised_host,
                advertised_port: i32::from(addr.port()),
                stopping,
                groups: Arc::new(GroupCoordinator::new(GroupLimits::default())),
                txn,
                metrics: Metrics::new(),
                open_connections: AtomicUsize::new(0),
            }),
            stop,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.ctx.config.listen)
    }

    /// The address `GET /metrics` is served on, or `None` when metrics are off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then answers in-flight requests, closes every
    /// connection and flushes the log.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let stop_rx = self.ctx.stopping.clone();
        let mut tasks = JoinSet::new();
        let group_timers = tokio::spawn(self.ctx.groups.clone().run_timers());
        // The log's background thread expires transactions; without it, this task does.
        let txn_timer = (!self.ctx.log.has_background())
            .then(|| tokio::spawn(super::txn::run_timer(self.ctx.txn.clone())));
        let metrics_addr = self.metrics_addr();
        let metrics_server = self
            .metrics_listener
            .take()
            .map(|l| tokio::spawn(super::prometheus::serve(l, self.ctx.clone())));
        tokio::pin!(shutdown);
        tracing::info!(addr = %self.local_addr(), metrics = ?metrics_addr, "broker ready");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let open = &self.ctx.open_connections;
                    if open.load(Ordering::Acquire) >= self.ctx.config.max_connections {
                        tracing::warn!(%peer, max = self.ctx.config.max_connections, "connection limit reached; closing new connection");
                        drop(stream);
                        continue;
                    }
                    open.fetch_add(1, Ordering::AcqRel);
                    let ctx = self.ctx.clone();
                    let stop = stop_rx.clone();
                    tasks.spawn(async move {
                        super::connection::serve(ctx.clone(), stream, peer, stop).await;
                        ctx.open_connections.fetch_sub(1, Ordering::AcqRel);
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tracing::info!("broker stopping: answering in-flight requests");
        let _ = self.stop.send(true);
        // Joins and syncs waiting on a rebalance are answered now, not at its deadline.
        self.ctx.groups.shutdown();
        group_timers.abort();
        if let Some(timer) = txn_timer {
            timer.abort();
        }
        if let Some(server) = metrics_server {
            server.abort();
        }
        let drained = tokio::time::timeout(Duration::from_secs(30), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("connections still busy after 30 s; closing them");
            tasks.abort_all();
        }
        self.ctx.log.flush()?;
        tracing::info!("broker stopped");
        Ok(())
    }
}
