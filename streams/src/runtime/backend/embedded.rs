//! The embedded backend: the log in this process, through sluice-core's clients.

use std::time::{Duration, Instant};

use sluice_core::client::IsolationLevel;
use sluice_core::{
    ConsumerConfig, Log, NewTopic, OffsetReset, Producer, ProducerConfig, ProducerRecord, Seek,
    TopicPartition,
};

use super::{Backend, ChangelogEntry, GroupConsumer, GroupMeta, OutputProducer};
use crate::error::{Result, StreamsError};
use crate::record::{InputRecord, OutputRecord};

pub(crate) struct Embedded {
    pub log: Log,
}

fn isolation(read_committed: bool) -> IsolationLevel {
    if read_committed {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    }
}

impl Backend for Embedded {
    fn partitions(&self, topic: &str) -> Result<Option<i32>> {
        match self.log.partition_count(topic) {
            Ok(n) => Ok(Some(n)),
            Err(sluice_core::Error::UnknownTopic { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn ensure_topic(&self, topic: &str, partitions: i32, compacted: bool) -> Result<()> {
        let mut t = NewTopic::new(topic, partitions);
        if compacted {
            t = t.config("cleanup.policy", "compact");
        }
        self.log.ensure_topic(t)?;
        Ok(())
    }

    fn group_consumer(
        &self,
        group: &str,
        topics: &[String],
        read_committed: bool,
    ) -> Result<Box<dyn GroupConsumer>> {
        let config = ConsumerConfig::default()
            .group(group)
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest)
            .max_poll_records(1000)
            .isolation_level(isolation(read_committed));
        // Small reads per partition interleave the partitions finely, so a thread catching
        // up on several holds records of all of them at once (see `thread::held_back`).
        let config = ConsumerConfig {
            fetch_max_bytes: 256 << 10,
            ..config
        };
        let mut consumer = self.log.consumer(config);
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Box::new(EmbeddedConsumer {
            consumer,
            group: group.to_string(),
            read_committed,
            log: self.log.clone(),
        }))
    }

    fn producer(&self, transactional_id: Option<&str>) -> Result<Box<dyn OutputProducer>> {
        let mut config = ProducerConfig::default();
        if let Some(id) = transactional_id {
            config = config.transactional_id(id);
        }
        let producer = self.log.producer(config)?;
        if transactional_id.is_some() {
            producer.init_transactions()?;
        }
        Ok(Box::new(EmbeddedProducer { producer }))
    }

    fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        Ok(self.log.partition(topic, partition)?.log_end_offset())
    }

    fn purge(&self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        self.log
            .partition(topic, partition)?
            .delete_records_before(offset)?;
        Ok(())
    }

    fn read_changelog(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        read_committed: bool,
        apply: &mut dyn FnMut(Vec<ChangelogEntry>) -> Result<()>,
    ) -> Result<i64> {
        let p = self.log.partition(topic, partition)?;
        let end = if read_committed {
            p.last_stable_offset()
        } else {
            p.log_end_offset()
        };
        let start = from.max(p.log_start_offset());
        if start >= end {
            return Ok(end);
        }
        let mut consumer = self.log.consumer(
            ConsumerConfig::default()
                .max_poll_records(10_000)
                .isolation_level(isolation(read_committed)),
        );
        let tp = TopicPartition::new(topic, partition);
        consumer.assign(vec![tp.clone()])?;
        consumer.seek(&tp, Seek::Offset(start))?;
        let deadline = Instant::now() + Duration::from_secs(600);
        while consumer.position(&tp)? < end {
            let records = consumer.poll(Duration::from_millis(100))?;
            if records.is_empty() && Instant::now() > deadline {
                return Err(StreamsError::state(
                    topic,
                    partition,
                    "changelog restore made no progress",
                ));
            }
            let batch = records
                .into_iter()
                .filter(|r| r.offset < end)
                .filter_map(|r| r.key.map(|k| (k.to_vec(), r.value.map(|v| v.to_vec()))))
                .collect();
            apply(batch)?;
        }
        Ok(end)
    }
}

struct EmbeddedConsumer {
    consumer: sluice_core::Consumer,
    group: String,
    read_committed: bool,
    log: Log,
}

impl EmbeddedConsumer {
    fn consumer_log_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<std::sync::Arc<sluice_core::Partition>> {
        self.log.partition(topic, partition).ok()
    }
}

impl GroupConsumer for EmbeddedConsumer {
    fn poll(&mut self, timeout: Duration) -> Result<Vec<InputRecord>> {
        Ok(self
            .consumer
            .poll(timeout)?
            .into_iter()
            .map(InputRecord::from)
            .collect())
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.consumer
            .assignment()
            .iter()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect()
    }

