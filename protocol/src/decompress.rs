//! Decompressing a batch's records with a bound on the output, so that a few kilobytes
//! built to inflate to gigabytes (a decompression bomb) are refused instead of filling
//! memory. The formats are Kafka's: gzip (concatenated members too), snappy in
//! snappy-java's framing or raw, the LZ4 frame format, and zstd.

use std::io::Read;

use bytes::Bytes;

use crate::batch::Compression;

/// The most a batch's records may inflate to: far above what any producer's batch holds.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

/// snappy-java's stream header, which Kafka's Java clients write before snappy blocks.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Why records do not decompress.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The data is not valid for its codec.
    #[error("cannot decompress {codec:?} records: {reason}")]
    Corrupt { codec: Compression, reason: String },
    /// The records inflate past the limit.
    #[error("{codec:?} records inflate past {limit} bytes")]
    TooLarge { codec: Compression, limit: usize },
}

/// Decompresses `body` with `codec`, refusing output beyond `limit` bytes.
pub fn decompress(
    codec: Compression,
    body: &Bytes,
    limit: usize,
) -> Result<Bytes, DecompressError> {
    let corrupt = |reason: String| DecompressError::Corrupt { codec, reason };
    let read_bounded = |reader: &mut dyn Read| -> Result<Bytes, DecompressError> {
        let mut out = Vec::new();
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| corrupt(e.to_string()))?;
        if out.len() > limit {
            return Err(DecompressError::TooLarge { codec, limit });
        }
        Ok(Bytes::from(out))
    };
    match codec {
        Compression::None => Ok(body.clone()),
        Compression::Gzip => read_bounded(&mut flate2::read::MultiGzDecoder::new(&body[..])),
        Compression::Zstd => {
            let mut d =
                zstd::stream::read::Decoder::new(&body[..]).map_err(|e| corrupt(e.to_string()))?;
            read_bounded(&mut d)
        }
        Compression::Lz4 => {
            let mut d = lz4::Decoder::new(&body[..]).map_err(|e| corrupt(e.to_string()))?;
            read_bounded(&mut d)
        }
        Compression::Snappy => {
            if body.len() >= XERIAL_HEADER_LEN && body.starts_with(XERIAL_MAGIC) {
                let mut out = Vec::new();
                let mut rest = &body[XERIAL_HEADER_LEN..];
                while !rest.is_empty() {
                    let (len, tail) = rest
                        .split_first_chunk::<4>()
                        .ok_or_else(|| corrupt("a snappy block length is cut short".into()))?;
                    let len = u32::from_be_bytes(*len) as usize;
                    let block = tail
                        .get(..len)
                        .ok_or_else(|| corrupt("a snappy block is cut short".into()))?;
                    snappy_into(block, &mut out, limit)?;
                    rest = &tail[len..];
                }
                Ok(Bytes::from(out))
            } else {
                let mut out = Vec::new();
                snappy_into(body, &mut out, limit)?;
                Ok(Bytes::from(out))
            }
        }
    }
}

/// Appends one raw snappy block to `out`; the block states its length first, which is
/// checked against the limit before anything is allocated.
fn snappy_into(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecompressError> {
    let corrupt = |reason: String| DecompressError::Corrupt {
        codec: Compression::Snappy,
        reason,
    };
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(e.to_string()))?;
    if out.len().saturating_add(len) > limit {
        return Err(DecompressError::TooLarge {
            codec: Compression::Snappy,
            limit,
        });
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    fn compressed(codec: Compression, raw: &[u8]) -> Bytes {
        let mut out = bytes::BytesMut::new();
        let fill = |b: &mut bytes::BytesMut| -> anyhow::Result<()> {
            b.extend_from_slice(raw);
            Ok(())
        };
        match codec {
            Compression::Gzip => <Gzip as Compressor<bytes::BytesMut>>::compress(&mut out, fill),
            Compression::Snappy => {
                <Snappy as Compressor<bytes::BytesMut>>::compress(&mut out, fill)
            }
            Compression::Lz4 => <Lz4 as Compressor<bytes::BytesMut>>::compress(&mut out, fill),
            Compression::Zstd => <Zstd as Compressor<bytes::BytesMut>>::compress(&mut out, fill),
            Compression::None => {
                out.extend_from_slice(raw);
                Ok(())
            }
        }
        .unwrap();
        out.freeze()
    }

    #[test]
    fn every_codec_round_trips_and_a_bomb_is_refused() {
        let raw: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let zeros = vec![0u8; 4 * 1024 * 1024];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let c = compressed(codec, &raw);
            assert_eq!(
                &decompress(codec, &c, 1 << 20).unwrap()[..],
                &raw[..],
                "{codec:?}"
            );
            // 4 MiB of zeros compresses to little; a 1 MiB limit refuses it.
            let bomb = compressed(codec, &zeros);
            assert!(
                matches!(
                    decompress(codec, &bomb, 1 << 20),
                    Err(DecompressError::TooLarge { .. })
                ),
                "{codec:?}"
            );
            assert!(decompress(codec, &Bytes::from_static(b"\x00garbage"), 1 << 20).is_err());
        }
        // Raw snappy without snappy-java's framing, as some clients send it.
        let mut raw_snappy = vec![0; snap::raw::max_compress_len(raw.len())];
        let n = snap::raw::Encoder::new()
            .compress(&raw, &mut raw_snappy)
            .unwrap();
        raw_snappy.truncate(n);
        let out = decompress(Compression::Snappy, &Bytes::from(raw_snappy), 1 << 20).unwrap();
        assert_eq!(&out[..], &raw[..]);
    }
}
