//! `sluice serve`: the log behind the Kafka wire protocol until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use sluice_core::broker::Broker;
use sluice_core::{Config, LogOptions};
use sluice_sql::SqlEngine;
use sluice_sql::pg::{PG_LISTEN_DEFAULT, PgServer};

use super::LogArgs;

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for Kafka clients [default: broker.listen from the config, else
    /// 127.0.0.1:9092]; port 0 picks a free port (printed when ready).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Address for the Prometheus `GET /metrics` endpoint [default: broker.metrics_listen
    /// from the config, else 127.0.0.1:9308]; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_metrics")]
    metrics_listen: Option<SocketAddr>,
    /// Don't serve `/metrics`.
    #[arg(long)]
    no_metrics: bool,
    /// Address of the PostgreSQL wire endpoint for SQL over topics (psql, drivers; no
    /// authentication: keep it on loopback); port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", default_value = PG_LISTEN_DEFAULT, conflicts_with = "no_pg")]
    pg_listen: SocketAddr,
    /// Don't serve SQL over the PostgreSQL wire protocol.
    #[arg(long)]
    no_pg: bool,
    /// Settings file (same as --config-file).
    #[arg(long = "config", value_name = "FILE")]
    settings: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs the broker until a signal.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let mut log_args = args.log.clone();
    if args.settings.is_some() {
        log_args.config = args.settings.clone();
    }
    let config: Config = log_args.load_config()?;
    let dir = log_args.resolve_dir(&config);
    let mut broker_config = config.broker.clone();
    if let Some(listen) = args.listen {
        broker_config.listen = listen;
    }
    if let Some(addr) = args.metrics_listen {
        broker_config.metrics_listen = Some(addr);
    }
    if args.no_metrics {
        broker_config.metrics_listen = None;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-broker")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let log = LogOptions::new()
            .config(config.log.clone())
            .open(&dir)
            .with_context(|| format!("opening the log in {}", dir.display()))?;
        let broker = Broker::bind(log.clone(), broker_config).await?;
        eprintln!(
            "sluice broker ready on {} (data dir {})",
            broker.local_addr(),
            dir.display()
        );
        match broker.metrics_addr() {
            Some(addr) => eprintln!("sluice metrics on http://{addr}/metrics"),
            None => eprintln!("sluice metrics off"),
        }
        let pg = if args.no_pg {
            eprintln!("sluice sql (PostgreSQL wire) off");
            None
        } else {
            let engine = Arc::new(SqlEngine::open(log.clone()).context("opening the SQL catalog")?);
            let server = PgServer::bind(engine, args.pg_listen)
                .await
                .with_context(|| {
                    format!(
                        "binding the PostgreSQL endpoint to {} (choose another with --pg-listen, \
                     or turn it off with --no-pg)",
                        args.pg_listen
                    )
                })?;
            eprintln!("sluice sql (PostgreSQL wire) on {}", server.local_addr()?);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(server.run(async {
                let _ = stopped.await;
            }));
            Some((stop, task))
        };
        let served = broker.run(shutdown_signal()).await;
        if let Some((stop, task)) = pg {
            let _ = stop.send(());
            task.await.context("the PostgreSQL endpoint task")??;
        }
        served?;
        log.close()?;
        eprintln!("sluice broker stopped");
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
