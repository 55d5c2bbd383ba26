//! Broker metrics and the Prometheus `GET /metrics` endpoint.
//!
//! Counters and histograms go through the `metrics` facade into a [`PrometheusRecorder`]
//! owned by this broker, not a process-global one: each call site installs it with
//! [`metrics::with_local_recorder`] for the (synchronous) duration of the update, so two
//! brokers in one process (tests, embedders) keep separate numbers and nothing needs a
//! global `OnceLock`. Values that are state rather than events — log end offsets,
//! consumer-group lag, open connections — are read from the log at scrape time and
//! appended to the rendered text, so a deleted topic or group leaves no stale series.
//!
//! The endpoint is a deliberately tiny HTTP/1.1 responder (the exporter's hyper listener
//! is not built): one request per connection, the request head bounded to
//! [`MAX_REQUEST_HEAD_BYTES`] and [`REQUEST_TIMEOUT`], at most [`MAX_SCRAPERS`] at once.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::server::Context;
use crate::record::BatchIter;

/// Longest request line plus headers accepted; a longer head closes the connection.
pub(crate) const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// A scraper that has not sent its request head by then is disconnected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrape connections served at once; more are closed on accept.
const MAX_SCRAPERS: usize = 16;
/// Request-duration buckets, in seconds: sub-millisecond metadata calls up to the 30 s
/// long-poll cap of Fetch.
const DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// This broker's recorder and the handle that renders it.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn new() -> Metrics {
        let builder = PrometheusBuilder::new();
        // Only fails on an empty bucket list, and ours is a non-empty constant.
        let builder = match builder.set_buckets_for_metric(
            Matcher::Full("sluice_request_duration_seconds".into()),
            DURATION_BUCKETS_SECONDS,
        ) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!("sluice_records_in_total", "Records appended by Produce.");
            metrics::describe_counter!(
                "sluice_bytes_in_total",
                metrics::Unit::Bytes,
                "Record-batch bytes appended by Produce."
            );
            metrics::describe_counter!("sluice_records_out_total", "Records returned by Fetch.");
            metrics::describe_counter!(
                "sluice_bytes_out_total",
                metrics::Unit::Bytes,
                "Record-batch bytes returned by Fetch."
            );
            metrics::describe_counter!("sluice_requests_total", "Requests handled, by API.");
            metrics::describe_histogram!(
                "sluice_request_duration_seconds",
                metrics::Unit::Seconds,
                "Time to handle a request (Fetch includes its long poll), by API."
            );
        });
        Metrics { recorder, handle }
    }

    /// Counts record batches appended to (`in`) or read from (`out`) `topic`.
    fn batches(&self, direction: Direction, topic: &str, batches: &[u8]) {
        let records: u64 = BatchIter::new(batches)
            .map_while(|b| b.ok())
            .map(|(_, header)| u64::try_from(header.record_count()).unwrap_or(0))
            .sum();
        let (records_name, bytes_name) = match direction {
            Direction::In => ("sluice_records_in_total", "sluice_bytes_in_total"),
            Direction::Out => ("sluice_records_out_total", "sluice_bytes_out_total"),
        };
        metrics::with_local_recorder(&self.recorder, || {
            metrics::counter!(records_name, "topic" => topic.to_string()).increment(records);
            metrics::counter!(bytes_name, "topic" => topic.to_string())
                .increment(batches.len() as u64);
        });
    }

    /// Counts batches a Produce appended to `topic`.
    pub fn produced(&self, topic: &str, batches: &[u8]) {
        self.batches(Direction::In, topic, batches);
    }

    /// Counts batches a Fetch response carries for `topic`.
    pub fn fetched(&self, topic: &str, batches: &[u8]) {
        if !batches.is_empty() {
            self.batches(Direction::Out, topic, batches);
        }
    }

    /// Records one handled request of `api`.
    pub fn request(&self, api: ApiKey, elapsed: Duration) {
        let name = format!("{api:?}");
        metrics::with_local_recorder(&self.recorder, || {
            metrics::counter!("sluice_requests_total", "api" => name.clone()).increment(1);
            metrics::histogram!("sluice_request_duration_seconds", "api" => name)
                .record(elapsed.as_secs_f64());
        });
    }

    /// The Prometheus text exposition: recorded metrics, then scrape-time gauges.
    pub fn render(&self, ctx: &Context) -> String {
        self.handle.run_upkeep();
        let mut out = self.handle.render();
        render_gauges(ctx, &mut out);
        out
    }
}

enum Direction {
    In,
    Out,
}

/// Appends the gauges read from the log now: open connections, log end offsets, lag.
fn render_gauges(ctx: &Context, out: &mut String) {
    let open = ctx
        .open_connections
        .load(std::sync::atomic::Ordering::Acquire);
    let _ = write!(
        out,
        "# HELP sluice_open_connections Kafka-protocol connections open now.\n\
         # TYPE sluice_open_connections gauge\n\
         sluice_open_connections {open}\n"
    );
    out.push_str(
        "# HELP sluice_log_end_offset Offset the next record appended to a partition gets.\n\
         # TYPE sluice_log_end_offset gauge\n",
    );
    for topic in ctx.log.list_topics() {
        let Ok(count) = ctx.log.partition_count(&topic) else {
            continue; // deleted since it was listed
        };
        for id in 0..count {
            if let Ok(p) = ctx.log.partition(&topic, id) {
                let _ = writeln!(
                    out,
                    "sluice_log_end_offset{{topic=\"{}\",partition=\"{id}\"}} {}",
                    escape(&topic),
                    p.log_end_offset()
                );
            }
        }
    }
    out.push_str(
        "# HELP sluice_consumer_group_lag Log end offset minus the group's committed offset.\n\
         # TYPE sluice_consumer_group_lag gauge\n",
    );
    for group in ctx.log.list_groups() {
        for ((topic, id), committed) in ctx.log.group_offsets(&group) {
            let Ok(p) = ctx.log.partition(&topic, id) else {
                continue; // offsets kept for a partition that is gone
            };
            let lag = (p.log_end_offset() - committed.offset).max(0);
            let _ = writeln!(
                out,
                "sluice_consumer_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{id}\"}} {lag}",
                escape(&group),
                escape(&topic)
            );
        }
    }
}

/// Escapes a label value per the text exposition format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds the metrics listener.
pub(crate) async fn bind(addr: SocketAddr) -> crate::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::Network {
            op: "serve metrics on",
            addr: addr.to_string(),
            source: e,
        })
}

/// Serves `GET /metrics` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let permits = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("metrics accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many metrics scrapers; closing");
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(&ctx, stream).await {
                tracing::debug!(%peer, "metrics request: {e}");
            }
            drop(permit);
        });
    }
}

/// Reads one request head and answers it; the connection closes afterwards.
async fn answer(ctx: &Context, mut stream: TcpStream) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()), // too slow: just close
    };
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("/"),
    );
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => {
            let body = ctx.metrics.render(ctx);
            respond(&mut stream, "200 OK", &body).await
        }
        ("GET", _) => respond(&mut stream, "404 Not Found", "try /metrics\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "only GET\n").await,
    }
}

/// Reads up to the blank line ending the request head; `None` if it exceeds the bound.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break; // the client finished sending; answer what arrived
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_REQUEST_HEAD_BYTES {
            return Ok(None);
        }
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
