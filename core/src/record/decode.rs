//! Decoding a batch's records, bounded against hostile input.
//!
//! The log stores what producers send, so a batch on disk can be hostile even though its
//! CRC is right: a malicious producer computes the CRC too. Everything a length or count
//! field sizes is checked against the bytes actually present before it is allocated, the
//! records section decompresses under a fixed bound (`decompress.rs`), and a malformed
//! record is an error naming what was wrong. Duplicate header keys, which Kafka allows, are
//! kept in order. (The `kafka-protocol` decoder, which the fuzz target caught reserving
//! memory from untrusted counts and which merges duplicate header keys, is not used here.)
//!
//! Record layout (varints zig-zag encoded):
//! `length, attributes: i8, timestamp delta: varlong, offset delta: varint,
//!  key length, key, value length, value, header count, (key length, key, value length, value)*`

use bytes::Bytes;

use super::decompress::{MAX_DECOMPRESSED_BATCH_BYTES, decompress};
use super::{BATCH_HEADER_BYTES, BatchHeader, Compression, Header, Record};

/// The smallest a v2 record can be: seven one-byte fields.
const MIN_RECORD_BYTES: usize = 7;
/// The smallest a header can be: two one-byte lengths.
const MIN_HEADER_BYTES: usize = 2;

/// A record borrowed from its batch's bytes, as [`visit_batch`] hands it out: no copy and
/// no reference count per record (headers, which are rare, are owned).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRef<'a> {
    /// Offset in its partition.
    pub offset: i64,
    /// Timestamp in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Key, if any.
    pub key: Option<&'a [u8]>,
    /// Value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

impl Record {
    /// This record borrowed, as [`visit_batch`] hands records out.
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: self.headers.clone(),
        }
    }
}

/// Decodes every record of one batch (`bytes` holds that batch, possibly followed by more).
///
/// Timestamps follow the batch's timestamp type: for log-append-time batches every record
/// carries the batch's max timestamp, as Kafka clients report it.
pub fn decode_batch(bytes: Bytes) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let out = &mut records;
    visit_batch_section(bytes, |section, count| {
        out.reserve_exact(count);
        let section = section.clone();
        move |record: RecordRef<'_>| {
            out.push(Record {
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key.map(|k| section.slice_ref(k)),
                value: record.value.map(|v| section.slice_ref(v)),
                headers: record.headers,
            });
            true
        }
    })?;
    Ok(records)
}

