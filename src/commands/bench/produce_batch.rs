//! librdkafka's batch produce call (`rd_kafka_produce_batch`) for `bench produce
//! --client-api batch`: one call enqueues many records of one topic, where the per-message
//! `BaseProducer::send` (`rd_kafka_producev`) pays per record for a topic-name copy and
//! lookup under a lock. Measured here, the per-message call held the sending thread at
//! one full core well before the broker ran out of CPU (`docs/benchmarks.md`).
//!
//! Delivery reports arrive through the producer's context as for `send`: the records carry
//! no opaque (`()`), and the context reads each record's time stamp from its payload.

use std::ffi::CString;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::bindings as rd;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

/// librdkafka's `RD_KAFKA_PARTITION_UA` (a C macro, absent from the bindings): let the
/// producer's partitioner choose each record's partition.
const PARTITION_UNASSIGNED: i32 = -1;

/// A librdkafka topic handle, destroyed on drop.
pub(super) struct TopicHandle(*mut rd::rd_kafka_topic_t);

impl TopicHandle {
    /// The handle of `topic` on `producer`'s client.
    #[allow(unsafe_code)]
    pub fn new<C: ProducerContext>(
        producer: &BaseProducer<C>,
        topic: &str,
    ) -> anyhow::Result<Self> {
        let name = CString::new(topic).context("topic name")?;
        // SAFETY: the client pointer is live for as long as `producer`, which outlives the
        // handle (the caller drops the handle first: see `produce`); the name is a valid
        // NUL-terminated string that librdkafka copies; a null config means the defaults.
        let rkt = unsafe {
            rd::rd_kafka_topic_new(
                producer.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if rkt.is_null() {
            bail!("librdkafka could not create a handle for topic '{topic}'");
        }
        Ok(TopicHandle(rkt))
    }
}

impl Drop for TopicHandle {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the pointer came from `rd_kafka_topic_new` and is destroyed once, here.
        unsafe { rd::rd_kafka_topic_destroy(self.0) }
    }
}

/// Enqueues one record per `record_bytes` chunk of `values`, partitioned by the producer's
/// partitioner; when librdkafka's queue is full, serves delivery reports and retries the
/// records it refused (the queue is the backpressure, as for `send`).
#[allow(unsafe_code)]
pub(super) fn send_batch<C: ProducerContext>(
    producer: &BaseProducer<C>,
    topic: &TopicHandle,
    values: &[u8],
    record_bytes: usize,
) -> anyhow::Result<()> {
    let mut messages: Vec<rd::rd_kafka_message_t> = values
        .chunks_exact(record_bytes)
        .map(|v| rd::rd_kafka_message_t {
            err: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
            rkt: std::ptr::null_mut(),
            partition: 0,
            payload: v.as_ptr() as *mut std::ffi::c_void,
            len: v.len(),
            key: std::ptr::null_mut(),
            key_len: 0,
            offset: 0,
            _private: std::ptr::null_mut(),
        })
        .collect();
    let ok = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
    while !messages.is_empty() {
        let count = i32::try_from(messages.len()).context("batch too large")?;
        // SAFETY: `messages` is `count` initialised messages whose payloads point into
        // `values`, alive for the call; RD_KAFKA_MSG_F_COPY makes librdkafka copy each
        // payload before returning, so nothing it keeps points into our memory. It writes
        // only the `err` field of the messages it could not enqueue.
        let queued = unsafe {
            rd::rd_kafka_produce_batch(
                topic.0,
                PARTITION_UNASSIGNED,
                rd::RD_KAFKA_MSG_F_COPY,
                messages.as_mut_ptr(),
                count,
            )
        };
        if queued == count {
            break;
        }
        // Retry the ones that failed (librdkafka goes on past a failure, so they need not
        // be the tail); only a full queue is worth waiting for.
        messages.retain(|m| m.err != ok);
        for m in &mut messages {
            let code: RDKafkaErrorCode = m.err.into();
            if code != RDKafkaErrorCode::QueueFull {
                bail!("librdkafka refused a record: {code}");
            }
            m.err = ok;
        }
        producer.poll(Duration::from_millis(1));
    }
    Ok(())
}
