//! Encoding RecordBatch v2 straight into one buffer: [`BatchBuilder`], a record at a time
//! (the embedded producer's batches), and `encode_uncompressed`, from [`Record`]s (the
//! uncompressed path of [`encode_batch`](super::encode_batch)).
//!
//! `kafka-protocol`'s encoder wants one `kafka_protocol::records::Record` per record
//! (every key and value `Bytes` cloned, which allocates a shared header for bytes built
//! from a `Vec`, then dropped) and grows its buffer as it goes. These encoders copy each
//! key and value once, into a buffer sized ahead. `encode_uncompressed` writes exactly the
//! bytes `kafka-protocol` writes for the same records (a test below compares them), so it
//! is a faster path to the same format (`docs/format.md`), not a second format:
//!
//! ```text
//! base offset i64 | batch length i32 | leader epoch i32 (-1) | magic i8 (2) | crc u32
//! | attributes i16 | last offset delta i32 | first timestamp i64 | max timestamp i64
//! | producer id i64 | producer epoch i16 | base sequence i32 | record count i32
//! | records: length varint, attributes i8 (0), timestamp delta varlong, offset delta
//!   varint, key (varint length or -1, bytes), value (likewise), header count varint,
//!   headers (key length varint, key, value length varint or -1, value)
//! ```
//!
//! `encode_uncompressed` bases offsets and timestamps on the smallest of the batch (deltas
//! are never negative); a [`BatchBuilder`] bases them on its first record, as Kafka's
//! Java producer does, so a later record with an older timestamp has a negative delta. The
//! CRC-32C covers everything from the attributes to the end. Compressed batches compress
//! the records section with `kafka-protocol`'s compressors (the framing Kafka expects).

use bytes::{BufMut, BytesMut};

use super::codec::{Compression, Header, ProducerStamp, Record};
use crate::error::{Error, Result};

/// Bytes before the records: the fixed RecordBatch v2 header.
const HEADER_BYTES: usize = 61;
/// Where the CRC-covered part starts (the attributes).
const CRC_START: usize = 21;
/// Attribute bit of a transactional batch.
const TRANSACTIONAL: i16 = 1 << 4;

fn varint_len(v: i32) -> usize {
    varlong_len(i64::from(v))
}

/// The bytes [`put_varlong`] writes for `v`: one per started 7 bits of its zigzag form
/// (at least one), counted without a loop or a division: for `bits` from 1 to 64,
/// `(9 * bits + 64) / 64` is `bits` divided by 7, rounded up.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    let bits = 64 - (z | 1).leading_zeros() as usize;
    (9 * bits + 64) / 64
}

/// Writes `v` as [`put_varlong`] does, into `out` at `at`; returns where it ends.
///
/// For encoders that size their output first ([`varlong_len`]) and fill it in place.
///
/// # Panics
/// If `out` has fewer than [`varlong_len`]`(v)` bytes from `at`.
#[inline]
pub fn put_varlong_at(out: &mut [u8], mut at: usize, v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out[at] = (z as u8) | 0x80;
        z >>= 7;
        at += 1;
    }
    out[at] = z as u8;
    at + 1
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_varlong(buf, i64::from(v));
}

/// Appends `v` zigzag-encoded as a little-endian base-128 varint: a Kafka record's
/// varlong, and Avro's `long` (and `int`).
///
/// A byte at a time: an eight-bytes-at-once version (the 7-bit groups spread by shifts,
/// one fixed append cut to length) took more instructions, since most numbers written
/// here are one or two bytes long.
#[inline]
pub fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// A length as Kafka's signed 32-bit length, or the error naming what was too large.
fn length(n: usize, what: &'static str) -> Result<i32> {
    i32::try_from(n).map_err(|_| too_large_part([(n, what)], n))
}

