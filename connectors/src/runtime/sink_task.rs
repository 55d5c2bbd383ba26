//! Running one sink: consume its topics (read_committed), decode and transform the
//! records, hand them to the sink, and every commit interval ask the sink to commit; only
//! offsets the sink accepted are committed to the consumer group.
//!
//! Where it starts: the offsets the sink stored with its data (exactly-once sinks), else
//! the group's committed offsets, else `start` (earliest or latest). After an outside
//! failure it waits, reopens the sink and rewinds to those offsets again, so what was
//! written but not committed is written again (at-least-once) or was rolled back with the
//! target's transaction (exactly-once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use sluice_core::{
    Consumer, ConsumerConfig, IsolationLevel, Log, NewTopic, Polled, PolledRecord, ProducerConfig,
    Seek, TopicPartition,
};
use tokio::sync::watch;

use super::dead_letter;
use super::retry::{self, Backoff};
use super::stats::{ConnectorStats, State};
use super::store::read_schema_entry;
use crate::batch::{Offsets, Reject, SinkBatch, SinkOp};
use crate::config::{OnError, SinkSection};
use crate::convert::Converter;
use crate::error::{Error, Result};
use crate::schema::parse_schema;
use crate::sink::{Sink, SinkContext};
use crate::transform::Chain;

/// How long one poll of the topics waits for records.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How often a sink looks again for a topic or a schema entry a source has yet to write
/// (both are cheap, in-memory lookups; a pipeline's sinks start with its sources).
const WAIT_FOR_SOURCE: Duration = Duration::from_millis(20);
/// Records inferred from when the schema is neither declared nor in a schema entry.
const INFER_RECORDS: usize = 1_000;

pub(crate) struct SinkTask {
    pub(crate) pipeline: String,
    pub(crate) section: SinkSection,
    pub(crate) sink: Box<dyn Sink>,
    pub(crate) chain: Chain,
    pub(crate) on_error: OnError,
    pub(crate) dead_letter_topic: String,
    pub(crate) retry_timeout: Duration,
    pub(crate) commit_interval: Duration,
    pub(crate) stats: Arc<ConnectorStats>,
}

/// How the topics' records are decoded.
struct Decoding {
    value: Converter,
    /// The key fields and the converter of keys (tombstones' keys become delete rows).
    key: Option<Converter>,
}

impl SinkTask {
    fn name(&self) -> &str {
        &self.section.common.name
    }

    fn group(&self) -> String {
        self.section
            .common
            .group
            .clone()
            .unwrap_or_else(|| format!("sluice-connect.{}.{}", self.pipeline, self.name()))
    }

