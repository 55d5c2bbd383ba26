//! Sink nodes: typed records become raw output records for a topic.

use std::sync::Arc;

use bytes::Bytes;

use super::{Ctx, Node, Signal};
use crate::error::{Result, StreamsError};
use crate::record::{OutputRecord, Record};
use crate::serdes::Serde;

/// Chooses the topic of each record (`KStream::to_dynamic`).
pub(crate) type TopicChooser<K, V> = Arc<dyn Fn(&K, &V) -> String + Send + Sync>;

pub(crate) enum SinkTopic<K, V> {
    Fixed(String),
    Chosen(TopicChooser<K, V>),
}

pub(crate) struct Sink<KS: Serde, VS: Serde> {
    pub topic: SinkTopic<KS::Target, VS::Target>,
    pub key: KS,
    pub value: VS,
}

pub(crate) fn serialize<S: Serde>(
    serde: &S,
    v: &S::Target,
    what: &'static str,
    target: &str,
) -> Result<Option<Bytes>> {
    serde
        .serialize_bytes(v)
        .map_err(|e| StreamsError::Serialization {
            what,
            target: target.to_string(),
            reason: e.0,
        })
}

impl<KS: Serde, VS: Serde> Node<KS::Target, VS::Target> for Sink<KS, VS> {
    fn process(&mut self, ctx: &mut Ctx, r: Record<KS::Target, VS::Target>) -> Result<()> {
        let topic = match &self.topic {
            SinkTopic::Fixed(t) => t.clone(),
            SinkTopic::Chosen(f) => f(&r.key, &r.value),
        };
        let key = serialize(&self.key, &r.key, "key", &topic)?;
        let value = serialize(&self.value, &r.value, "value", &topic)?;
        ctx.out.push(OutputRecord {
            topic,
            partition: None,
            key,
            value,
            timestamp: r.timestamp,
            headers: r.headers,
        });
        Ok(())
    }
    fn signal(&mut self, _: &mut Ctx, _: Signal) -> Result<()> {
        Ok(())
    }
}
