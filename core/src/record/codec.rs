//! Building batches through the `kafka-protocol` codec, and the record types clients see.
//!
//! These are the slow-path helpers used by clients (the embedded producer) and by
//! compaction; the log itself only parses headers. Decoding is in `decode.rs`.

use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    self as kp, NO_PARTITION_LEADER_EPOCH, RecordBatchEncoder, RecordEncodeOptions,
};

use crate::error::{Error, Result};

/// Compression codec of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Records stored as they are.
    #[default]
    None,
    /// gzip (deflate).
    Gzip,
    /// Snappy, Kafka's xerial framing.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec, in Kafka's id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn to_kafka(self) -> kp::Compression {
        match self {
            Compression::None => kp::Compression::None,
            Compression::Gzip => kp::Compression::Gzip,
            Compression::Snappy => kp::Compression::Snappy,
            Compression::Lz4 => kp::Compression::Lz4,
            Compression::Zstd => kp::Compression::Zstd,
        }
    }

    /// The codec for a Kafka compression id (the low three attribute bits).
    pub fn from_id(id: i16) -> Option<Compression> {
        Compression::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The codec's Kafka id (the low three attribute bits).
    pub fn id(self) -> i16 {
        self as i16
    }

    /// Appends `records` (a batch's records section) to `out` compressed as Kafka frames
    /// this codec (Snappy in xerial's framing, LZ4 as a frame), by `kafka-protocol`'s
    /// compressors; `None` copies them.
    pub(crate) fn compress(self, records: &[u8], out: &mut BytesMut) -> Result<()> {
        use kafka_protocol::compression::{self as cmpr, Compressor};
        let copy = |buf: &mut BytesMut| {
            buf.extend_from_slice(records);
            Ok(())
        };
        match self {
            Compression::None => {
                out.extend_from_slice(records);
                Ok(())
            }
            Compression::Gzip => cmpr::Gzip::compress(out, copy),
            Compression::Snappy => cmpr::Snappy::compress(out, copy),
            Compression::Lz4 => cmpr::Lz4::compress(out, copy),
            Compression::Zstd => cmpr::Zstd::compress(out, copy),
        }
        .map_err(|e| Error::InvalidArgument(format!("compressing record batch ({self:?}): {e}")))
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(format!(
                "unknown compression '{s}': use none, gzip, snappy, lz4 or zstd"
            )),
        }
    }
}

/// How a batch's timestamps are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer when the record was created.
    CreateTime,
    /// Set by the log when the batch was appended.
    LogAppendTime,
}

/// A record header: a string key and an optional byte value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value; `None` is Kafka's null header value.
    pub value: Option<Bytes>,
}

/// One record as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset in its partition (relative to the batch start while building a batch).
    pub offset: i64,
    /// Timestamp in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone on compacted topics.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

/// Producer identity stamped on a batch (all -1 for a plain producer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Whether the batch is part of a transaction.
    pub transactional: bool,
}

impl Default for ProducerStamp {
    fn default() -> Self {
        ProducerStamp {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        }
    }
}

/// Encodes `records` as one RecordBatch v2. Record offsets are taken as given (the log
/// overwrites the base offset on append, so producers use 0, 1, 2, ...).
///
/// Uncompressed batches are written directly (`encode.rs`, the producer's hot path);
/// compressed ones through `kafka-protocol`'s encoder.
pub fn encode_batch(
    records: &[Record],
    compression: Compression,
    stamp: ProducerStamp,
) -> Result<BytesMut> {
    if records.is_empty() {
        return Err(Error::InvalidArgument(
            "cannot encode an empty batch".into(),
        ));
    }
    if compression == Compression::None {
        return super::encode::encode_uncompressed(records, stamp);
    }
    encode_batch_kafka_protocol(records, compression, stamp)
}

