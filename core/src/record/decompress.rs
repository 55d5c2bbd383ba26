//! Decompression of a batch's records section with a bound on the output.
//!
//! The codecs' own headers carry the decompressed length (snappy) or let a few bytes
//! expand without limit (every codec): a hostile producer can make a 100-byte batch claim
//! gigabytes. Everything here stops at [`MAX_DECOMPRESSED_BATCH_BYTES`] and checks a
//! claimed length before allocating for it. (The `kafka-protocol` decompressors allocate
//! what the input claims, so the read path does not use them.)

use std::io::Read;

use super::Compression;

/// The most a single batch's records may decompress to (256 MiB). Kafka itself sets no
/// limit; a real batch of the default 1 MiB `max.message.bytes` would need a compression
/// ratio above 256 to reach it.
pub const MAX_DECOMPRESSED_BATCH_BYTES: usize = 256 << 20;

/// Kafka's snappy framing (xerial): magic, version 1, compatible version 1; then blocks of
/// a big-endian u32 length and a raw snappy block.
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Decompresses `input` with `codec`, failing rather than producing more than `limit`
/// bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, String> {
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(too_large(limit));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), limit, "gzip"),
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(input).map_err(|e| format!("lz4: {e}"))?;
            read_bounded(decoder, limit, "lz4")
        }
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(input).map_err(|e| format!("zstd: {e}"))?;
            read_bounded(decoder, limit, "zstd")
        }
        Compression::Snappy => snappy(input, limit),
    }
}

fn too_large(limit: usize) -> String {
    format!("records decompress to more than {limit} bytes")
}

fn read_bounded(reader: impl Read, limit: usize, codec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{codec}: {e}"))?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

fn snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let Some(mut rest) = input.strip_prefix(XERIAL_MAGIC.as_slice()) else {
        // No xerial header: a raw snappy block, as the Java client also accepts.
        let mut out = Vec::new();
        snappy_block(input, limit, &mut out)?;
        return Ok(out);
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("snappy: truncated block length")?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or("snappy: block runs past the end")?;
        snappy_block(block, limit, &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking its claimed length first.
fn snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let claimed = snap::raw::decompress_len(block).map_err(|e| format!("snappy: {e}"))?;
    if out.len().saturating_add(claimed) > limit {
        return Err(too_large(limit));
    }
    let start = out.len();
    out.resize(start + claimed, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| format!("snappy: {e}"))?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A raw snappy block whose header claims 2^32-1 bytes is refused before allocating.
    #[test]
    fn snappy_claims_are_checked_before_allocating() {
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let err = decompress(Compression::Snappy, &bomb, 1 << 20).unwrap_err();
        assert!(err.contains("more than"), "{err}");
    }

    // Output past the limit is an error for every streaming codec.
    #[test]
    fn streams_stop_at_the_limit() {
        let zeros = vec![0u8; 1 << 20];
        let gz = {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&zeros).unwrap();
            e.finish().unwrap()
        };
        assert!(decompress(Compression::Gzip, &gz, 1000).is_err());
        assert_eq!(
            decompress(Compression::Gzip, &gz, 1 << 20).unwrap().len(),
            1 << 20
        );
        let zs = zstd::encode_all(&zeros[..], 3).unwrap();
        assert!(decompress(Compression::Zstd, &zs, 1000).is_err());
        assert_eq!(
            decompress(Compression::Zstd, &zs, 1 << 20).unwrap().len(),
            1 << 20
        );
    }
}
