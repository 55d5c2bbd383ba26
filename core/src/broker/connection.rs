//! One client connection: read a frame, handle it, write the response, in order.
//!
//! Requests on one connection are handled one at a time, as Kafka brokers do, so responses
//! come back in request order without reordering buffers; other connections are separate
//! tasks and are never held up by a slow client here. A connection idle longer than the
//! configured timeout is closed. On shutdown, a request already read is answered first.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::dispatch::{Outcome, handle};
use super::frame::{FrameError, read_frame};
use super::server::Context;

tokio::task_local! {
    /// The peer of the connection whose request is being handled: DescribeGroups reports
    /// it as a group member's client host.
    pub(crate) static PEER: SocketAddr;
}

pub(crate) async fn serve(
    ctx: Arc<Context>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(64 * 1024, read);
    loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            r = tokio::time::timeout(ctx.config.idle_timeout, read_frame(&mut read, ctx.config.max_frame_bytes, &ctx.inflight)) => r,
        };
        let frame = match frame {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            Ok(Err(FrameError::Closed)) => break,
            Ok(Err(e)) => {
                tracing::warn!(%peer, "{e}; closing connection");
                break;
            }
            Ok(Ok(frame)) => frame,
        };
        // The permit for the request's bytes is released once its response is written.
        let (frame, _inflight) = frame;
        match PEER.scope(peer, handle(&ctx, frame)).await {
            Outcome::Respond(bytes) => {
                if let Err(e) = write.write_all(&bytes).await {
                    tracing::debug!(%peer, "write failed: {e}");
                    break;
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                tracing::warn!(%peer, "{reason}; closing connection");
                break;
            }
        }
    }
    let _ = write.shutdown().await;
}