/// Encodes `records` (at least one) as one uncompressed RecordBatch v2.
pub(super) fn encode_uncompressed(records: &[Record], stamp: ProducerStamp) -> Result<BytesMut> {
    let (Some(first), Ok(count)) = (records.first(), i32::try_from(records.len())) else {
        return Err(Error::InvalidArgument(
            "encoding record batch: no records, or too many for one batch".into(),
        ));
    };
    let (mut min_offset, mut min_timestamp) = (first.offset, first.timestamp);
    for r in records {
        min_offset = min_offset.min(r.offset);
        min_timestamp = min_timestamp.min(r.timestamp);
    }
    let mut total = HEADER_BYTES;
    for r in records {
        let body = body_len(
            offset_delta(r.offset, min_offset)?,
            r.timestamp - min_timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        )?;
        total += varint_len(length(body, "")?) + body;
    }
    let mut builder = BatchBuilder::new();
    builder.base_timestamps_on(min_timestamp);
    for r in records {
        builder.push_at(
            offset_delta(r.offset, min_offset)?,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
            total,
        )?;
    }
    debug_assert_eq!(builder.size(), total, "record batch sized wrongly");
    debug_assert_eq!(builder.len(), count as usize);
    // The sequence of the record with the smallest offset (records are numbered from the
    // first one given).
    let stamp = ProducerStamp {
        base_sequence: stamp
            .base_sequence
            .wrapping_add((min_offset - first.offset) as i32),
        ..stamp
    };
    builder.finish(min_offset, Compression::None, stamp)
}

/// The offset delta of a record at `offset` in a batch based at `base`.
fn offset_delta(offset: i64, base: i64) -> Result<i32> {
    i32::try_from(offset - base).map_err(|_| {
        Error::InvalidArgument(format!(
            "encoding record batch: offsets too far apart ({base}, {offset})"
        ))
    })
}

/// The size of a record's body (everything after its length varint).
///
/// Added up without a check per field: a body that fits Kafka's 32-bit length has every
/// length in it fitting too, so one check at the end covers them, and only a record that
/// fails it is looked at again to name the part too large.
#[inline]
fn body_len(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> Result<usize> {
    let bytes = |b: Option<&[u8]>| b.map_or(1, |b| varlong_len(b.len() as i64) + b.len());
    let mut n = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    n += bytes(key) + bytes(value) + varlong_len(headers.len() as i64);
    for h in headers {
        n += bytes(Some(h.key.as_bytes())) + bytes(h.value.as_deref());
    }
    if n > i32::MAX as usize {
        return Err(too_large(key, value, headers, n));
    }
    Ok(n)
}

/// The error for a record whose body (of `n` bytes) does not fit Kafka's 32-bit length,
/// naming the first part that does not fit on its own.
#[cold]
fn too_large(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header], n: usize) -> Error {
    let len = |b: Option<&[u8]>| b.map_or(0, <[u8]>::len);
    let parts = [(len(key), "key"), (len(value), "value")]
        .into_iter()
        .chain(std::iter::once((headers.len(), "header count")))
        .chain(headers.iter().flat_map(|h| {
            [
                (h.key.len(), "header key"),
                (len(h.value.as_deref()), "header value"),
            ]
        }));
    too_large_part(parts, n)
}

/// [`too_large`] over the parts' lengths.
fn too_large_part(parts: impl IntoIterator<Item = (usize, &'static str)>, n: usize) -> Error {
    let reason = match parts.into_iter().find(|&(len, _)| len > i32::MAX as usize) {
        Some((len, what)) => format!("record {what} was too large to encode ({len} bytes)"),
        None => format!("record was too large to encode ({n} bytes)"),
    };
    Error::InvalidArgument(format!("encoding record batch: {reason}"))
}

#[inline]
fn put_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            // Lengths were checked to fit an i32 when the record was sized.
            put_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
        None => put_varint(buf, -1),
    }
}

