//! Key layouts that turn one ordered byte map into window, session and sliding-window
//! stores. Times are 8 bytes big-endian with the sign bit flipped, so byte order is time
//! order, negative times included.
//!
//! ```text
//! window:   start(8) | key bytes                         -> aggregate
//! session:  key len(4) | key bytes | end(8) | start(8)   -> aggregate
//! sliding:  key len(4) | key bytes | ts(8) | offset(8)   -> value
//! ```
//! Window keys lead with the start so closing windows is a scan of the oldest prefix;
//! session and sliding keys lead with the key so one key's sessions or records are a
//! contiguous range.

/// Where a windowed store keeps the stream time of its last close. Three bytes: too short
/// to parse as a window (8+) or keyed (4+ with a length) key, so scans skip it.
pub(crate) const STREAM_TIME_KEY: &[u8] = &[0, 0, 0];

/// A time as order-preserving bytes.
pub(crate) fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// The time these bytes encode (`None` if there are not 8 of them).
pub(crate) fn time_from(b: &[u8]) -> Option<i64> {
    let b: [u8; 8] = b.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

#[cfg(test)]
pub(crate) fn window_key(start: i64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::new();
    start_window_key(&mut k, start);
    k.extend_from_slice(key);
    k
}

/// Replaces `buf` with the start of a window key: `start`; the key's bytes follow.
pub(crate) fn start_window_key(buf: &mut Vec<u8>, start: i64) {
    buf.clear();
    buf.extend_from_slice(&time_bytes(start));
}

/// Points a window key (`start_window_key` then the key's bytes) at window `start`.
pub(crate) fn set_window_start(k: &mut [u8], start: i64) {
    if let Some(t) = k.get_mut(..8) {
        t.copy_from_slice(&time_bytes(start));
    }
}

/// (window start, key bytes) of a window-store key.
pub(crate) fn split_window_key(k: &[u8]) -> Option<(i64, &[u8])> {
    let (t, key) = k.split_at_checked(8)?;
    Some((time_from(t)?, key))
}

/// The prefix shared by every session/sliding key of `key`.
pub(crate) fn keyed_prefix(key: &[u8]) -> Vec<u8> {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut k = Vec::with_capacity(4 + key.len() + 16);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// `prefix | a | b`: a session key (a = end, b = start) or a sliding key (a = ts, b = offset).
pub(crate) fn keyed_key(key: &[u8], a: i64, b: i64) -> Vec<u8> {
    let mut k = keyed_prefix(key);
    k.extend_from_slice(&time_bytes(a));
    k.extend_from_slice(&time_bytes(b));
    k
}

/// (key bytes, a, b) of a session or sliding key.
pub(crate) fn split_keyed_key(k: &[u8]) -> Option<(&[u8], i64, i64)> {
    let (len, rest) = k.split_at_checked(4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    let (key, times) = rest.split_at_checked(len)?;
    let (a, b) = times.split_at_checked(8)?;
    Some((key, time_from(a)?, time_from(b)?))
}

/// The first key after every key that starts with `prefix` (for exclusive range ends).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Byte order of encoded times is numeric order, and keys split back into parts.
        #[test]
        fn time_order_and_round_trip(a in any::<i64>(), b in any::<i64>(), key in proptest::collection::vec(any::<u8>(), 0..20)) {
            prop_assert_eq!(a.cmp(&b), time_bytes(a).cmp(&time_bytes(b)));
            prop_assert_eq!(time_from(&time_bytes(a)), Some(a));
            let wk = window_key(a, &key);
            prop_assert_eq!(split_window_key(&wk), Some((a, &key[..])));
            let sk = keyed_key(&key, a, b);
            prop_assert_eq!(split_keyed_key(&sk), Some((&key[..], a, b)));
            prop_assert!(sk.starts_with(&keyed_prefix(&key)));
            if let Some(end) = prefix_end(&keyed_prefix(&key)) {
                prop_assert!(sk < end);
            }
        }
    }
}
