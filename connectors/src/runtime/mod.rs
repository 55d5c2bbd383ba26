//! Running a pipeline: one task per source and per sink, on the embedded log.
//!
//! [`Pipeline::new`] builds every connector and transform chain from a [`PipelineFile`]
//! (reporting every problem at once); [`Pipeline::check`] asks each connector to check
//! what it can without moving data; [`Pipeline::run`] runs them until the sources are done
//! and the sinks have drained (or until stopped, or until one fails: then the others stop
//! too and the error is returned).
//!
//! What the runtime keeps in the log: source positions in [`POSITIONS_TOPIC`], topic
//! schema entries in [`SCHEMAS_TOPIC`](crate::schema::SCHEMAS_TOPIC), sink offsets in the
//! consumer group `sluice-connect.<pipeline>.<sink>`.

mod dead_letter;
mod retry;
mod sink_task;
mod source_task;
pub mod stats;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_core::{Log, NewTopic};
use tokio::sync::watch;

pub use dead_letter::{CONNECTOR_HEADER, ERROR_HEADER, PIPELINE_HEADER, POSITION_HEADER};
pub use stats::{ConnectorStats, Snapshot, State};
pub use store::{
    POSITIONS_TOPIC, StoredPosition, ensure_internal_topics, position_key, read_positions,
    read_schema_entry,
};

use crate::config::PipelineFile;
use crate::error::{Error, Result};
use crate::registry::Extensions;
use crate::transform::{Chain, TopicTemplate};
use sink_task::SinkTask;
use source_task::{Publisher, SourceTask};

/// How a run ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop once every source is done and every sink has consumed its topics to the end,
    /// even if the pipeline has no sources (a sink-only pipeline then drains what its
    /// topics hold and stops). Without it a pipeline with sources stops when they are all
    /// done and the sinks have drained, and a sink-only pipeline runs until stopped.
    pub once: bool,
}

/// A pipeline ready to check or run.
pub struct Pipeline {
    file: PipelineFile,
    log: Log,
    sources: Vec<SourceTask>,
    sinks: Vec<SinkTask>,
}

impl Pipeline {
    /// Builds the pipeline's connectors and transforms (nothing is opened or moved).
    pub fn new(file: PipelineFile, log: Log) -> Result<Pipeline> {
        Pipeline::with_extensions(file, log, &Extensions::default())
    }

