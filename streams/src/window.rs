//! Event-time windows: tumbling and hopping ([`TimeWindows`]), sliding
//! ([`SlidingWindows`]) and session ([`SessionWindows`]), each with a grace period, and
//! the [`EmitStrategy`] that says when results leave a windowed aggregation.
//!
//! A window closes when the task's stream time passes its end plus the grace period
//! (sessions: end plus gap plus grace, since a record within the gap could still extend
//! them). A record for a window that has closed is late: it is dropped and counted.

use std::time::Duration;

use crate::serdes::{Serde, SerdeError};

/// A half-open interval of event time, `[start, end)` in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First ms in the window.
    pub start: i64,
    /// First ms after the window. Session windows are closed intervals `[start, end]` of
    /// the records they hold; their `end` is the last record's timestamp.
    pub end: i64,
}

/// A key together with the window an aggregate belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    /// The grouping key.
    pub key: K,
    /// The window.
    pub window: Window,
}

/// When a windowed aggregation sends results downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// On every update of a window (Kafka Streams' default).
    #[default]
    OnWindowUpdate,
    /// Once per window, when it closes (stream time past end + grace): the final result.
    OnWindowClose,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Fixed-size windows aligned to the epoch: tumbling when they advance by their size,
/// hopping (overlapping) when they advance by less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub(crate) size_ms: i64,
    pub(crate) advance_ms: i64,
    pub(crate) grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of this size, no grace period.
    ///
    /// # Panics
    /// If `size` is zero.
    pub fn of(size: Duration) -> Self {
        let size_ms = ms(size);
        assert!(size_ms > 0, "a window size must be at least 1 ms");
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: 0,
        }
    }

    /// Hopping windows: a new window starts every `advance`.
    ///
    /// # Panics
    /// If `advance` is zero or larger than the size.
    pub fn advance_by(mut self, advance: Duration) -> Self {
        let advance_ms = ms(advance);
        assert!(
            advance_ms > 0 && advance_ms <= self.size_ms,
            "a window's advance must be between 1 ms and its size"
        );
        self.advance_ms = advance_ms;
        self
    }

    /// How long after a window's end records for it are still accepted.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace_ms = ms(grace);
        self
    }

    /// The windows a record at `ts` belongs to, oldest first.
    pub(crate) fn windows_for(&self, ts: i64) -> impl Iterator<Item = Window> + use<> {
        let size = self.size_ms;
        let advance = self.advance_ms;
        // The last window starting at or before ts, then back while the window still
        // covers ts.
        let last_start = ts.div_euclid(advance) * advance;
        let first_start = {
            let mut s = last_start;
            while s - advance > ts - size {
                s -= advance;
            }
            s
        };
        (0..)
            .map(move |i| first_start + i * advance)
            .take_while(move |s| *s <= last_start)
            .map(move |start| Window {
                start,
                end: start + size,
            })
    }
}

/// Sliding windows: for each record, the window of `difference` ms ending at (and
/// including) its timestamp, `[t - difference, t]`. Every record in that range counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    pub(crate) difference_ms: i64,
    pub(crate) grace_ms: i64,
}

impl SlidingWindows {
    /// Windows spanning `difference` of event time, with a grace period for late records.
    pub fn with_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        SlidingWindows {
            difference_ms: ms(difference),
            grace_ms: ms(grace),
        }
    }
}

/// Session windows: a key's records closer than `gap` to each other form one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub(crate) gap_ms: i64,
    pub(crate) grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that end after `gap` without a record, no grace period.
    pub fn with_inactivity_gap(gap: Duration) -> Self {
        SessionWindows {
            gap_ms: ms(gap),
            grace_ms: 0,
        }
    }

    /// How long after a session could last have been extended records are still accepted.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace_ms = ms(grace);
        self
    }
}

/// Serde for [`Windowed`] keys: the key's bytes, then the window start and end as 8-byte
/// big-endian integers.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowedSerde<S>(pub S);

/// Bytes first reserved for a serialized windowed key: a key of up to 48 bytes and the
/// two 8-byte times.
const WINDOWED_KEY_CAPACITY: usize = 64;

impl<S: Serde> Serde for WindowedSerde<S> {
    type Target = Windowed<S::Target>;
    fn serialize(&self, value: &Self::Target) -> Result<Option<Vec<u8>>, SerdeError> {
        // Room for a short key and both times: one allocation in the common case.
        let mut out = Vec::with_capacity(WINDOWED_KEY_CAPACITY);
        self.serialize_into(value, &mut out)?;
        Ok(Some(out))
    }
    fn serialize_into(&self, value: &Self::Target, out: &mut Vec<u8>) -> Result<bool, SerdeError> {
        crate::serdes::append_bytes(&self.0, &value.key, out)?;
        out.extend_from_slice(&value.window.start.to_be_bytes());
        out.extend_from_slice(&value.window.end.to_be_bytes());
        Ok(true)
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Self::Target, SerdeError> {
        let data = data.ok_or_else(|| SerdeError("null windowed key".into()))?;
        let split = data.len().checked_sub(16).ok_or_else(|| {
            SerdeError(format!(
                "{} bytes: too short for a windowed key",
                data.len()
            ))
        })?;
        let (key, times) = data.split_at(split);
        let (start, end) = times.split_at(8);
        let start = i64::from_be_bytes(start.try_into().map_err(|_| SerdeError("start".into()))?);
        let end = i64::from_be_bytes(end.try_into().map_err(|_| SerdeError("end".into()))?);
        Ok(Windowed {
            key: self.0.deserialize(Some(key))?,
            window: Window { start, end },
        })
    }
    fn name(&self) -> String {
        format!("Windowed<{}>", self.0.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A record belongs to exactly the windows that cover it, for tumbling and hopping
    // windows, including negative timestamps.
    #[test]
    fn windows_cover_the_record() {
        let tumbling = TimeWindows::of(Duration::from_secs(60));
        let w: Vec<_> = tumbling.windows_for(61_000).collect();
        assert_eq!(
            w,
            vec![Window {
                start: 60_000,
                end: 120_000
            }]
        );
        let hopping = TimeWindows::of(Duration::from_secs(10)).advance_by(Duration::from_secs(5));
        let w: Vec<_> = hopping.windows_for(12_000).collect();
        assert_eq!(
            w,
            vec![
                Window {
                    start: 5_000,
                    end: 15_000
                },
                Window {
                    start: 10_000,
                    end: 20_000
                }
            ]
        );
        for ts in [-7_001, -1, 0, 4_999, 5_000, 123_456] {
            for w in hopping.windows_for(ts) {
                assert!(w.start <= ts && ts < w.end, "{ts} not in {w:?}");
            }
            assert_eq!(hopping.windows_for(ts).count(), 2);
        }
    }

    #[test]
    fn windowed_serde_round_trips() {
        let serde = WindowedSerde(crate::serdes::Str);
        let w = Windowed {
            key: "k".to_string(),
            window: Window { start: 1, end: 2 },
        };
        let bytes = serde.serialize(&w).unwrap().unwrap();
        assert_eq!(serde.deserialize(Some(&bytes)).unwrap(), w);
        assert!(serde.deserialize(Some(b"short")).is_err());
    }
}
