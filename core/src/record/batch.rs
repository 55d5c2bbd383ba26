//! The fixed 61-byte RecordBatch v2 header: parsing, validation and in-place edits.
//!
//! Invariants kept here:
//! - a batch is accepted only if its length field matches the bytes present, its magic is 2
//!   and its CRC32C (over bytes 21.. to the end) matches;
//! - every accessor reads from a buffer already checked to hold at least
//!   [`BATCH_HEADER_BYTES`], so none can read out of bounds.

use std::fmt;

/// Size of the RecordBatch v2 header, up to and including the record count.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the length field's coverage starts: base offset (8) and length (4).
pub(crate) const LOG_OVERHEAD: usize = 12;
const MAGIC_POS: usize = 16;
const CRC_POS: usize = 17;
const ATTRIBUTES_POS: usize = 21;
const LAST_OFFSET_DELTA_POS: usize = 23;
const BASE_TIMESTAMP_POS: usize = 27;
const MAX_TIMESTAMP_POS: usize = 35;
const PRODUCER_ID_POS: usize = 43;
const PRODUCER_EPOCH_POS: usize = 51;
const BASE_SEQUENCE_POS: usize = 53;
const RECORD_COUNT_POS: usize = 57;
/// The smallest a v2 record can be: length, attributes, timestamp delta, offset delta,
/// key length, value length, header count: seven one-byte varints.
const MIN_RECORD_BYTES: usize = 7;

/// Why a batch was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than a batch header.
    #[error("batch is {len} bytes, shorter than the {BATCH_HEADER_BYTES}-byte v2 header")]
    TooShort {
        /// Bytes present.
        len: usize,
    },
    /// The length field disagrees with the bytes present.
    #[error("batch length field says {declared} bytes follow but {available} are present")]
    LengthMismatch {
        /// What the length field says follows it.
        declared: i64,
        /// What actually follows it.
        available: usize,
    },
    /// Not a v2 batch.
    #[error("unsupported magic byte {magic}: only RecordBatch v2 (magic 2) is accepted")]
    BadMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The CRC does not match the contents.
    #[error("CRC32C mismatch: header says {stored:#010x}, contents hash to {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// Record count, offset delta or size fields are inconsistent.
    #[error("inconsistent batch header: {0}")]
    BadHeader(&'static str),
    /// The batch is larger than the topic allows.
    #[error("batch is {size} bytes, over this topic's max.message.bytes of {max}")]
    TooLarge {
        /// The batch's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Compression codec id outside 0..=4.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(i16),
    /// Idempotent or transactional batches must arrive one per append.
    #[error("an idempotent producer's append must hold exactly one batch")]
    MultipleIdempotentBatches,
    /// The append held no batch at all.
    #[error("no record batch in the append")]
    Empty,
    /// Control batches (transaction markers) are written by the coordinator, not producers.
    #[error("control batches (transaction markers) may not be produced")]
    ControlBatch,
}

/// Attribute bits of a batch (bytes 21..23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchAttributes(pub i16);

impl RecordBatchAttributes {
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression_id(self) -> i16 {
        self.0 & 0x7
    }
    /// Whether the batch's timestamps are log-append times.
    pub fn log_append_time(self) -> bool {
        self.0 & (1 << 3) != 0
    }
    /// Whether the batch belongs to a transaction.
    pub fn transactional(self) -> bool {
        self.0 & (1 << 4) != 0
    }
    /// Whether the batch holds control records (transaction markers).
    pub fn control(self) -> bool {
        self.0 & (1 << 5) != 0
    }
}

/// A view of one batch's header, over bytes known to hold at least the header.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

impl fmt::Debug for BatchHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchHeader")
            .field("base_offset", &self.base_offset())
            .field("batch_bytes", &self.batch_bytes())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("record_count", &self.record_count())
            .field("max_timestamp", &self.max_timestamp())
            .field("producer_id", &self.producer_id())
            .finish()
    }
}