    /// [`new`](Pipeline::new), with source, sink and transform types added.
    pub fn with_extensions(
        file: PipelineFile,
        log: Log,
        extensions: &Extensions,
    ) -> Result<Pipeline> {
        let mut problems = Vec::new();
        let mut sources = Vec::new();
        let mut sinks = Vec::new();
        let dead_letter_topic = file.dead_letter_topic();
        for section in &file.sources {
            let source = extensions.build_source(&section.settings);
            let chain = Chain::build_with(&section.transforms, true, extensions);
            let topic = TopicTemplate::parse(&section.common.topic)
                .map_err(|e| Error::config(section.settings.problem(Some("topic"), e)));
            match (source, chain, topic) {
                (Ok(source), Ok(chain), Ok(topic)) => sources.push(SourceTask {
                    source,
                    publisher: Publisher {
                        pipeline: file.name.clone(),
                        section: section.clone(),
                        chain,
                        on_error: section.common.on_error.unwrap_or(file.pipeline.on_error),
                        dead_letter_topic: dead_letter_topic.clone(),
                        retry_timeout: file.retry_timeout(),
                        stats: ConnectorStats::new("source", &section.common.name),
                        topic,
                    },
                }),
                (a, b, c) => {
                    problems.extend(a.err().map(|e| e.to_string()));
                    problems.extend(b.err().map(|e| e.to_string()));
                    problems.extend(c.err().map(|e| e.to_string()));
                }
            }
        }
        for section in &file.sinks {
            let sink = extensions.build_sink(&section.settings);
            let chain = Chain::build_with(&section.transforms, false, extensions);
            match (sink, chain) {
                (Ok(sink), Ok(chain)) => sinks.push(SinkTask {
                    pipeline: file.name.clone(),
                    section: section.clone(),
                    sink,
                    chain,
                    on_error: section.common.on_error.unwrap_or(file.pipeline.on_error),
                    dead_letter_topic: dead_letter_topic.clone(),
                    retry_timeout: file.retry_timeout(),
                    commit_interval: file.commit_interval(),
                    stats: ConnectorStats::new("sink", &section.common.name),
                }),
                (a, b) => {
                    problems.extend(a.err().map(|e| e.to_string()));
                    problems.extend(b.err().map(|e| e.to_string()));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::config(problems.join("\n")));
        }
        Ok(Pipeline {
            file,
            log,
            sources,
            sinks,
        })
    }

    /// The pipeline file.
    pub fn file(&self) -> &PipelineFile {
        &self.file
    }

    /// Asks every connector to check what it can without moving data; every problem
    /// found, prefixed with the line of its section.
    pub async fn check(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for task in &mut self.sources {
            for p in task.source.check().await {
                problems.push(task.publisher.section.settings.problem(None, p));
            }
        }
        for task in &mut self.sinks {
            for p in task.sink.check().await {
                problems.push(task.section.settings.problem(None, p));
            }
            for topic in task.section.common.topics.to_vec() {
                let written_here = self
                    .file
                    .sources
                    .iter()
                    .any(|s| s.common.topic == topic || s.common.topic.contains('{'));
                if !written_here && self.log.partition_count(&topic).is_err() {
                    problems.push(task.section.settings.problem(
                        Some("topics"),
                        format!("topic `{topic}` does not exist and no source of this pipeline writes it"),
                    ));
                }
            }
        }
        problems
    }

    /// The live counters of every source and sink, in file order.
    pub fn stats(&self) -> Vec<Arc<ConnectorStats>> {
        self.sources
            .iter()
            .map(|t| t.publisher.stats.clone())
            .chain(self.sinks.iter().map(|t| t.stats.clone()))
            .collect()
    }

    /// Runs the pipeline until it is done (see [`RunOptions`]), `stop` turns true, or a
    /// connector fails (the first error is returned after the others stopped cleanly).
    pub async fn run(self, options: RunOptions, stop: watch::Receiver<bool>) -> Result<()> {
        let Pipeline {
            file,
            log,
            sources,
            sinks,
        } = self;
        ensure_internal_topics(&log)?;
        // Topics with fixed names are created up front, so sinks of the same pipeline can
        // start reading them at once.
        for section in &file.sources {
            if !section.common.topic.contains('{') {
                log.ensure_topic(NewTopic::new(
                    section.common.topic.clone(),
                    section.common.partitions,
                ))?;
            }
        }
        let (halt_tx, halt_rx) = watch::channel(false);
        let drained = Arc::new(AtomicBool::new(sources.is_empty() && options.once));
        let no_sources = sources.is_empty();

        let mut source_handles = Vec::new();
        for task in sources {
            let (log, halt) = (log.clone(), halt_rx.clone());
            source_handles.push(tokio::spawn(async move { task.run(log, halt).await }));
        }
        let mut sink_handles = Vec::new();
        for task in sinks {
            let (log, halt, drained) = (log.clone(), halt_rx.clone(), drained.clone());
            sink_handles.push(tokio::spawn(
                async move { task.run(log, halt, drained).await },
            ));
        }

        // Forward an outside stop to every task.
        let forward = {
            let mut stop = stop.clone();
            let halt_tx = halt_tx.clone();
            tokio::spawn(async move {
                while !*stop.borrow() {
                    if stop.changed().await.is_err() {
                        return;
                    }
                }
                let _ = halt_tx.send(true);
            })
        };

        let mut first_error: Option<Error> = None;
        let mut record = |result: std::result::Result<Result<()>, tokio::task::JoinError>,
                          halt: &watch::Sender<bool>| {
            let error = match result {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(e) => Error::config(format!("a connector task panicked: {e}")),
            };
            let _ = halt.send(true);
            if first_error.is_none() {
                first_error = Some(error);
            }
        };
        for handle in source_handles {
            let result = handle.await;
            record(result, &halt_tx);
        }
        if !no_sources || options.once {
            drained.store(true, Ordering::Relaxed);
        }
        for handle in sink_handles {
            let result = handle.await;
            record(result, &halt_tx);
        }
        forward.abort();
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