/// Hands each record of one batch, in order, to `visit`, borrowed from the batch's bytes
/// (decompressed first if need be); stops early when `visit` returns false. Decoding is
/// [`decode_batch`]'s, with the same checks and timestamps, without a `Vec<Record>` or a
/// reference count per record: for readers that turn records into something else at once,
/// such as a SQL scan building columns.
pub fn visit_batch(bytes: Bytes, visit: impl FnMut(RecordRef<'_>) -> bool) -> Result<(), String> {
    visit_batch_section(bytes, |_, _| visit)
}

/// Decodes one batch, handing its records to the visitor `make(section, count)` returns.
pub(crate) fn visit_batch_section<V: FnMut(RecordRef<'_>) -> bool>(
    bytes: Bytes,
    make: impl FnOnce(&Bytes, usize) -> V,
) -> Result<(), String> {
    let header = BatchHeader::peek(&bytes).map_err(|e| e.to_string())?;
    let end = header.batch_bytes();
    if end > bytes.len() {
        return Err(format!(
            "batch claims {end} bytes but {} are present",
            bytes.len()
        ));
    }
    let codec = Compression::from_id(header.attributes().compression_id()).ok_or_else(|| {
        format!(
            "unknown compression codec id {}",
            header.attributes().compression_id()
        )
    })?;
    let count =
        usize::try_from(header.record_count()).map_err(|_| "negative record count".to_string())?;
    let section = bytes.slice(BATCH_HEADER_BYTES..end);
    let section = match codec {
        Compression::None => section,
        codec => Bytes::from(decompress(codec, &section, MAX_DECOMPRESSED_BATCH_BYTES)?),
    };
    if count.saturating_mul(MIN_RECORD_BYTES) > section.len() {
        return Err(format!(
            "batch claims {count} records but its records section is only {} bytes",
            section.len()
        ));
    }
    let log_append_time = header
        .attributes()
        .log_append_time()
        .then(|| header.max_timestamp());
    let mut visit = make(&section, count);
    let mut reader = Reader {
        buf: &section,
        section: &section,
        position: 0,
    };
    let (base_offset, base_timestamp) = (header.base_offset(), header.base_timestamp());
    for i in 0..count {
        let mut record = reader
            .record(base_offset, base_timestamp)
            .map_err(|e| format!("record {i} of {count}: {e}"))?;
        if let Some(t) = log_append_time {
            record.timestamp = t;
        }
        if !visit(record) {
            break;
        }
    }
    Ok(())
}

/// Where a primitive read fell short. One byte, so a read's `Result` comes back in
/// registers: a small record's decoding is mostly such reads.
#[derive(Debug, Clone, Copy)]
enum Short {
    /// The section ended inside the value.
    Truncated,
    /// A varint ran past its type's bytes.
    VarintTooLong,
}

impl From<Short> for String {
    fn from(short: Short) -> String {
        match short {
            Short::Truncated => "truncated record".into(),
            Short::VarintTooLong => "varint too long".into(),
        }
    }
}

/// A cursor over a records section; every read is bounds-checked.
struct Reader<'a> {
    /// The section's bytes, read directly (not through `section`: one indirection less
    /// on every byte of every record).
    buf: &'a [u8],
    /// The same bytes as `Bytes`, which header values are sliced from.
    section: &'a Bytes,
    position: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn remaining(&self) -> usize {
        self.buf.len() - self.position
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, Short> {
        let b = *self.buf.get(self.position).ok_or(Short::Truncated)?;
        self.position += 1;
        Ok(b)
    }

    /// An unsigned LEB128 varint of at most `max_bytes` bytes.
    #[inline(always)]
    fn unsigned(&mut self, max_bytes: u32) -> Result<u64, Short> {
        // Most of a small record's varints (lengths, deltas, counts) take one byte.
        if let Some(&b) = self.buf.get(self.position)
            && b & 0x80 == 0
        {
            self.position += 1;
            return Ok(u64::from(b));
        }
        self.unsigned_long(max_bytes)
    }

    /// [`unsigned`](Self::unsigned) for varints of more than one byte.
    #[inline]
    fn unsigned_long(&mut self, max_bytes: u32) -> Result<u64, Short> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Short::VarintTooLong)
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<i32, Short> {
        let raw = self.unsigned(5)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    #[inline(always)]
    fn varlong(&mut self) -> Result<i64, Short> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A length-prefixed byte string within `limit`; `None` for length -1.
    #[inline(always)]
    fn bytes(&mut self, limit: usize, what: &str) -> Result<Option<&'a [u8]>, String> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("negative {what} length {len}"))?;
        if len > limit.saturating_sub(self.position) {
            return Err(format!("{what} of {len} bytes runs past the record"));
        }
        let out = self
            .buf
            .get(self.position..self.position + len)
            .ok_or(Short::Truncated)?;
        self.position += len;
        Ok(Some(out))
    }

    /// Inlined into the batch's loop, so the record reaches the visitor without a copy
    /// through the stack (storing it was the costliest step of decoding a small record).
    #[inline(always)]
    fn record(&mut self, base_offset: i64, base_timestamp: i64) -> Result<RecordRef<'a>, String> {
        let length = self.varint()?;
        let length =
            usize::try_from(length).map_err(|_| format!("negative record length {length}"))?;
        if length > self.remaining() {
            return Err(format!(
                "record of {length} bytes runs past the records section"
            ));
        }
        let end = self.position + length;
        let _attributes = self.byte()?;
        let timestamp = base_timestamp.wrapping_add(self.varlong()?);
        let offset = base_offset + i64::from(self.varint()?);
        let key = self.bytes(end, "key")?;
        let value = self.bytes(end, "value")?;
        let count = self.varint()?;
        let count = usize::try_from(count).map_err(|_| format!("negative header count {count}"))?;
        if count.saturating_mul(MIN_HEADER_BYTES) > end.saturating_sub(self.position) {
            return Err(format!("{count} headers cannot fit in the record"));
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let key = self.bytes(end, "header key")?.ok_or("null header key")?;
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| "header key is not UTF-8".to_string())?;
            let value = self
                .bytes(end, "header value")?
                .map(|v| self.section.slice_ref(v));
            headers.push(Header { key, value });
        }
        if self.position != end {
            return Err(format!(
                "record length says {length} bytes but its fields take {}",
                length as i64 + self.position as i64 - end as i64
            ));
        }
        Ok(RecordRef {
            offset,
            timestamp,
            key,
            value,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ProducerStamp, encode_batch};

    // Records encoded by kafka-protocol decode to the same values through this decoder.
    #[test]
    fn agrees_with_the_encoder() {
        let records: Vec<Record> = (0..20)
            .map(|i| Record {
                offset: i,
                timestamp: 5_000 - i,
                key: (i % 4 != 0).then(|| Bytes::from(format!("k{i}"))),
                value: (i % 5 != 0).then(|| Bytes::from(vec![b'x'; (i * 37) as usize])),
                headers: (0..(i % 3))
                    .map(|h| Header {
                        key: format!("h{h}"),
                        value: (h % 2 == 0).then(|| Bytes::from_static(b"v")),
                    })
                    .collect(),
            })
            .collect();
        for codec in Compression::ALL {
            let batch = encode_batch(&records, codec, ProducerStamp::default())
                .unwrap()
                .freeze();
            assert_eq!(decode_batch(batch).unwrap(), records, "{codec:?}");
        }
    }

    // Kafka allows the same header key twice; both survive, in order.
    #[test]
    fn duplicate_header_keys_are_kept() {
        // One record: length, attrs, ts delta 0, offset delta 0, key -1, value "v",
        // 2 headers "a"="1", "a"="2".
        let body: Vec<u8> = vec![0, 0, 0, 1, 2, b'v', 4, 2, b'a', 2, b'1', 2, b'a', 2, b'2'];
        let mut section = vec![(body.len() as u8) << 1];
        section.extend_from_slice(&body);
        let base = encode_batch(
            &[Record {
                offset: 0,
                timestamp: 7,
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: vec![],
            }],
            Compression::None,
            ProducerStamp::default(),
        )
        .unwrap();
        let mut batch = base[..BATCH_HEADER_BYTES].to_vec();
        batch.extend_from_slice(&section);
        let len = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&len.to_be_bytes());
        let records = decode_batch(Bytes::from(batch)).unwrap();
        let keys: Vec<(&str, Option<&[u8]>)> = records[0]
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref()))
            .collect();
        assert_eq!(keys, vec![("a", Some(&b"1"[..])), ("a", Some(&b"2"[..]))]);
    }
}
