//! Running one source: poll it, transform, encode, and write the rows with the source's
//! new position in one log transaction, so after a crash the source resumes exactly where
//! the log's records end (exactly-once into the topic).
//!
//! Batches read back to back share one transaction for up to `transaction_interval_ms`
//! (each batch's records are appended as it comes; the position after the last one goes
//! in at the commit), so a bulk load pays for a transaction's fsyncs a few times a second,
//! not once per batch. A source with nothing new, or done, commits at once.
//!
//! Backpressure: at most one batch is read ahead. After a full batch (the source had more
//! at hand) the task sends it from a scoped thread while polling the source for the next
//! one, so reading and parsing overlap encoding and appending; the next batch is sent
//! only once this one is in the log. After a short batch (the source caught up) nothing
//! is read ahead. A source that prepares its batches ahead itself
//! ([`Source::prepares_ahead`]: the `file` source's parsing threads, at most
//! `parse_threads + 1` batches ahead) is polled and sent on the task's own thread.
//! Outside failures abort the open transaction and are retried with backoff from the last
//! committed position.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use sluice_core::{Log, NewTopic, Payload, Producer, ProducerConfig, ProducerRecord};
use tokio::sync::watch;

use super::dead_letter;
use super::retry::{self, Backoff};
use super::stats::{ConnectorStats, State};
use super::store::{POSITIONS_TOPIC, StoredPosition, position_key, read_positions};
use crate::batch::{Poll, Position, Reject, SourceBatch};
use crate::config::{OnError, SourceSection};
use crate::convert::Converter;
use crate::error::{Error, Result};
use crate::schema::{SCHEMAS_TOPIC, SchemaEntry, format_schema};
use crate::source::Source;
use crate::transform::{Chain, TopicTemplate};

/// How long to wait before polling a source that said it has nothing new.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// A topic's encoders for one schema.
struct Encoders {
    columns: String,
    value: Converter,
    key: Option<(Vec<usize>, Converter)>,
}

pub(crate) struct SourceTask {
    pub(crate) source: Box<dyn Source>,
    pub(crate) publisher: Publisher,
}

/// What turns a source's batches into records in the log: everything of the task but
/// the source itself, so a batch is sent while the source reads the next one.
pub(crate) struct Publisher {
    pub(crate) pipeline: String,
    pub(crate) section: SourceSection,
    pub(crate) chain: Chain,
    pub(crate) on_error: OnError,
    pub(crate) dead_letter_topic: String,
    pub(crate) retry_timeout: Duration,
    pub(crate) stats: Arc<ConnectorStats>,
    pub(crate) topic: TopicTemplate,
}

/// What the task keeps between batches.
struct Writer {
    log: Log,
    producer: Producer,
    /// Writes schema entries, outside the transactions.
    entries: Producer,
    topics_ready: HashSet<String>,
    encoders: HashMap<String, Encoders>,
    records_total: u64,
    /// The transaction batches were sent in, not yet committed.
    open: Option<OpenTxn>,
}

impl Writer {
    /// Aborts the open transaction: nothing of it counts, and the source replays it from
    /// the last committed position. Schema entries are written again before new records.
    fn abort(&mut self) {
        if self.open.take().is_some() {
            let _ = self.producer.abort_transaction();
        }
        for enc in self.encoders.values_mut() {
            enc.columns.clear();
        }
    }
}

/// A log transaction holding the records of one or more batches.
struct OpenTxn {
    started: Instant,
    /// The source's position after the last batch sent.
    position: Position,
    /// Rows and value bytes sent in it.
    written: usize,
    bytes: usize,
}