    /// Runs until `stop` turns true, or until `drained` is set and every assigned partition
    /// is consumed to its end (then it commits, closing, and returns).
    pub(crate) async fn run(
        mut self,
        log: Log,
        mut stop: watch::Receiver<bool>,
        drained: Arc<AtomicBool>,
    ) -> Result<()> {
        let topics = self.section.common.topics.to_vec();
        let mut partitions = Vec::new();
        for topic in &topics {
            // A topic named by a source's template (`cdc.{stream}`) appears with the
            // source's first batch: wait for it while sources run.
            let count = loop {
                match log.partition_count(topic) {
                    Ok(count) => break count,
                    Err(_) if drained.load(Ordering::Relaxed) => {
                        return Err(Error::config(format!(
                            "sink \"{}\": topic `{topic}` does not exist; create it (sluice topics create {topic}) or add the source that writes it",
                            self.name()
                        )));
                    }
                    Err(_) => tokio::select! {
                        _ = tokio::time::sleep(WAIT_FOR_SOURCE) => {}
                        _ = stop.changed() => return Ok(()),
                    },
                }
            };
            partitions.extend((0..count).map(|p| TopicPartition::new(topic.clone(), p)));
        }

        // The schema: declared, else the topic's schema entry, else inferred from records.
        let (schema, format, key_fields) = loop {
            if let Some(found) = self.resolve_schema(&log, &topics)? {
                break found;
            }
            if drained.load(Ordering::Relaxed) && self.caught_up_empty(&log, &partitions) {
                // Nothing was ever written: nothing to do.
                self.stats.set(State::Done);
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(WAIT_FOR_SOURCE) => {}
                _ = stop.changed() => return Ok(()),
            }
        };
        let decoding = self.decoding(&schema, &format, &key_fields)?;
        let context = SinkContext {
            pipeline: self.pipeline.clone(),
            sink: self.name().to_string(),
            schema: self.chain.schema(&schema)?,
            key: key_fields.clone(),
        };

        let mut backoff = Backoff::new(self.retry_timeout);
        let group = self.group();
        'open: loop {
            if *stop.borrow() {
                return Ok(());
            }
            let stored = match self.sink.open(&context).await {
                Ok(stored) => stored,
                Err(e) => {
                    retry::wait(&self.stats, &mut backoff, e, &mut stop).await?;
                    continue 'open;
                }
            };
            let mut consumer = self.consumer(&log, &partitions, stored.as_ref(), &group)?;
            self.stats.set(State::Running);
            let mut pending: Offsets = Offsets::new();
            let mut last_commit = Instant::now();
            let mut uncommitted = 0usize;
            loop {
                let stopping = *stop.borrow();
                let lag = tokio::task::block_in_place(|| lag(&log, &mut consumer, &partitions));
                self.stats.lag.store(lag, Ordering::Relaxed);
                let finishing = stopping || (drained.load(Ordering::Relaxed) && lag == 0);
                let due = last_commit.elapsed() >= self.commit_interval;
                if finishing || (due && uncommitted > 0) {
                    // Everything polled has been handed to the sink, so each partition's
                    // position (past transaction markers, too) is what the sink has.
                    for tp in &partitions {
                        let at = tokio::task::block_in_place(|| consumer.position(tp))?;
                        pending.insert((tp.topic.clone(), tp.partition), at);
                    }
                    match self.sink.commit(&pending, finishing).await {
                        Ok(true) => {
                            if !pending.is_empty() {
                                let offsets: Vec<(String, i32, i64)> = pending
                                    .iter()
                                    .map(|((t, p), o)| (t.clone(), *p, *o))
                                    .collect();
                                log.commit_offsets(&group, &offsets)?;
                            }
                            uncommitted = 0;
                            last_commit = Instant::now();
                            backoff.reset();
                        }
                        Ok(false) => last_commit = Instant::now(),
                        Err(e) => {
                            retry::wait(&self.stats, &mut backoff, e, &mut stop).await?;
                            continue 'open;
                        }
                    }
                    if finishing {
                        if !stopping {
                            self.stats.set(State::Done);
                        }
                        return Ok(());
                    }
                }
                let records = tokio::task::block_in_place(|| consumer.poll_batch(POLL_WAIT))?;
                if records.is_empty() {
                    tokio::select! {
                        _ = tokio::task::yield_now() => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                let rows = records.len();
                let batches = self.decode(&log, &decoding, &records)?;
                drop(records);
                for batch in batches {
                    if let Err(e) = self.sink.write(batch).await {
                        retry::wait(&self.stats, &mut backoff, e, &mut stop).await?;
                        continue 'open;
                    }
                }
                uncommitted += rows;
            }
        }
    }

    /// A consumer of the partitions, positioned at the sink's stored offsets, else the
    /// group's, else `start`.
    fn consumer(
        &self,
        log: &Log,
        partitions: &[TopicPartition],
        stored: Option<&Offsets>,
        group: &str,
    ) -> Result<Consumer> {
        let mut consumer = log.consumer(
            ConsumerConfig::default()
                .isolation_level(IsolationLevel::ReadCommitted)
                .max_poll_records(self.section.common.batch_rows.max(1)),
        );
        consumer.assign(partitions.to_vec())?;
        for tp in partitions {
            let from_sink = stored.and_then(|s| s.get(&(tp.topic.clone(), tp.partition)).copied());
            let from_group = || {
                log.committed_offset(group, &tp.topic, tp.partition)
                    .map(|c| c.offset)
            };
            let seek = match from_sink.or_else(from_group) {
                Some(offset) => Seek::Offset(offset),
                None if self.section.common.start == "latest" => Seek::End,
                None => Seek::Beginning,
            };
            consumer.seek(tp, seek)?;
        }
        Ok(consumer)
    }

    /// The declared schema, or the first topic's schema entry; with the format and key.
    fn resolve_schema(
        &self,
        log: &Log,
        topics: &[String],
    ) -> Result<Option<(SchemaRef, String, Vec<String>)>> {
        let common = &self.section.common;
        let declared_key = common.key.to_vec();
        let entry = match topics.first() {
            Some(topic) => read_schema_entry(log, topic)?,
            None => None,
        };
        let format = common
            .value_format
            .clone()
            .or_else(|| entry.as_ref().map(|e| e.format.clone()))
            .unwrap_or_else(|| "json".into());
        let key = if declared_key.is_empty() {
            entry.as_ref().map(|e| e.key.clone()).unwrap_or_default()
        } else {
            declared_key
        };
        if let Some(columns) = &common.schema {
            return Ok(Some((parse_schema(columns)?, format, key)));
        }
        if let Some(entry) = &entry {
            return Ok(Some((entry.schema()?, format, key)));
        }
        if format != "json" {
            return Err(Error::config(format!(
                "sink \"{}\": records in {format} carry no field names: declare schema = \"...\" (the topic has no schema entry from a Sluice source)",
                self.name()
            )));
        }
        let Some(inferred) = self.infer(log, topics)? else {
            return Ok(None);
        };
        // A source writes its schema entry before its records: now that records are
        // visible, an entry missed by the read above would be visible too.
        if let Some(entry) = topics
            .first()
            .map(|t| read_schema_entry(log, t))
            .transpose()?
            .flatten()
        {
            let key = if common.key.to_vec().is_empty() {
                entry.key.clone()
            } else {
                common.key.to_vec()
            };
            let format = common
                .value_format
                .clone()
                .unwrap_or_else(|| entry.format.clone());
            return Ok(Some((entry.schema()?, format, key)));
        }
        Ok(Some((inferred, format, key)))
    }

    /// Infers a schema from the first JSON records of the topics; `None` while they are
    /// empty.
    fn infer(&self, log: &Log, topics: &[String]) -> Result<Option<SchemaRef>> {
        let mut values: Vec<serde_json::Value> = Vec::new();
        for topic in topics {
            let count = log.partition_count(topic)?;
            for p in 0..count {
                let mut consumer = log.consumer(
                    ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted),
                );
                let tp = TopicPartition::new(topic.clone(), p);
                consumer.assign(vec![tp.clone()])?;
                consumer.seek(&tp, Seek::Beginning)?;
                for record in consumer.poll(Duration::from_millis(50))? {
                    if let Some(v) = record.value.and_then(|v| serde_json::from_slice(&v).ok()) {
                        values.push(v);
                    }
                    if values.len() >= INFER_RECORDS {
                        break;
                    }
                }
            }
        }
        if values.is_empty() {
            return Ok(None);
        }
        let schema = arrow::json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))?;
        // Inference gives Int64/Float64/Utf8/Boolean and nested types: what JSON holds.
        Ok(Some(Arc::new(schema)))
    }

    fn caught_up_empty(&self, log: &Log, partitions: &[TopicPartition]) -> bool {
        partitions.iter().all(|tp| {
            log.partition(&tp.topic, tp.partition)
                .map(|p| p.last_stable_offset() <= p.log_start_offset())
                .unwrap_or(true)
        })
    }

    fn decoding(
        &self,
        schema: &SchemaRef,
        format: &str,
        key_fields: &[String],
    ) -> Result<Decoding> {
        let value = Converter::new(format, schema.clone())?;
        let who = format!("sink \"{}\"", self.name());
        let key = Converter::for_key(format, schema, key_fields, &who)?.map(|(_, key)| key);
        Ok(Decoding { value, key })
    }

    /// Records to sink batches, one per topic, as runs of upserts and deletes in offset
    /// order; bad records go to `on_error`.
    fn decode(&self, log: &Log, decoding: &Decoding, polled: &Polled) -> Result<Vec<SinkBatch>> {
        let mut batches = Vec::new();
        let mut bad: Vec<(Reject, Option<Vec<u8>>)> = Vec::new();
        if let Some((topic, values)) = plain_values(polled) {
            // The common poll: one topic, no tombstones. The lent values go to the decoder
            // as they are, with no record per row in between.
            let ops = self.upserts(decoding, &values, |i| polled.get(i), &mut bad)?;
            let bytes = values.iter().map(|v| v.len() as u64).sum();
            batches.push(self.batch(topic, ops, bytes));
        } else {
            let records: Vec<PolledRecord<'_>> = polled.iter().collect();
            let mut by_topic: BTreeMap<&str, Vec<PolledRecord<'_>>> = BTreeMap::new();
            match records.first() {
                Some(first) if records.iter().all(|r| r.topic == first.topic) => {
                    by_topic.insert(first.topic, records);
                }
                _ => {
                    for record in records {
                        by_topic.entry(record.topic).or_default().push(record);
                    }
                }
            }
            for (topic, records) in by_topic {
                let bytes: u64 = records
                    .iter()
                    .map(|r| r.value.map_or(0, |v| v.len() as u64))
                    .sum();
                let mut ops = Vec::new();
                for run in records.chunk_by(|a, b| a.value.is_none() == b.value.is_none()) {
                    if run[0].value.is_some() {
                        let values: Vec<&[u8]> =
                            run.iter().map(|r| r.value.unwrap_or_default()).collect();
                        ops.extend(self.upserts(
                            decoding,
                            &values,
                            |i| run.get(i).copied(),
                            &mut bad,
                        )?);
                        continue;
                    }
                    let Some(key) = &decoding.key else {
                        // Without key fields a tombstone names nothing to delete.
                        continue;
                    };
                    // A tombstone without a key fails to decode as one, and is named.
                    let keys: Vec<&[u8]> = run.iter().map(|r| r.key.unwrap_or_default()).collect();
                    let (rows, failed) = key.decode_lenient(&keys);
                    for (i, error) in failed {
                        bad.push(reject(&run[i], format!("tombstone key: {error}")));
                    }
                    let rows = rows?;
                    if rows.num_rows() > 0 {
                        ops.push(SinkOp::Delete(rows));
                    }
                }
                batches.push(self.batch(topic, ops, bytes));
            }
        }
        let dead = dead_letter::handle(
            self.on_error,
            bad,
            &self.dead_letter_topic,
            &self.pipeline,
            self.name(),
            &self.stats,
        )?;
        if !dead.is_empty() {
            log.ensure_topic(NewTopic::new(self.dead_letter_topic.clone(), 1))?;
            let producer = log.producer(ProducerConfig::default())?;
            producer.send_all(dead)?;
            // Durable before the offsets that skip the bad records can be committed.
            producer.flush()?;
        }
        Ok(batches)
    }

    /// The upserts of a run of values (none of them a tombstone): decoded, through the
    /// transforms, split by route. The values that fail to decode and the rows the
    /// transforms reject go to `bad`, named by their record (`record(i)` is value `i`'s).
    fn upserts<'a>(
        &self,
        decoding: &Decoding,
        values: &[&[u8]],
        record: impl Fn(usize) -> Option<PolledRecord<'a>>,
        bad: &mut Vec<(Reject, Option<Vec<u8>>)>,
    ) -> Result<Vec<SinkOp>> {
        let (rows, failed) = decoding.value.decode_lenient(values);
        let failed_set: std::collections::HashSet<usize> = failed.iter().map(|(i, _)| *i).collect();
        for (i, error) in failed {
            bad.extend(record(i).map(|r| reject(&r, error)));
        }
        let out = self.chain.apply(rows?)?;
        if !out.rejected.is_empty() {
            // Rows of the decoded batch, by record (skipping the failed ones).
            let survivors: Vec<usize> = (0..values.len())
                .filter(|i| !failed_set.contains(i))
                .collect();
            for (row, error) in out.rejected {
                let rejected = survivors.get(row).and_then(|&i| record(i));
                bad.extend(rejected.map(|r| reject(&r, error)));
            }
        }
        Ok(out
            .routed
            .into_iter()
            .filter(|(_, rows)| rows.num_rows() > 0)
            .map(|(_, rows)| SinkOp::Upsert(rows))
            .collect())
    }

    /// One topic's share of a poll, counted in the stats.
    fn batch(&self, topic: &str, ops: Vec<SinkOp>, bytes: u64) -> SinkBatch {
        self.stats.add(
            ops.iter().map(|op| op.rows().num_rows()).sum(),
            bytes as usize,
        );
        SinkBatch {
            topic: topic.to_string(),
            ops,
            bytes,
        }
    }
}

