//! The PostgreSQL wire endpoint (`sluice serve` listens on 127.0.0.1:5433 by default):
//! `psql` and PostgreSQL drivers run SQL over the topics of the served log through the
//! simple query protocol ([`handler`]) or the extended one (prepared statements with
//! parameters, [`extended`]), results in text or binary format ([`encode`]), one shared
//! [`SqlEngine`]. No authentication or TLS yet: keep it on loopback.
//!
//! Connections are capped ([`PG_CONNECTIONS_MAX`]); one over the cap is closed at once.

pub(crate) mod encode;
mod extended;
mod handler;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::SqlEngine;
use handler::Handlers;

/// The most PostgreSQL connections served at once.
pub const PG_CONNECTIONS_MAX: usize = 64;

/// The default address of the endpoint (PostgreSQL's port plus one, so a local PostgreSQL
/// on 5432 is not in the way).
pub const PG_LISTEN_DEFAULT: &str = "127.0.0.1:5433";

/// A bound PostgreSQL endpoint; [`run`](PgServer::run) serves it.
#[derive(Debug)]
pub struct PgServer {
    listener: TcpListener,
    handlers: Arc<Handlers>,
}

impl PgServer {
    /// Binds `addr` (port 0 picks a free port) for queries against `engine`.
    pub async fn bind(engine: Arc<SqlEngine>, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            handlers: Arc::new(Handlers::new(engine)),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until `shutdown` completes, then closes every connection.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let permits = Arc::new(Semaphore::new(PG_CONNECTIONS_MAX));
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (socket, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of descriptors and the like: go on with the next one.
                            tracing::warn!("pg endpoint: accept failed: {e}");
                            continue;
                        }
                    };
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        tracing::warn!(%peer, "pg endpoint: {PG_CONNECTIONS_MAX} connections open; closing");
                        continue;
                    };
                    let handlers = Arc::clone(&self.handlers);
                    connections.spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            tracing::debug!(%peer, "pg connection ended: {e}");
                        }
                        drop(permit);
                    });
                }
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
        Ok(())
    }
}
