//! Batch consumption for `bench consume --api batch`: up to [`BATCH_RECORDS_MAX`] records
//! per call of librdkafka's `rd_kafka_consume_batch_queue`, read straight from the C
//! structs, instead of one `rd_kafka_message_t` wrapped and freed per `poll`.
//!
//! The only `unsafe` of the benchmarks lives here. Invariants it keeps:
//! - the queue handle is taken once from a live consumer, borrowed for `'c`, and destroyed
//!   exactly once, in `Drop`, before that consumer can be dropped;
//! - every message pointer librdkafka hands back is read only until its
//!   `rd_kafka_message_destroy`, which runs exactly once per message, even on error.

use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

/// Most records taken from librdkafka per call: enough to amortise the call and its lock,
/// few enough that an 80 KB pointer array stays in cache.
pub const BATCH_RECORDS_MAX: usize = 10_000;

/// The consumer's librdkafka queue (where `BaseConsumer::poll` also reads) and a reusable
/// array for the message pointers one call returns.
pub struct BatchQueue<'c> {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    messages: Vec<*mut rdsys::rd_kafka_message_t>,
    /// The queue refers to the consumer's `rd_kafka_t`, which must outlive it.
    consumer: PhantomData<&'c BaseConsumer>,
}

impl<'c> BatchQueue<'c> {
    /// The consumer queue of `consumer`, which must have a `group.id`.
    #[allow(unsafe_code)]
    pub fn new(consumer: &'c BaseConsumer) -> anyhow::Result<Self> {
        // SAFETY: `native_ptr` is the live `rd_kafka_t` owned by `consumer`, borrowed for
        // `'c`; the call returns a new reference to its queue (or null), which `Drop`
        // releases.
        let raw = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        let queue = NonNull::new(raw).context("librdkafka has no consumer queue (no group.id)")?;
        Ok(BatchQueue {
            queue,
            messages: vec![ptr::null_mut(); BATCH_RECORDS_MAX],
            consumer: PhantomData,
        })
    }

    /// Calls `each(partition, offset, value)` for every record ready now, up to `max` and
    /// [`BATCH_RECORDS_MAX`]; when none is, waits up to `timeout` for one and returns as
    /// soon as it arrives (a batch call with a timeout would wait for a full batch, which
    /// would add up to `timeout` to every record's latency at a low rate). Returns how many
    /// records it handed to `each`; the first error (of librdkafka or of `each`) stops the
    /// calls to `each` but every message is still destroyed.
    #[allow(unsafe_code)]
    pub fn poll(
        &mut self,
        timeout: Duration,
        max: usize,
        mut each: impl FnMut(i32, i64, &[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let mut n = self.take(0, max)?;
        if n == 0 && max > 0 {
            let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            n = self.take(timeout_ms, 1)?;
        }
        let mut result = Ok(());
        for &message in self.messages.iter().take(n) {
            if result.is_ok() {
                // SAFETY: `message` came from `rd_kafka_consume_batch_queue` just now: a
                // valid, non-null message nothing else references, whose `payload` (`len`
                // bytes, or null when empty) stays valid until the destroy below; the
                // slice does not leave this block.
                result = unsafe {
                    let m = &*message;
                    if m.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        let value = if m.payload.is_null() {
                            &[][..]
                        } else {
                            std::slice::from_raw_parts(m.payload.cast::<u8>(), m.len)
                        };
                        each(m.partition, m.offset, value)
                    } else {
                        Err(anyhow!(
                            "consuming partition {} at offset {}: {}",
                            m.partition,
                            m.offset,
                            RDKafkaErrorCode::from(m.err)
                        ))
                    }
                };
            }
            // SAFETY: each pointer of this call is destroyed exactly once, here, and not
            // read after; the next `take` overwrites the array.
            unsafe { rdsys::rd_kafka_message_destroy(message) };
        }
        result.map(|()| n)
    }

    /// Fills the start of `self.messages` with up to `max` messages, waiting up to
    /// `timeout_ms` for them; returns how many.
    #[allow(unsafe_code)]
    fn take(&mut self, timeout_ms: i32, max: usize) -> anyhow::Result<usize> {
        let max = max.min(self.messages.len());
        // SAFETY: the queue is live (see `new`) and `self.messages` has room for `max`
        // pointers, which librdkafka writes and hands over to us.
        let n = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                timeout_ms,
                self.messages.as_mut_ptr(),
                max,
            )
        };
        match usize::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => bail!("rd_kafka_consume_batch_queue failed ({n})"),
        }
    }
}

impl Drop for BatchQueue<'_> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the reference from `rd_kafka_queue_get_consumer` is released exactly once,
        // here, while the consumer it belongs to is still borrowed and so alive.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}
