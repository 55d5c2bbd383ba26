//! Record batches: Kafka RecordBatch v2 (magic 2), the unit the log stores and serves.
//!
//! The log never re-encodes a batch on the append path: it validates the header and CRC
//! ([`BatchHeader::parse`]), writes the base offset into bytes 0..8 (outside the CRC) and
//! stores the bytes as received. Building and decoding batches goes through the
//! `kafka-protocol` crate's codec ([`encode_batch`], [`decode_batch`]).
//!
//! The byte layout is drawn in `docs/format.md`.

mod batch;
mod codec;
mod decode;
mod decompress;
mod encode;
mod partitioner;

pub use batch::{BATCH_HEADER_BYTES, BatchError, BatchHeader, BatchIter, RecordBatchAttributes};
pub(crate) use batch::{restore_span, set_base_offset, set_log_append_time};
pub(crate) use codec::encode_marker;
pub use codec::{Compression, Header, ProducerStamp, Record, TimestampType, encode_batch};
pub(crate) use decode::visit_batch_section;
pub use decode::{RecordRef, decode_batch, visit_batch};
pub use decompress::MAX_DECOMPRESSED_BATCH_BYTES;
pub use encode::{BatchBuilder, put_varlong, put_varlong_at, varlong_len};
pub use partitioner::{murmur2, partition_for_key};
