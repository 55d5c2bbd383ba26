//! Word-at-a-time (SWAR) scanning for the flat JSON reader: eight bytes of a record are
//! loaded as one little-endian `u64` and classified together, so a string or a run of
//! digits costs a few instructions per eight bytes instead of a load, a compare and a
//! branch per byte. Safe code only: a word is read from a slice of exactly eight bytes,
//! and the last few bytes of a record are scanned one at a time.
//!
//! The classifiers set the high bit of each byte lane that matches. Lanes above the first
//! match may be set wrongly (a subtraction's borrow runs upward), so only the lowest set
//! lane is meaningful: [`first_lane`] is the one answer callers take from a mask.

/// 0x01 in every lane.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every lane.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `at`, the first in the lowest lane; `None` when fewer remain.
#[inline]
pub(super) fn word(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The index (0..8) of the lowest lane flagged in `mask`; 8 when none is.
#[inline]
pub(super) fn first_lane(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// Flags the lanes where a string's fast scan stops: a quote, a backslash, a control
/// character (below 0x20) or a byte of a multi-byte UTF-8 sequence (0x80 and up).
#[inline]
pub(super) fn string_stops(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    // A lane below 0x20 borrows when 0x20 is taken from it; `!w` keeps lanes whose own
    // high bit was set out of it (those are flagged by `w` itself).
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    (quote | backslash | control | w) & HIGHS
}

/// Flags the lanes that are not ASCII digits, and gives every lane's digit value (the
/// byte minus `'0'`, meaningful in the lanes below the first flagged one).
#[inline]
pub(super) fn non_digits(w: u64) -> (u64, u64) {
    let values = w ^ (ONES * u64::from(b'0'));
    // A digit's lane holds 0..=9 and stays below 0x80 when 0x76 is added; any other byte
    // either reaches 0x80 that way or had its high bit set already.
    let mask = (values.wrapping_add(ONES * 0x76) | values) & HIGHS;
    (mask, values)
}

/// The number the digit values in the lowest `n` lanes (1..=8) spell, the lowest lane the
/// most significant digit.
#[inline]
pub(super) fn digits_value(values: u64, n: usize) -> u64 {
    debug_assert!((1..=8).contains(&n));
    // Move the `n` digits to the top lanes; the lanes below become leading zeros.
    let v = values << (8 * (8 - n));
    // Pairs, then quadruples, then the eight (the reduction fast_float uses).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let low = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let high = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    (low.wrapping_add(high) >> 32) & 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64, for generated inputs.
    fn rng(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    // Guards the classifiers against a byte-at-a-time definition on words of every kind:
    // the lowest flagged lane is the first byte that matches, and digit runs of every
    // length spell the number they show.
    #[test]
    fn agree_with_byte_at_a_time_definitions() {
        let mut next = rng(0x1234_5678_9abc_def1);
        for _ in 0..500_000 {
            // Mostly plain bytes or digits, with every byte value now and then.
            let mut bytes = [0u8; 8];
            let digits = next().is_multiple_of(2);
            for b in &mut bytes {
                let r = next();
                *b = match (r % 8, digits) {
                    (0, _) => (r >> 8) as u8,
                    (1, _) => {
                        [b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, b'/', b':'][(r >> 8) as usize % 8]
                    }
                    (_, true) => b'0' + ((r >> 8) % 10) as u8,
                    (_, false) => b'a' + ((r >> 8) % 26) as u8,
                };
            }
            let w = u64::from_le_bytes(bytes);
            let stop = |b: u8| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b);
            let want = bytes.iter().position(|&b| stop(b)).unwrap_or(8);
            assert_eq!(
                first_lane(string_stops(w)),
                want,
                "string stop in {bytes:?}"
            );
            let (mask, values) = non_digits(w);
            let n = bytes.iter().position(|b| !b.is_ascii_digit()).unwrap_or(8);
            assert_eq!(first_lane(mask), n, "digits in {bytes:?}");
            if n > 0 {
                let want: u64 = bytes[..n]
                    .iter()
                    .fold(0, |v, d| v * 10 + u64::from(d - b'0'));
                assert_eq!(digits_value(values, n), want, "value of {bytes:?}");
            }
        }
        assert_eq!(
            digits_value(non_digits(u64::from_le_bytes(*b"99999999")).1, 8),
            99_999_999
        );
        assert_eq!(word(b"1234567", 0), None);
        assert_eq!(word(b"12345678", 1), None);
        assert_eq!(word(b"12345678", usize::MAX), None);
    }
}
