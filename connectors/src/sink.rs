//! The [`Sink`] trait: what a connector that writes to the outside world implements.

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::batch::{Offsets, SinkBatch};
use crate::error::Result;

/// What a sink learns when it opens.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The pipeline's name (from the file's `[pipeline]` table, or the file's stem).
    pub pipeline: String,
    /// The sink's name in the pipeline file.
    pub sink: String,
    /// The schema of the rows it will get (after the sink's transforms).
    pub schema: SchemaRef,
    /// The fields forming the key (`key = [...]` in the file, or the topic's schema entry):
    /// what an upsert matches on and what a delete's rows hold.
    pub key: Vec<String>,
}

/// A connector writing records of topics to the outside world.
///
/// The runtime consumes the sink's topics, hands it [`SinkBatch`]es through
/// [`write`](Sink::write), and every commit interval asks it to
/// [`commit`](Sink::commit) what it was given along with the offsets consumed. Only
/// offsets a commit accepted are committed to the consumer group, so after a crash the
/// sink sees again at most what it had not committed: at-least-once. A sink that stores
/// the offsets with its data, atomically (a database transaction, a file renamed into
/// place with a manifest), returns them from [`open`](Sink::open), and the runtime resumes
/// from there: exactly-once.
#[async_trait]
pub trait Sink: Send {
    /// Checks what can be checked without moving data (see [`Source::check`](crate::Source::check)).
    async fn check(&mut self) -> Vec<String>;

    /// Prepares to write (connects, creates the table if configured). Returns the offsets
    /// the target itself stored at its last commit, if it stores them (exactly-once), and
    /// then the runtime resumes from them instead of the consumer group's.
    async fn open(&mut self, context: &SinkContext) -> Result<Option<Offsets>>;

    /// Takes a batch. A sink may write it at once or buffer it until the commit.
    async fn write(&mut self, batch: SinkBatch) -> Result<()>;

    /// Makes everything written so far durable, with `offsets` if the sink stores them.
    /// Returns `false` if the sink declined because its own policy says not yet (a Parquet
    /// file not due to roll): the runtime keeps the offsets pending and asks again. With
    /// `closing` the sink must commit.
    async fn commit(&mut self, offsets: &Offsets, closing: bool) -> Result<bool>;
}