fn be_i64(b: &[u8], pos: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[pos..pos + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], pos: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[pos..pos + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([b[pos], b[pos + 1]])
}

impl<'a> BatchHeader<'a> {
    /// Reads a header without checking the CRC or that the whole batch is present: for
    /// walking batch boundaries in a file already validated.
    pub fn peek(bytes: &'a [u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::TooShort { len: bytes.len() });
        }
        let header = BatchHeader { bytes };
        if header.magic() != 2 {
            return Err(BatchError::BadMagic {
                magic: header.magic(),
            });
        }
        let length = header.length_field();
        if (length as i64) < (BATCH_HEADER_BYTES - LOG_OVERHEAD) as i64 {
            return Err(BatchError::LengthMismatch {
                declared: length as i64,
                available: bytes.len() - LOG_OVERHEAD,
            });
        }
        Ok(header)
    }

    /// Parses and fully validates the batch at the start of `bytes`: length, magic, CRC and
    /// the consistency of count and offset fields. `bytes` may hold more after the batch.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        Self::parse_checking(bytes, true)
    }

    /// [`parse`](Self::parse), without computing the CRC unless `check_crc`.
    fn parse_checking(bytes: &'a [u8], check_crc: bool) -> Result<Self, BatchError> {
        let header = Self::peek(bytes)?;
        let total = header.batch_bytes();
        if total > bytes.len() {
            return Err(BatchError::LengthMismatch {
                declared: header.length_field() as i64,
                available: bytes.len() - LOG_OVERHEAD,
            });
        }
        if check_crc {
            let stored = header.crc();
            let computed = crc32c::crc32c(&bytes[ATTRIBUTES_POS..total]);
            if stored != computed {
                return Err(BatchError::CrcMismatch { stored, computed });
            }
        }
        let header = BatchHeader {
            bytes: &bytes[..total],
        };
        header.check_fields()?;
        Ok(header)
    }

    fn check_fields(&self) -> Result<(), BatchError> {
        let count = self.record_count();
        let delta = self.last_offset_delta();
        if count < 0 {
            return Err(BatchError::BadHeader("negative record count"));
        }
        if delta < 0 {
            return Err(BatchError::BadHeader("negative last offset delta"));
        }
        // Compaction can remove records from a batch, so count may be below delta + 1,
        // never above it.
        if i64::from(count) > i64::from(delta) + 1 {
            return Err(BatchError::BadHeader(
                "record count exceeds last offset delta + 1",
            ));
        }
        let payload = self.batch_bytes() - BATCH_HEADER_BYTES;
        let codec = self.attributes().compression_id();
        if codec > 4 {
            return Err(BatchError::UnknownCompression(codec));
        }
        if codec == 0 && (count as usize).saturating_mul(MIN_RECORD_BYTES) > payload {
            return Err(BatchError::BadHeader(
                "record count larger than the records section can hold",
            ));
        }
        if count == 0 && !self.attributes().control() {
            return Err(BatchError::BadHeader("batch holds no records"));
        }
        Ok(())
    }

    /// The length field: bytes following it.
    fn length_field(&self) -> i32 {
        be_i32(self.bytes, 8)
    }
    /// Total size of the batch in bytes, including offset and length fields.
    pub fn batch_bytes(&self) -> usize {
        LOG_OVERHEAD + self.length_field().max(0) as usize
    }
    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, 0)
    }
    /// Offset of the last record (base + last offset delta).
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }
    /// Offset delta of the last record.
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, LAST_OFFSET_DELTA_POS)
    }
    /// Leader epoch stamped at append.
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, 12)
    }
    /// Magic byte (2 for every batch the log accepts).
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_POS] as i8
    }
    /// Stored CRC32C.
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, CRC_POS) as u32
    }
    /// Attribute bits.
    pub fn attributes(&self) -> RecordBatchAttributes {
        RecordBatchAttributes(be_i16(self.bytes, ATTRIBUTES_POS))
    }
    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, BASE_TIMESTAMP_POS)
    }
    /// Largest timestamp in the batch.
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, MAX_TIMESTAMP_POS)
    }
    /// Producer id, or -1.
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, PRODUCER_ID_POS)
    }
    /// Producer epoch, or -1.
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, PRODUCER_EPOCH_POS)
    }
    /// Sequence of the first record, or -1.
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, BASE_SEQUENCE_POS)
    }
    /// Sequence of the last record (wrapping as Kafka does).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence() < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence()) + i64::from(self.last_offset_delta());
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
    /// Number of records in the batch.
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, RECORD_COUNT_POS)
    }
    /// Whether the batch came from an idempotent (or transactional) producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id() >= 0
    }
}

/// Sets the base offset of the batch at the start of `bytes` (bytes 0..8, outside the CRC).
pub(crate) fn set_base_offset(bytes: &mut [u8], offset: i64) {
    bytes[0..8].copy_from_slice(&offset.to_be_bytes());
}

/// Stamps log-append time on a batch: sets the timestamp-type bit and the max timestamp,
/// then recomputes the CRC, as Kafka does for `message.timestamp.type=LogAppendTime`.
pub(crate) fn set_log_append_time(bytes: &mut [u8], now_ms: i64) {
    let attributes = be_i16(bytes, ATTRIBUTES_POS) | (1 << 3);
    bytes[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES_POS..]);
    bytes[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Makes a re-encoded batch (compaction dropped some of its records) keep the original
/// batch's offset and sequence span: the last offset delta is widened so the batch still
/// ends at `original_last_offset`, and a log-append-time batch keeps its timestamp type and
/// max timestamp. The CRC is recomputed. Idempotent-producer state rebuilt from the log
/// then sees the same last sequence as before compaction.
pub(crate) fn restore_span(
    bytes: &mut [u8],
    original_last_offset: i64,
    log_append_time: Option<i64>,
) {
    let base = be_i64(bytes, 0);
    let delta = (original_last_offset - base).clamp(0, i64::from(i32::MAX)) as i32;
    bytes[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4].copy_from_slice(&delta.to_be_bytes());
    if let Some(max_ts) = log_append_time {
        let attributes = be_i16(bytes, ATTRIBUTES_POS) | (1 << 3);
        bytes[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
        bytes[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&max_ts.to_be_bytes());
    }
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES_POS..]);
    bytes[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Walks the batches in a buffer of whole batches, validating each.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    position: usize,
    check_crc: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates over the batches in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        BatchIter {
            bytes,
            position: 0,
            check_crc: true,
        }
    }

    /// Iterates over batches this process has just encoded: every check but the CRC's,
    /// which the encoder computed over these very bytes.
    pub(crate) fn built(bytes: &'a [u8]) -> Self {
        BatchIter {
            bytes,
            position: 0,
            check_crc: false,
        }
    }
    /// Byte position of the next batch within the buffer.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(usize, BatchHeader<'a>), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.position..)?;
        if rest.is_empty() {
            return None;
        }
        let start = self.position;
        match BatchHeader::parse_checking(rest, self.check_crc) {
            Ok(header) => {
                self.position += header.batch_bytes();
                Some(Ok((start, header)))
            }
            Err(e) => {
                self.position = self.bytes.len();
                Some(Err(e))
            }
        }
    }
}
