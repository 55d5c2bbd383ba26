//! Encoding an uncompressed RecordBatch v2 straight from [`Record`]s into one buffer.
//!
//! `kafka-protocol`'s encoder wants one `kafka_protocol::records::Record` per record
//! (every key and value `Bytes` cloned, which allocates a shared header for bytes built
//! from a `Vec`, then dropped) and grows its buffer as it goes. This encoder sizes the
//! buffer once and copies each key and value once. It writes exactly the bytes
//! `kafka-protocol` writes for the same records (a test below compares them), so it is a
//! faster path to the same format (`docs/format.md`), not a second format:
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
//! The base offset and first timestamp are the smallest of the batch (deltas are never
//! negative); the CRC-32C covers everything from the attributes to the end.

use bytes::{BufMut, BytesMut};

use super::codec::{ProducerStamp, Record};
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

fn varlong_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_varlong(buf, i64::from(v));
}

#[inline]
fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// A length as Kafka's signed 32-bit length, or the error naming what was too large.
fn length(n: usize, what: &str) -> Result<i32> {
    i32::try_from(n).map_err(|_| {
        Error::InvalidArgument(format!(
            "encoding record batch: record {what} was too large to encode ({n} bytes)"
        ))
    })
}

fn bytes_len(b: Option<&[u8]>, what: &str) -> Result<usize> {
    Ok(match b {
        Some(b) => varint_len(length(b.len(), what)?) + b.len(),
        None => 1,
    })
}

/// The size of a record's body (everything after its length varint).
fn body_len(r: &Record, min_offset: i64, min_timestamp: i64) -> Result<(usize, i32)> {
    let offset_delta = i32::try_from(r.offset - min_offset).map_err(|_| {
        Error::InvalidArgument(format!(
            "encoding record batch: offsets too far apart ({min_offset}, {})",
            r.offset
        ))
    })?;
    let mut n = 1 + varlong_len(r.timestamp - min_timestamp) + varint_len(offset_delta);
    n += bytes_len(r.key.as_deref(), "key")?;
    n += bytes_len(r.value.as_deref(), "value")?;
    n += varint_len(length(r.headers.len(), "header count")?);
    for h in &r.headers {
        n += bytes_len(Some(h.key.as_bytes()), "header key")?;
        n += bytes_len(h.value.as_deref(), "header value")?;
    }
    Ok((n, offset_delta))
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

/// Encodes `records` (at least one) as one uncompressed RecordBatch v2.
pub(super) fn encode_uncompressed(records: &[Record], stamp: ProducerStamp) -> Result<BytesMut> {
    let (Some(first), Some(count)) = (records.first(), i32::try_from(records.len()).ok()) else {
        return Err(Error::InvalidArgument(
            "encoding record batch: no records, or too many for one batch".into(),
        ));
    };
    let (mut min_offset, mut max_offset) = (first.offset, first.offset);
    let (mut min_timestamp, mut max_timestamp) = (first.timestamp, first.timestamp);
    for r in records {
        min_offset = min_offset.min(r.offset);
        max_offset = max_offset.max(r.offset);
        min_timestamp = min_timestamp.min(r.timestamp);
        max_timestamp = max_timestamp.max(r.timestamp);
    }
    let mut total = HEADER_BYTES;
    for r in records {
        let (body, _) = body_len(r, min_offset, min_timestamp)?;
        total += varint_len(length(body, "")?) + body;
    }
    let batch_length = length(total - 12, "batch")?;
    let last_offset_delta = i32::try_from(max_offset - min_offset).map_err(|_| {
        Error::InvalidArgument(format!(
            "encoding record batch: offsets too far apart ({min_offset}, {max_offset})"
        ))
    })?;
    // The sequence of the record with the smallest offset (records are numbered from the
    // first one given).
    let base_sequence = stamp
        .base_sequence
        .wrapping_add((min_offset - first.offset) as i32);
    let mut attributes = 0i16;
    if stamp.transactional {
        attributes |= TRANSACTIONAL;
    }

    // A Vec, whose pushes inline to a store, rather than a BytesMut, whose one-byte puts
    // each go through `put_slice`; handed over as a BytesMut without a copy at the end.
    let mut buf = Vec::with_capacity(total);
    buf.put_i64(min_offset);
    buf.put_i32(batch_length);
    buf.put_i32(-1); // partition leader epoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // CRC, filled in below
    buf.put_i16(attributes);
    buf.put_i32(last_offset_delta);
    buf.put_i64(min_timestamp);
    buf.put_i64(max_timestamp);
    buf.put_i64(stamp.producer_id);
    buf.put_i16(stamp.producer_epoch);
    buf.put_i32(base_sequence);
    buf.put_i32(count);
    for r in records {
        let (body, offset_delta) = body_len(r, min_offset, min_timestamp)?;
        put_varint(&mut buf, body as i32);
        buf.push(0); // record attributes
        put_varlong(&mut buf, r.timestamp - min_timestamp);
        put_varint(&mut buf, offset_delta);
        put_bytes(&mut buf, r.key.as_deref());
        put_bytes(&mut buf, r.value.as_deref());
        put_varint(&mut buf, r.headers.len() as i32);
        for h in &r.headers {
            put_bytes(&mut buf, Some(h.key.as_bytes()));
            put_bytes(&mut buf, h.value.as_deref());
        }
    }
    debug_assert_eq!(buf.len(), total, "record batch sized wrongly");
    let crc = crc32c::crc32c(buf.get(CRC_START..).unwrap_or_default());
    if let Some(slot) = buf.get_mut(17..CRC_START) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
    Ok(BytesMut::from(bytes::Bytes::from(buf)))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::record::codec::{Compression, Header, encode_batch_kafka_protocol};

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
}
