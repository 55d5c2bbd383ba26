//! Kafka framing: a 4-byte big-endian length, then that many bytes.
//!
//! The length is checked against the configured maximum before anything is allocated, so
//! a hostile or confused peer (an HTTP client, random bytes) can't make the broker reserve
//! memory it names. "Need more bytes" (the peer closed mid-frame) is told apart from "this
//! is not Kafka".

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Why reading a frame stopped.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The peer closed the connection cleanly between frames.
    Closed,
    /// The peer closed the connection in the middle of a frame.
    Truncated,
    /// The length is zero, negative or above the limit.
    BadLength {
        length: i32,
        max: usize,
        looks_like_http: bool,
    },
    /// Reading failed.
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => f.write_str("connection closed"),
            FrameError::Truncated => f.write_str("connection closed in the middle of a request frame"),
            FrameError::BadLength {
                looks_like_http: true,
                ..
            } => f.write_str("received an HTTP request on the Kafka port (point HTTP clients at the metrics port instead)"),
            FrameError::BadLength { length, max, .. } => {
                write!(f, "request frame length {length} is outside 1..={max} (not a Kafka client, or raise broker.max_frame_bytes)")
            }
            FrameError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

/// Reads one frame. Before the body is allocated, `inflight` must grant as many permits as
/// the frame has bytes; they are held (with the returned permit) until the response is
/// written, which bounds the request memory of all connections together.
pub(crate) async fn read_frame<'a, R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
    inflight: &'a Semaphore,
) -> Result<(Bytes, SemaphorePermit<'a>), FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            // Distinguish "closed between frames" from "closed after 1-3 length bytes" is
            // not possible with read_exact; both end the connection the same way.
            return Err(FrameError::Closed);
        }
        Err(e) => return Err(FrameError::Io(e)),
    }
    let length = i32::from_be_bytes(len);
    let looks_like_http = matches!(
        &len,
        b"GET " | b"POST" | b"PUT " | b"HEAD" | b"DELE" | b"OPTI" | b"PATC"
    );
    if length <= 0 || length as usize > max_bytes || looks_like_http {
        return Err(FrameError::BadLength {
            length,
            max: max_bytes,
            looks_like_http,
        });
    }
    let permit = inflight
        .acquire_many(length as u32)
        .await
        .map_err(|_| FrameError::Io(std::io::Error::other("the broker is shutting down")))?;
    let mut body = vec![0u8; length as usize];
    match reader.read_exact(&mut body).await {
        Ok(_) => Ok((Bytes::from(body), permit)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(FrameError::Io(e)),
    }
}