    fn lag(&mut self, topic: &str, partition: i32, next: Option<i64>) -> Option<i64> {
        let p = self.consumer_log_partition(topic, partition)?;
        let end = if self.read_committed {
            p.last_stable_offset()
        } else {
            p.log_end_offset()
        };
        let from = match next {
            Some(n) => n,
            None => self
                .consumer
                .position(&TopicPartition::new(topic, partition))
                .ok()?,
        };
        Some((end - from).max(0))
    }

    fn rewind(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        for (t, p) in partitions {
            let tp = TopicPartition::new(t.clone(), *p);
            let to = match self.consumer.committed(&tp) {
                Some(o) => Seek::Offset(o),
                None => Seek::Beginning,
            };
            self.consumer.seek(&tp, to)?;
        }
        Ok(())
    }

    fn group_metadata(&self) -> GroupMeta {
        GroupMeta::Id(self.group.clone())
    }

    fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = offsets
            .iter()
            .map(|(t, p, o)| (TopicPartition::new(t.clone(), *p), *o))
            .collect();
        self.consumer.commit_offsets(&offsets)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.consumer.close()?;
        Ok(())
    }
}

/// The output producer, at-least-once or transactional: `sluice_core::Producer` with its
/// defaults (idempotent, 10,000 records or 1 MiB per batch, 5 ms linger). Records go in
/// with `send_all`, without a delivery each: a batch that fails to append fails the next
/// `flush` (at-least-once) or `commit_transaction` (exactly-once).
struct EmbeddedProducer {
    producer: Producer,
}

fn to_producer_record(r: OutputRecord) -> ProducerRecord {
    let mut headers = r.headers;
    // The producer API takes header values only; a null-valued header is dropped.
    headers.retain(|h| h.value.is_some());
    ProducerRecord {
        topic: r.topic,
        partition: r.partition,
        key: r.key,
        value: r.value,
        timestamp: Some(r.timestamp),
        headers,
    }
}

impl OutputProducer for EmbeddedProducer {
    fn send(&mut self, record: OutputRecord) -> Result<()> {
        self.producer
            .send_all(std::iter::once(to_producer_record(record)))?;
        Ok(())
    }

    /// One lock and one clock read for the whole burst, not one per record.
    fn send_all(&mut self, records: Vec<OutputRecord>) -> Result<()> {
        self.producer
            .send_all(records.into_iter().map(to_producer_record))?;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.producer.flush().map_err(|e| {
            StreamsError::Log(sluice_core::Error::InvalidArgument(format!(
                "a record of this job was not written: {e}"
            )))
        })
    }

    fn begin(&mut self) -> Result<()> {
        self.producer.begin_transaction()?;
        Ok(())
    }

    fn commit(&mut self, offsets: &[(String, i32, i64)], group: &GroupMeta) -> Result<()> {
        let GroupMeta::Id(group) = group else {
            return Err(StreamsError::Topology(
                "internal error: Kafka group metadata for the embedded log".into(),
            ));
        };
        let offsets: Vec<(TopicPartition, i64)> = offsets
            .iter()
            .map(|(t, p, o)| (TopicPartition::new(t.clone(), *p), *o))
            .collect();
        if !offsets.is_empty() {
            self.producer.send_offsets_to_transaction(&offsets, group)?;
        }
        self.producer.commit_transaction()?;
        Ok(())
    }

    fn abort(&mut self) -> Result<()> {
        self.producer.abort_transaction()?;
        Ok(())
    }
}