/// [`encode_batch`] through `kafka-protocol`'s encoder (the reference for `encode.rs`).
pub(super) fn encode_batch_kafka_protocol(
    records: &[Record],
    compression: Compression,
    stamp: ProducerStamp,
) -> Result<BytesMut> {
    if records.is_empty() {
        return Err(Error::InvalidArgument(
            "cannot encode an empty batch".into(),
        ));
    }
    let first_offset = records.first().map(|r| r.offset).unwrap_or(0);
    let converted: Vec<kp::Record> = records
        .iter()
        .map(|r| kp::Record {
            transactional: stamp.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: stamp.producer_id,
            producer_epoch: stamp.producer_epoch,
            timestamp_type: kp::TimestampType::Creation,
            offset: r.offset,
            // The encoder starts a new batch wherever `offset - sequence` changes, so the
            // sequence must advance with the offset even for a plain producer (whose base
            // sequence, -1, is what ends up in the header).
            sequence: stamp
                .base_sequence
                .wrapping_add((r.offset - first_offset) as i32),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (StrBytes::from_string(h.key.clone()), h.value.clone()))
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: compression.to_kafka(),
    };
    RecordBatchEncoder::encode(&mut buf, converted.iter(), &options)
        .map_err(|e| Error::InvalidArgument(format!("encoding record batch: {e}")))?;
    Ok(buf)
}

/// Encodes a transaction marker (Kafka's EndTxnMarker) as a control batch: one control
/// record whose key is `version: i16 = 0, type: i16` (0 ABORT, 1 COMMIT) and whose value is
/// `version: i16 = 0, coordinator_epoch: i32 = 0`; the batch carries the producer id and
/// epoch, base sequence -1 and the transactional and control attribute bits.
pub(crate) fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    timestamp: i64,
) -> Result<BytesMut> {
    let kind: i16 = if commit { 1 } else { 0 };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&0i32.to_be_bytes());
    let record = kp::Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id,
        producer_epoch,
        timestamp_type: kp::TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: kp::Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, std::iter::once(&record), &options)
        .map_err(|e| Error::InvalidArgument(format!("encoding transaction marker: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchError, BatchHeader, BatchIter, decode_batch};

    fn sample(n: i64) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                offset: i,
                timestamp: 1_000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: (i % 3 != 0).then(|| Bytes::from(vec![b'v'; i as usize])),
                headers: vec![Header {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"x")),
                }],
            })
            .collect()
    }

    // Every codec round-trips keys, values, tombstones, headers and timestamps.
    #[test]
    fn round_trip_every_codec() {
        for codec in Compression::ALL {
            let records = sample(50);
            let bytes = encode_batch(&records, codec, ProducerStamp::default())
                .unwrap()
                .freeze();
            let header = BatchHeader::parse(&bytes).unwrap();
            assert_eq!(header.record_count(), 50);
            assert_eq!(header.attributes().compression_id(), codec as i16);
            assert_eq!(decode_batch(bytes).unwrap(), records, "{codec:?}");
        }
    }

    // Batches this process encoded are walked without computing their CRC again, and
    // with every other check: a wrong CRC passes `built` (never `new`), a bad magic or a
    // short length still fails `built`.
    #[test]
    fn built_batches_skip_only_the_crc() {
        let good = encode_batch(&sample(5), Compression::None, ProducerStamp::default())
            .unwrap()
            .to_vec();
        let mut wrong_crc = good.clone();
        let last = wrong_crc.len() - 1;
        wrong_crc[last] ^= 0xff;
        assert!(matches!(
            BatchIter::new(&wrong_crc).next(),
            Some(Err(BatchError::CrcMismatch { .. }))
        ));
        let (_, header) = BatchIter::built(&wrong_crc).next().unwrap().unwrap();
        assert_eq!(header.record_count(), 5);

        let mut bad_magic = good.clone();
        bad_magic[16] = 1;
        assert!(BatchIter::built(&bad_magic).next().unwrap().is_err());
        let short = &good[..good.len() - 1];
        assert!(BatchIter::built(short).next().unwrap().is_err());
    }

    // A marker is one control record in a transactional batch with base sequence -1.
    #[test]
    fn marker_header() {
        let bytes = encode_marker(42, 3, true, 1_000).unwrap().freeze();
        let header = BatchHeader::parse(&bytes).unwrap();
        assert!(header.attributes().control());
        assert!(header.attributes().transactional());
        assert_eq!(header.producer_id(), 42);
        assert_eq!(header.producer_epoch(), 3);
        assert_eq!(header.base_sequence(), -1);
        assert_eq!(header.record_count(), 1);
        let records = decode_batch(bytes).unwrap();
        assert_eq!(records[0].key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    }
}