/// The topic and values of a poll whose records all have a value and one topic (the
/// common poll); `None` for any other (or an empty one).
fn plain_values(polled: &Polled) -> Option<(&str, Vec<&[u8]>)> {
    let topic = polled.get(0)?.topic;
    let mut values = Vec::with_capacity(polled.len());
    for record in polled.iter() {
        if record.topic != topic {
            return None;
        }
        values.push(record.value?);
    }
    Some((topic, values))
}

/// A bad record, with its key, for `on_error`.
fn reject(record: &PolledRecord<'_>, error: String) -> (Reject, Option<Vec<u8>>) {
    let reject = Reject {
        position: format!("{}/{}@{}", record.topic, record.partition, record.offset),
        bytes: record.value.map(<[u8]>::to_vec).unwrap_or_default(),
        error,
    };
    (reject, record.key.map(<[u8]>::to_vec))
}

/// Records of the partitions beyond the consumer's positions (read_committed ends).
fn lag(log: &Log, consumer: &mut Consumer, partitions: &[TopicPartition]) -> i64 {
    partitions
        .iter()
        .map(|tp| {
            let end = log
                .partition(&tp.topic, tp.partition)
                .map(|p| p.last_stable_offset())
                .unwrap_or(0);
            let at = consumer.position(tp).unwrap_or(end);
            (end - at).max(0)
        })
        .sum()
}
