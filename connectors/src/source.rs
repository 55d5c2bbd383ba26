//! The [`Source`] trait: what a connector that reads from the outside world implements.

use async_trait::async_trait;

use crate::batch::{Poll, Position};
use crate::error::Result;

/// A connector reading from outside into a topic.
///
/// The runtime calls [`open`](Source::open) once with the last position stored in the
/// log, then [`poll`](Source::poll) repeatedly; after the rows of a batch and its position
/// are in the log it calls [`committed`](Source::committed). A source must resume exactly
/// after a position it returned: rows before it are never read again, rows after it are
/// never skipped. Delivery into the log is then exactly-once (records and position are
/// written in one log transaction).
#[async_trait]
pub trait Source: Send {
    /// Checks what can be checked without moving data: paths exist, databases answer,
    /// tables and columns are there. Returns every problem found (empty: fine).
    async fn check(&mut self) -> Vec<String>;

    /// Prepares to read from `position` (`None`: from the start, per the source's config).
    async fn open(&mut self, position: Option<Position>) -> Result<()>;

    /// Reads up to `max_rows` rows.
    async fn poll(&mut self, max_rows: usize) -> Result<Poll>;

    /// Whether the source prepares its batches ahead on threads of its own, so that a
    /// poll with more at hand returns at once. The runtime then sends each batch on its
    /// own thread; otherwise it sends a full batch from a second thread while polling for
    /// the next.
    fn prepares_ahead(&self) -> bool {
        false
    }

    /// Everything up to `position` is durable in the log: a source that must acknowledge
    /// upstream (a replication slot) does it here.
    async fn committed(&mut self, position: &Position) -> Result<()> {
        let _ = position;
        Ok(())
    }
}