/// A RecordBatch v2 built a record at a time, as a producer buffers them: each record is
/// encoded into the batch's buffer when it is added (Kafka's `MemoryRecordsBuilder` works
/// the same way), so its key and value are copied once, need not outlive the call, and
/// nothing is kept per record. The header is written by [`finish`](Self::finish), which
/// also compresses the records if asked.
///
/// Timestamps are deltas from the first record's (Kafka's "first timestamp"; a later
/// record may be older, its delta negative, as Java clients write them).
#[derive(Debug, Default)]
pub struct BatchBuilder {
    /// The header's room, then the records; empty before the first record.
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    last_offset_delta: i32,
}

impl BatchBuilder {
    /// An empty builder; it allocates at its first record.
    pub fn new() -> BatchBuilder {
        BatchBuilder::default()
    }

    /// Records added since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was added since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the batch so far, header included (0 when empty).
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Makes `base_timestamp` the one the timestamps of an empty batch's records are
    /// deltas from (by default the first record's).
    fn base_timestamps_on(&mut self, base_timestamp: i64) {
        if self.buf.is_empty() {
            self.base_timestamp = base_timestamp;
            self.max_timestamp = base_timestamp;
        }
    }

    /// Adds a record whose offset delta is its place in the batch (0, 1, 2, ...). The
    /// first record of a batch reserves `capacity` bytes for the batch. On an error (a
    /// key or value too large for Kafka's 32-bit lengths) nothing is added.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        capacity: usize,
    ) -> Result<()> {
        self.base_timestamps_on(timestamp);
        self.push_at(self.count, timestamp, key, value, headers, capacity)
    }

    /// Adds a record at `offset_delta`; `capacity` as in [`push`](Self::push).
    fn push_at(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        capacity: usize,
    ) -> Result<()> {
        let timestamp_delta = timestamp.checked_sub(self.base_timestamp).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "encoding record batch: timestamps too far apart ({}, {timestamp})",
                self.base_timestamp
            ))
        })?;
        let count = self.count.checked_add(1).ok_or_else(|| {
            Error::InvalidArgument("encoding record batch: too many records".into())
        })?;
        let body = body_len(offset_delta, timestamp_delta, key, value, headers)?;
        let body_length = length(body, "")?;
        let size = self.buf.len().max(HEADER_BYTES) + varint_len(body_length) + body;
        length(size - 12, "batch")?;
        let buf = &mut self.buf;
        if buf.is_empty() {
            buf.reserve_exact(capacity.max(size));
            buf.resize(HEADER_BYTES, 0);
        }
        // Up to the key's length in one copy: the record's length (5 bytes at most), its
        // attributes (0), the timestamp delta (10) and the offset delta (5), the key's
        // length (5).
        let mut head = [0u8; 26];
        let mut n = put_varlong_at(&mut head, 0, body_length.into());
        n += 1;
        n = put_varlong_at(&mut head, n, timestamp_delta);
        n = put_varlong_at(&mut head, n, offset_delta.into());
        n = put_varlong_at(&mut head, n, key.map_or(-1, |k| k.len() as i64));
        buf.extend_from_slice(&head[..n]);
        if let Some(key) = key {
            buf.extend_from_slice(key);
        }
        put_bytes(buf, value);
        put_varint(buf, headers.len() as i32);
        for h in headers {
            put_bytes(buf, Some(h.key.as_bytes()));
            put_bytes(buf, h.value.as_deref());
        }
        self.count = count;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.last_offset_delta = self.last_offset_delta.max(offset_delta);
        Ok(())
    }

    /// The batch (at base offset `base_offset`, its records compressed with
    /// `compression`), leaving the builder empty; an error if it has no records.
    pub fn finish(
        &mut self,
        base_offset: i64,
        compression: Compression,
        stamp: ProducerStamp,
    ) -> Result<BytesMut> {
        if self.count == 0 {
            return Err(Error::InvalidArgument(
                "cannot encode an empty batch".into(),
            ));
        }
        let BatchBuilder {
            buf,
            count,
            base_timestamp,
            max_timestamp,
            last_offset_delta,
        } = std::mem::take(self);
        let mut buf = match compression {
            Compression::None => buf,
            codec => {
                let (header, records) = buf.split_at(HEADER_BYTES);
                let mut out = BytesMut::with_capacity(HEADER_BYTES + records.len() / 2);
                out.extend_from_slice(header);
                codec.compress(records, &mut out)?;
                length(out.len() - 12, "batch")?;
                Vec::from(out)
            }
        };
        let batch_length = (buf.len() - 12) as i32;
        let mut attributes = compression.id();
        if stamp.transactional {
            attributes |= TRANSACTIONAL;
        }
        let mut header = [0u8; HEADER_BYTES];
        {
            let mut h = &mut header[..];
            h.put_i64(base_offset);
            h.put_i32(batch_length);
            h.put_i32(-1); // partition leader epoch
            h.put_i8(2); // magic
            h.put_u32(0); // CRC, filled in below
            h.put_i16(attributes);
            h.put_i32(last_offset_delta);
            h.put_i64(base_timestamp);
            h.put_i64(max_timestamp);
            h.put_i64(stamp.producer_id);
            h.put_i16(stamp.producer_epoch);
            h.put_i32(stamp.base_sequence);
            h.put_i32(count);
        }
        if let Some(room) = buf.get_mut(..HEADER_BYTES) {
            room.copy_from_slice(&header);
        }
        let crc = crc32c::crc32c(buf.get(CRC_START..).unwrap_or_default());
        if let Some(slot) = buf.get_mut(17..CRC_START) {
            slot.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(BytesMut::from(bytes::Bytes::from(buf)))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::record::codec::{Compression, Header, encode_batch_kafka_protocol};

    #[test]
    fn varlongs_are_written_as_the_byte_loop_writes_them() {
        // `put_varlong` (which Avro values share) against the plain loop, at every length
        // of 1 to 10 bytes and both signs, after bytes already in the buffer; and
        // `varlong_len` and `put_varlong_at` agree.
        let byte_loop = |v: i64| {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            let mut out = vec![0xaa];
            while z >= 0x80 {
                out.push((z as u8) | 0x80);
                z >>= 7;
            }
            out.push(z as u8);
            out
        };
        let mut values = vec![0i64, 1, -1, i64::MAX, i64::MIN];
        for shift in 0..63 {
            for v in [1i64 << shift, (1i64 << shift) - 1, (1i64 << shift) + 1] {
                values.extend([v, -v]);
            }
        }
        for v in values {
            let mut written = vec![0xaa];
            put_varlong(&mut written, v);
            assert_eq!(written, byte_loop(v), "{v}");
            assert_eq!(varlong_len(v), written.len() - 1, "{v}");
            // In place, between bytes it must leave alone.
            let mut out = vec![0x55; written.len() + 1];
            out[0] = 0xaa;
            let end = put_varlong_at(&mut out, 1, v);
            assert_eq!(end, written.len(), "{v}");
            assert_eq!(&out[..end], &written[..], "{v}");
            assert_eq!(out[end], 0x55, "{v}");
        }
    }

    #[test]
    fn a_record_too_large_names_its_part() {
        let big = i32::MAX as usize + 1;
        let named = |parts: Vec<(usize, &'static str)>, n| too_large_part(parts, n).to_string();
        let message = named(vec![(10, "key"), (big, "value")], big + 20);
        assert!(message.contains("record value was too large"), "{message}");
        assert!(message.contains(&format!("({big} bytes)")), "{message}");
        // No part too large alone: the record as a whole is named.
        let message = named(vec![(big / 2, "key"), (big / 2 + 1, "value")], big + 10);
        assert!(message.contains("record was too large"), "{message}");
    }

    fn record(offset: i64, timestamp: i64, i: usize) -> Record {
        let key = (!i.is_multiple_of(3)).then(|| Bytes::from(format!("key-{i}")));
        let value = (!i.is_multiple_of(5)).then(|| Bytes::from("v".repeat(i * 7)));
        let headers = (0..i % 3)
            .map(|h| Header {
                key: format!("h{h}"),
                value: (h != 1).then(|| Bytes::from(format!("hv{i}"))),
            })
            .collect();
        Record {
            offset,
            timestamp,
            key,
            value,
            headers,
        }
    }

    #[test]
    fn writes_the_bytes_kafka_protocol_writes() {
        // Guards the fast encoder against drifting from the reference encoder: every
        // field, varint, null, header, timestamp order and producer stamp must match.
        let stamps = [
            ProducerStamp::default(),
            ProducerStamp {
                producer_id: 7,
                producer_epoch: 3,
                base_sequence: i32::MAX - 2,
                transactional: true,
            },
        ];
        let batches: Vec<Vec<Record>> = vec![
            vec![record(0, 1_700_000_000_000, 1)],
            (0..200)
                .map(|i| record(i, 1_700_000_000_000 + (i * 37) % 101, i as usize))
                .collect(),
            (5..40)
                .map(|i| record(i, -5 + i, i as usize * 1000))
                .collect(),
        ];
        for stamp in stamps {
            for records in &batches {
                let fast = encode_uncompressed(records, stamp).unwrap();
                let reference =
                    encode_batch_kafka_protocol(records, Compression::None, stamp).unwrap();
                assert_eq!(fast, reference);
            }
        }
    }

    #[test]
    fn a_batch_built_record_by_record_reads_back_with_every_codec() {
        // Proves the builder's batches hold what was pushed: offsets numbered from 0, an
        // older record after a newer one (a negative timestamp delta), null keys and
        // values, headers; that every codec's batch reads back the same through this
        // crate's decoder and kafka-protocol's; that the header carries the stamp, the
        // max timestamp and the codec; and that finishing empties the builder for reuse.
        use kafka_protocol::records::RecordBatchDecoder;

        use crate::record::{BatchHeader, decode_batch};

        /// Offset, timestamp, key, value and header count of a record.
        type Seen = (i64, i64, Option<Bytes>, Option<Bytes>, usize);

        let records: Vec<Record> = (0..300)
            .map(|i| {
                let timestamp = 1_700_000_000_000 + if i == 7 { -5_000 } else { i * 3 };
                record(i, timestamp, i as usize)
            })
            .collect();
        let stamp = ProducerStamp {
            producer_id: 11,
            producer_epoch: 2,
            base_sequence: 40,
            transactional: true,
        };
        let mut builder = BatchBuilder::new();
        for codec in Compression::ALL {
            for r in &records {
                builder
                    .push(
                        r.timestamp,
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &r.headers,
                        0,
                    )
                    .unwrap();
            }
            assert_eq!(builder.len(), records.len());
            let batch = builder.finish(0, codec, stamp).unwrap().freeze();
            assert!(builder.is_empty() && builder.size() == 0, "{codec:?}");
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(header.attributes().compression_id(), codec.id());
            assert_eq!(header.base_timestamp(), records[0].timestamp, "{codec:?}");
            assert_eq!(header.max_timestamp(), 1_700_000_000_000 + 299 * 3);
            assert_eq!(header.producer_id(), 11);
            assert_eq!(header.base_sequence(), 40);
            assert!(header.attributes().transactional());
            assert_eq!(decode_batch(batch.clone()).unwrap(), records, "{codec:?}");
            let mut bytes = batch.clone();
            let theirs = RecordBatchDecoder::decode(&mut bytes).unwrap();
            let theirs: Vec<Seen> = theirs
                .records
                .into_iter()
                .map(|r| (r.offset, r.timestamp, r.key, r.value, r.headers.len()))
                .collect();
            let ours: Vec<Seen> = records
                .iter()
                .map(|r| {
                    (
                        r.offset,
                        r.timestamp,
                        r.key.clone(),
                        r.value.clone(),
                        r.headers.len(),
                    )
                })
                .collect();
            assert_eq!(theirs, ours, "{codec:?}");
        }
        assert!(builder.finish(0, Compression::None, stamp).is_err());
    }
}