impl SourceTask {
    /// Runs until the source is done, `stop` turns true, or an error that retrying cannot
    /// fix.
    pub(crate) async fn run(mut self, log: Log, mut stop: watch::Receiver<bool>) -> Result<()> {
        let key = position_key(&self.publisher.pipeline, self.publisher.name());
        let stored = read_positions(&log)?.remove(&key);
        let mut position = stored.as_ref().map(|s| s.position.clone());
        let producer = log.producer(ProducerConfig::default().transactional_id(format!(
            "sluice-connect.{}.{}",
            self.publisher.pipeline,
            self.publisher.name()
        )))?;
        producer.init_transactions()?;
        let entries = log.producer(ProducerConfig::default())?;
        let mut writer = Writer {
            log,
            producer,
            entries,
            topics_ready: HashSet::new(),
            encoders: HashMap::new(),
            records_total: stored.map_or(0, |s| s.records),
            open: None,
        };
        let interval = Duration::from_millis(self.publisher.section.common.transaction_interval_ms);
        let mut backoff = Backoff::new(self.publisher.retry_timeout);
        'open: loop {
            if *stop.borrow() {
                return Ok(());
            }
            if let Err(e) = self.source.open(position.clone()).await {
                retry::wait(&self.publisher.stats, &mut backoff, e, &mut stop).await?;
                continue 'open;
            }
            self.publisher.stats.set(State::Running);
            // The poll made while the last batch was sent, if one was.
            let mut ahead: Option<Result<Poll>> = None;
            loop {
                if *stop.borrow() {
                    // Every batch sent is whole: keep them.
                    return self.commit(&mut writer, &key, &mut position).await;
                }
                let poll = match ahead.take() {
                    Some(poll) => Some(poll),
                    None => tokio::select! {
                        poll = self.source.poll(self.publisher.section.common.batch_rows) => Some(poll),
                        _ = stop.changed() => None,
                    },
                };
                let Some(poll) = poll else {
                    return self.commit(&mut writer, &key, &mut position).await;
                };
                let idle = match poll {
                    Err(e) => {
                        writer.abort();
                        retry::wait(&self.publisher.stats, &mut backoff, e, &mut stop).await?;
                        continue 'open;
                    }
                    Ok(Poll::Idle) => true,
                    Ok(Poll::Done) => {
                        if let Err(e) = self.commit(&mut writer, &key, &mut position).await {
                            retry::wait(&self.publisher.stats, &mut backoff, e, &mut stop).await?;
                            continue 'open;
                        }
                        self.publisher.stats.set(State::Done);
                        return Ok(());
                    }
                    Ok(Poll::Batch(batch)) => {
                        let sent = if batch.rows.num_rows()
                            >= self.publisher.section.common.batch_rows
                            && !self.source.prepares_ahead()
                        {
                            // A full batch: the source has more at hand, so read it meanwhile.
                            let (sent, next) = self.send_reading_ahead(&mut writer, batch);
                            ahead = Some(next);
                            sent
                        } else {
                            tokio::task::block_in_place(|| self.publisher.send(&mut writer, batch))
                        };
                        if let Err(e) = sent {
                            // What was read ahead is dropped (`ahead` starts empty again)
                            // and read again from the committed position.
                            writer.abort();
                            retry::wait(&self.publisher.stats, &mut backoff, e, &mut stop).await?;
                            continue 'open;
                        }
                        false
                    }
                };
                let due = writer
                    .open
                    .as_ref()
                    .is_some_and(|t| idle || t.started.elapsed() >= interval);
                if due && let Err(e) = self.commit(&mut writer, &key, &mut position).await {
                    retry::wait(&self.publisher.stats, &mut backoff, e, &mut stop).await?;
                    continue 'open;
                }
                if idle {
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_WAIT) => {}
                        // Nothing is open after an idle poll: nothing to commit.
                        _ = stop.changed() => return Ok(()),
                    }
                } else {
                    backoff.reset();
                }
            }
        }
    }

    /// Sends `batch` from a scoped thread while this one polls the source for the next
    /// batch, so a bulk source's reading and parsing overlap the encoding and appending
    /// of what it read before (on one thread, they took turns). Returns the send's result
    /// and the poll's; the next batch is sent only after this one, so records and
    /// positions keep their order, and if the send failed the poll's batch is dropped with
    /// the aborted transaction and read again.
    fn send_reading_ahead(
        &mut self,
        writer: &mut Writer,
        batch: SourceBatch,
    ) -> (Result<()>, Result<Poll>) {
        let rows = self.publisher.section.common.batch_rows;
        let (publisher, source) = (&self.publisher, &mut self.source);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let sending = scope.spawn(|| {
                    // The runtime's context, as the task's own thread has it (a `sql`
                    // transform runs its query on it).
                    let _runtime = runtime.enter();
                    publisher.send(writer, batch)
                });
                let next = runtime.block_on(source.poll(rows));
                let sent = sending.join().unwrap_or_else(|_| {
                    Err(Error::connector(
                        publisher.name(),
                        "sending a batch panicked (a bug, please report)",
                    ))
                });
                (sent, next)
            })
        })
    }

    /// Commits the open transaction (if any) with the position after its last batch, and
    /// tells the source. On failure nothing of it counts: the source is reopened at the old
    /// position.
    async fn commit(
        &mut self,
        w: &mut Writer,
        key: &str,
        position: &mut Option<Position>,
    ) -> Result<()> {
        let Some(txn) = w.open.take() else {
            return Ok(());
        };
        let stored = StoredPosition {
            position: txn.position.clone(),
            updated_ms: sluice_core::now_ms(),
            records: w.records_total + txn.written as u64,
        };
        let value = serde_json::to_vec(&stored).map_err(|e| Error::config(e.to_string()))?;
        let record = ProducerRecord::to(POSITIONS_TOPIC)
            .key(key.to_string())
            .value(value);
        let committed = tokio::task::block_in_place(|| {
            w.producer
                .send_all(vec![record])
                .and_then(|_| w.producer.commit_transaction())
        });
        if let Err(e) = committed {
            w.open = Some(txn);
            w.abort();
            return Err(log_error(e));
        }
        w.records_total += txn.written as u64;
        self.publisher.stats.add(txn.written, txn.bytes);
        *position = Some(txn.position.clone());
        self.source.committed(&txn.position).await
    }
}

