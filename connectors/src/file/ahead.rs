//! Parsing a file's batches ahead of the polls, on worker threads of the source's own.
//!
//! The source cuts the bytes it has read into batches of whole records, in file order,
//! and submits each with the position after it; workers parse them side by side, and
//! [`ParseAhead::next`] hands them out in the order they were submitted. A batch takes
//! about a millisecond to parse, so the threads are started once and fed through a
//! queue, and the buffers come back with the results to be read into again.

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};

use arrow::array::RecordBatch;
use parking_lot::Mutex;

use super::parse::RecordParser;
use crate::batch::{Position, Reject, SourceBatch};
use crate::error::{Error, Result};

/// A batch of records to parse.
struct Job {
    parser: Arc<RecordParser>,
    /// The records are `chunk[start..]`.
    chunk: Vec<u8>,
    start: usize,
    label: Arc<str>,
    first_line: u64,
    reply: mpsc::SyncSender<Parsed>,
}

/// A job's result, and its buffer back.
struct Parsed {
    rows: Result<(RecordBatch, Vec<Reject>)>,
    chunk: Vec<u8>,
}

/// A submitted batch, in file order.
struct Submitted {
    position: Position,
    reply: mpsc::Receiver<Parsed>,
}

/// Worker threads parsing submitted batches, and the batches not yet handed out.
pub(super) struct ParseAhead {
    /// The source's name, for errors.
    name: String,
    jobs: mpsc::Sender<Job>,
    submitted: VecDeque<Submitted>,
    /// Batches submitted at most at once: one per worker, and one waiting, so a worker
    /// that finishes finds the next at once.
    depth: usize,
    /// Chunk buffers back from the workers.
    spare: Vec<Vec<u8>>,
}

impl ParseAhead {
    /// Starts `threads` workers, named after the source.
    pub(super) fn start(name: &str, threads: usize) -> Result<ParseAhead> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("sluice-parse-{i}"))
                .spawn(move || work(&queue))
                .map_err(|e| {
                    Error::connector(name, format!("cannot start a parsing thread: {e}"))
                })?;
        }
        Ok(ParseAhead {
            name: name.to_string(),
            jobs,
            submitted: VecDeque::new(),
            depth: threads + 1,
            spare: Vec::new(),
        })
    }

    /// Whether no batch is waiting to be handed out.
    pub(super) fn is_empty(&self) -> bool {
        self.submitted.is_empty()
    }

    /// Whether another batch may be submitted.
    pub(super) fn wants_more(&self) -> bool {
        self.submitted.len() < self.depth
    }

    /// A buffer back from the workers, to fill again (empty if none is back).
    pub(super) fn spare(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Hands the bytes of `chunk` from `start` (whole records starting at line
    /// `first_line` of `label`) to the workers; its batch will carry `position`.
    pub(super) fn submit(
        &mut self,
        parser: &Arc<RecordParser>,
        chunk: Vec<u8>,
        start: usize,
        label: &Arc<str>,
        first_line: u64,
        position: Position,
    ) -> Result<()> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            parser: parser.clone(),
            chunk,
            start,
            label: label.clone(),
            first_line,
            reply,
        };
        self.jobs.send(job).map_err(|_| self.stopped())?;
        self.submitted.push_back(Submitted {
            position,
            reply: answer,
        });
        Ok(())
    }

    /// The oldest submitted batch, once parsed; `None` if none is waiting.
    pub(super) fn next(&mut self) -> Option<Result<SourceBatch>> {
        let submitted = self.submitted.pop_front()?;
        let Ok(parsed) = submitted.reply.recv() else {
            // The worker dropped the job without answering: it panicked.
            return Some(Err(self.stopped()));
        };
        self.spare.push(parsed.chunk);
        Some(parsed.rows.map(|(rows, rejects)| {
            let mut batch = SourceBatch::new(rows, submitted.position);
            batch.rejects = rejects;
            batch
        }))
    }

    /// Forgets every batch not yet handed out (the source is reopened elsewhere).
    pub(super) fn clear(&mut self) {
        self.submitted.clear();
    }

    fn stopped(&self) -> Error {
        Error::connector(
            &self.name,
            "a parsing thread stopped (it panicked: a bug, please report)",
        )
    }
}

/// A worker: parses jobs until the source is dropped.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held while waiting: the other workers wait for it instead.
        let Ok(job) = queue.lock().recv() else {
            return;
        };
        let records = job.chunk.get(job.start..).unwrap_or_default();
        let rows = job.parser.parse(records, &job.label, job.first_line);
        // The batch may have been forgotten meanwhile: nobody to tell.
        let _ = job.reply.send(Parsed {
            rows,
            chunk: job.chunk,
        });
    }
}
