//! Latency samples of the broker benchmarks and their percentiles.
//!
//! Every sample is kept (8 bytes each; a run of 10 M records holds 80 MB) and sorted once
//! at the end, so percentiles are exact, not bucketed. A record's latency is measured from
//! the send timestamp written into its first [`STAMP_BYTES`] bytes of value, so a consumer
//! in another thread (or process, on the same host) can measure produce-to-consume time.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Bytes at the start of every benchmark record's value holding its send time: nanoseconds
/// since the Unix epoch, little-endian.
pub const STAMP_BYTES: usize = 8;

/// Nanoseconds since the Unix epoch, the clock every stamp is written and read with. A
/// wall clock, because producer and consumer may be different processes; both run on the
/// same host, so they share it.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Writes `now_ns()` into the first [`STAMP_BYTES`] of `value` (which must hold them).
pub fn stamp(value: &mut [u8]) {
    if let Some(head) = value.get_mut(..STAMP_BYTES) {
        head.copy_from_slice(&now_ns().to_le_bytes());
    }
}

/// Marks `value` as not sampled: a zero stamp, which [`read_stamp`] skips. Reading the
/// clock costs about as much as librdkafka's whole per-record work here (a fifth of the
/// consumer's CPU in a profile), so unpaced runs sample one record in
/// [`SAMPLE_EVERY_UNPACED`].
pub fn clear_stamp(value: &mut [u8]) {
    if let Some(head) = value.get_mut(..STAMP_BYTES) {
        head.fill(0);
    }
}

/// Records of an unpaced run per latency sample.
pub const SAMPLE_EVERY_UNPACED: u64 = 64;

/// The send time written by [`stamp`], if `value` holds one (a zero stamp is none).
pub fn read_stamp(value: &[u8]) -> Option<u64> {
    let head: [u8; STAMP_BYTES] = value.get(..STAMP_BYTES)?.try_into().ok()?;
    Some(u64::from_le_bytes(head)).filter(|&t| t != 0)
}

/// Collected latency samples, in nanoseconds.
#[derive(Debug, Default)]
pub struct Latencies {
    nanos: Vec<u64>,
}

impl Latencies {
    /// Room for `n` samples up front, so recording never reallocates mid-run.
    pub fn with_capacity(n: usize) -> Self {
        Latencies {
            nanos: Vec::with_capacity(n),
        }
    }

    /// Records one sample from a send stamp to `now` (a clock step backwards counts as 0).
    pub fn record_since(&mut self, sent_ns: u64, now: u64) {
        self.nanos.push(now.saturating_sub(sent_ns));
    }

    /// Sorts the samples and summarises them.
    pub fn summary(mut self) -> Summary {
        self.nanos.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let at = |q: f64| {
            // Nearest rank: the smallest sample with at least q of all samples at or below it.
            let n = self.nanos.len();
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1));
            self.nanos.get(rank - 1).copied().map_or(f64::NAN, ms)
        };
        let mean = if self.nanos.is_empty() {
            f64::NAN
        } else {
            ms(self.nanos.iter().sum::<u64>() / self.nanos.len() as u64)
        };
        Summary {
            samples: self.nanos.len() as u64,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: self.nanos.last().copied().map_or(f64::NAN, ms),
            mean,
        }
    }
}

/// Percentiles of a set of samples, in milliseconds (NaN when there were none).
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// How many samples the percentiles are over.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// The `latency_ms` object of the JSON report (NaN becomes null).
    pub fn json(&self) -> Value {
        json!({
            "p50": self.p50, "p99": self.p99, "p999": self.p999,
            "max": self.max, "mean": self.mean, "samples": self.samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Nearest-rank percentiles over 1..=1000 ms land on the exact samples.
    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l = Latencies::with_capacity(1000);
        for i in 1..=1000u64 {
            l.record_since(0, i * 1_000_000);
        }
        let s = l.summary();
        assert_eq!(s.samples, 1000);
        assert_eq!(s.p50, 500.0);
        assert_eq!(s.p99, 990.0);
        assert_eq!(s.p999, 999.0);
        assert_eq!(s.max, 1000.0);
    }

    #[test]
    fn stamp_round_trips() {
        let mut v = vec![0u8; 100];
        stamp(&mut v);
        let t = read_stamp(&v).expect("stamp");
        assert!(t > 0 && t <= now_ns());
        assert_eq!(read_stamp(&[1, 2, 3]), None);
        clear_stamp(&mut v);
        assert_eq!(read_stamp(&v), None);
    }
}