impl Publisher {
    fn name(&self) -> &str {
        &self.section.common.name
    }

    /// Sends one batch's records in the open transaction (begun if there is none).
    fn send(&self, w: &mut Writer, batch: SourceBatch) -> Result<()> {
        let SourceBatch {
            stream,
            rows,
            tombstones,
            default_key,
            rejects,
            position,
        } = batch;
        let out = self.chain.apply(rows.clone())?;

        let mut bad: Vec<(Reject, Option<Vec<u8>>)> =
            rejects.into_iter().map(|r| (r, None)).collect();
        for (row, error) in &out.rejected {
            bad.push((
                Reject {
                    position: format!(
                        "{}: row {row} of the batch before position {position}",
                        self.name()
                    ),
                    bytes: row_as_json(&rows, *row),
                    error: error.clone(),
                },
                None,
            ));
        }
        let dead = dead_letter::handle(
            self.on_error,
            bad,
            &self.dead_letter_topic,
            &self.pipeline,
            self.name(),
            &self.stats,
        )?;

        // Each routed topic's encoded rows, sent once the transaction is open.
        let mut by_topic = Vec::with_capacity(out.routed.len());
        let mut bytes = 0usize;
        let mut written = 0usize;
        let mut origin = out.origin.iter();
        let key_fields = if self.section.common.key.to_vec().is_empty() {
            default_key
        } else {
            self.section.common.key.to_vec()
        };
        for (route, rows) in &out.routed {
            let topic = match route {
                Some(topic) => topic.clone(),
                None => self.topic.render(&|field| match field {
                    "stream" | "table" => stream.clone(),
                    _ => None,
                })?,
            };
            let origins: Vec<u32> = origin.by_ref().take(rows.num_rows()).copied().collect();
            if rows.num_rows() == 0 {
                continue;
            }
            self.ready(w, &topic)?;
            if let Some(entry) = self.encoders(w, &topic, &rows.schema(), &key_fields)? {
                // The entry goes in ahead of (not with) the records: a transaction's records
                // become visible partition by partition, and a sink that saw records before
                // their schema entry would have to guess the schema.
                let value = serde_json::to_vec(&entry).map_err(|e| Error::config(e.to_string()))?;
                let entry = ProducerRecord::to(SCHEMAS_TOPIC)
                    .key(topic.clone())
                    .value(value);
                w.entries.send_and_wait(entry).map_err(log_error)?;
            }
            let enc = w
                .encoders
                .get(&topic)
                .ok_or_else(|| Error::config("internal: no encoder"))?;
            let values = enc.value.encode(rows)?;
            let keys = match &enc.key {
                Some((indices, converter)) => Some(converter.encode(&rows.project(indices)?)?),
                None => None,
            };
            let times = self.timestamps(rows)?;
            let deleted: Vec<bool> = match &tombstones {
                Some(t) => origins
                    .iter()
                    .map(|&o| t.is_valid(o as usize) && t.value(o as usize))
                    .collect(),
                None => Vec::new(),
            };
            bytes += values.iter().map(<[u8]>::len).sum::<usize>();
            written += values.len();
            by_topic.push((topic, values, keys, times, deleted));
        }
        if !dead.is_empty() {
            self.ready(w, &self.dead_letter_topic)?;
        }
        if w.open.is_none() {
            w.producer.begin_transaction()?;
        }
        let open = w.open.get_or_insert_with(|| OpenTxn {
            started: Instant::now(),
            position: position.clone(),
            written: 0,
            bytes: 0,
        });
        open.position = position;
        open.written += written;
        open.bytes += bytes;
        for (topic, values, keys, times, deleted) in &by_topic {
            let records = values.iter().enumerate().flat_map(|(i, value)| {
                let record = Payload {
                    key: keys.as_ref().and_then(|keys| keys.get(i)),
                    value: Some(value),
                    timestamp: times
                        .as_ref()
                        .filter(|times| times.is_valid(i))
                        .map(|times| times.value(i)),
                };
                // A deleted row is the row, then its key alone (Debezium's delete event and
                // tombstone): logs keep the change, upsert sinks delete, compaction drops it.
                let tombstone =
                    (deleted.get(i) == Some(&true) && record.key.is_some()).then_some(Payload {
                        value: None,
                        ..record
                    });
                std::iter::once(record).chain(tombstone)
            });
            w.producer.send_all_to(topic, records).map_err(log_error)?;
        }
        w.producer.send_all(dead).map_err(log_error)
    }

