//! Source nodes: raw records from an input topic become typed records, or go to the
//! deserialization handler.

use std::sync::Arc;

use bytes::Bytes;

use super::{Ctx, Node, Signal};
use crate::error::{Result, StreamsError};
use crate::record::{Header, InputRecord, OutputRecord, Record};
use crate::serdes::Serde;

/// What a source does with a record whose key or value its serde cannot read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeserializationHandler {
    /// Stop the job with an error naming the topic, partition and offset (the default:
    /// nothing is skipped without someone deciding so).
    #[default]
    Fail,
    /// Log a warning, count it (`skipped_deserialization`) and go on.
    LogAndContinue,
    /// Write the record as it was to this topic, with headers saying why and where it came
    /// from (`sluice.error`, `sluice.source.topic`, `sluice.source.partition`,
    /// `sluice.source.offset`), count it (`dead_lettered`) and go on.
    DeadLetter(String),
}

/// A source as a task holds it: raw records in.
pub(crate) trait SourceNode: Send {
    fn process(&mut self, ctx: &mut Ctx, record: InputRecord) -> Result<()>;
    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()>;
}

/// Picks a record's event time from its key, value and own timestamp.
pub(crate) type Extractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

pub(crate) struct TypedSource<KS: Serde, VS: Serde> {
    pub key: KS,
    pub value: VS,
    pub extractor: Option<Extractor<KS::Target, VS::Target>>,
    pub on_error: DeserializationHandler,
    pub next: Box<dyn Node<KS::Target, VS::Target>>,
}

impl<KS: Serde, VS: Serde> TypedSource<KS, VS> {
    fn bad_record(
        &self,
        ctx: &mut Ctx,
        record: InputRecord,
        what: &'static str,
        reason: String,
    ) -> Result<()> {
        match &self.on_error {
            DeserializationHandler::Fail => Err(StreamsError::Deserialization {
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                what,
                reason,
            }),
            DeserializationHandler::LogAndContinue => {
                tracing::warn!(
                    topic = %record.topic, partition = record.partition, offset = record.offset,
                    "skipping a record whose {what} cannot be deserialized: {reason}"
                );
                ctx.stats.skipped_deserialization += 1;
                Ok(())
            }
            DeserializationHandler::DeadLetter(topic) => {
                let mut headers = record.headers;
                let h = |k: &str, v: String| Header {
                    key: k.to_string(),
                    value: Some(Bytes::from(v)),
                };
                headers.push(h(
                    "sluice.error",
                    format!("cannot deserialize the {what}: {reason}"),
                ));
                headers.push(h("sluice.source.topic", record.topic.clone()));
                headers.push(h("sluice.source.partition", record.partition.to_string()));
                headers.push(h("sluice.source.offset", record.offset.to_string()));
                ctx.out.push(OutputRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: record.key,
                    value: record.value,
                    timestamp: record.timestamp,
                    headers,
                });
                ctx.stats.dead_lettered += 1;
                Ok(())
            }
        }
    }
}

impl<KS: Serde, VS: Serde> SourceNode for TypedSource<KS, VS> {
    fn process(&mut self, ctx: &mut Ctx, record: InputRecord) -> Result<()> {
        ctx.stats.processed += 1;
        let key = match self.key.deserialize_bytes(record.key.as_ref()) {
            Ok(k) => k,
            Err(e) => return self.bad_record(ctx, record, "key", e.0),
        };
        let value = match self.value.deserialize_bytes(record.value.as_ref()) {
            Ok(v) => v,
            Err(e) => return self.bad_record(ctx, record, "value", e.0),
        };
        let timestamp = match &self.extractor {
            Some(f) => f(&key, &value, record.timestamp),
            None => record.timestamp,
        };
        ctx.stream_time = ctx.stream_time.max(timestamp);
        self.next.process(
            ctx,
            Record {
                key,
                value,
                timestamp,
                headers: record.headers,
            },
        )
    }

    fn signal(&mut self, ctx: &mut Ctx, s: Signal) -> Result<()> {
        self.next.signal(ctx, s)
    }
}