    /// Creates a topic the source writes to if it is missing.
    fn ready(&self, w: &mut Writer, topic: &str) -> Result<()> {
        if w.topics_ready.contains(topic) {
            return Ok(());
        }
        let partitions = if topic == self.dead_letter_topic {
            1
        } else {
            self.section.common.partitions
        };
        w.log.ensure_topic(NewTopic::new(topic, partitions))?;
        w.topics_ready.insert(topic.to_string());
        Ok(())
    }

    /// The encoders of a topic for this schema; a new schema entry to write when the
    /// schema is new for the topic.
    fn encoders(
        &self,
        w: &mut Writer,
        topic: &str,
        schema: &SchemaRef,
        key_fields: &[String],
    ) -> Result<Option<SchemaEntry>> {
        let columns = format_schema(schema);
        if w.encoders.get(topic).is_some_and(|e| e.columns == columns) {
            return Ok(None);
        }
        let format = &self.section.common.value_format;
        let value = Converter::new(format, schema.clone())?;
        let who = format!("source \"{}\"", self.name());
        let key = Converter::for_key(format, schema, key_fields, &who)?;
        w.encoders.insert(
            topic.to_string(),
            Encoders {
                columns: columns.clone(),
                value,
                key,
            },
        );
        let entry = SchemaEntry {
            columns,
            format: format.clone(),
            key: key_fields.to_vec(),
        };
        Ok(Some(entry))
    }

    /// Record timestamps from the `timestamp` field, if configured.
    fn timestamps(&self, rows: &RecordBatch) -> Result<Option<TimestampMillisecondArray>> {
        let Some(field) = &self.section.common.timestamp else {
            return Ok(None);
        };
        let column = rows.column_by_name(field).ok_or_else(|| {
            Error::config(format!(
                "source \"{}\": timestamp field `{field}` is not among the rows' fields ({})",
                self.name(),
                format_schema(&rows.schema())
            ))
        })?;
        let ms = cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        Ok(ms
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .cloned())
    }
}

/// A log failure: disk-level errors are worth retrying, the rest are not.
fn log_error(e: sluice_core::Error) -> Error {
    let text = e.to_string();
    if text.contains("No space left")
        || text.contains("ENOSPC")
        || text.contains("Input/output error")
    {
        Error::unavailable("the log", text)
    } else {
        Error::Log(e)
    }
}

/// A row as a JSON object, for a dead-letter record of a row a transform rejected.
pub(crate) fn row_as_json(rows: &RecordBatch, row: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let one = rows.slice(row.min(rows.num_rows().saturating_sub(1)), 1);
    let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
    if writer.write(&one).and_then(|_| writer.finish()).is_err() {
        return Vec::new();
    }
    while out.last() == Some(&b'\n') {
        out.pop();
    }
    out
}
