//! Records inside a v2 batch, for the few places a broker must look inside one: the key
//! check of compacted topics, recompression for `compression.type`, and the log cleaner.
//!
//! A record keeps its headers as stored (duplicate keys, non-UTF-8 keys and all), so a
//! batch re-encoded from its records differs from the original only where the caller
//! changed something.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{
    self, get_varint, put_varint, BatchError, BatchHeader, Compression, CRC_START, HEADER_SIZE,
    LOG_OVERHEAD,
};

/// Attribute bit of a batch whose base timestamp holds the delete horizon (KIP-534): the
/// time after which the cleaner may drop its tombstones.
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record attributes (unused by Kafka so far, kept as stored).
    pub attributes: i8,
    /// Absolute timestamp (base timestamp plus the stored delta).
    pub timestamp: i64,
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// The header count and the headers, exactly as stored.
    pub headers: Bytes,
}

impl Compression {
    /// The codec's attribute bits.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

impl BatchHeader {
    /// True when the base timestamp is the delete horizon (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }
}

/// Validates a whole batch and decodes its records, decompressing them if needed.
pub fn decode_records(batch: &Bytes) -> Result<(BatchHeader, Vec<Record>), BatchError> {
    let header = batch::validate(batch)?;
    let codec = header
        .compression()
        .ok_or(BatchError::Inconsistent("unknown compression codec"))?;
    let data = decompress(codec, batch.slice(HEADER_SIZE..header.size()))?;
    let mut cursor = Cursor {
        data: &data,
        pos: 0,
    };
    // The count comes from the client: never let it size an allocation on its own.
    let mut records = Vec::with_capacity((header.records_count.max(0) as usize).min(4096));
    for _ in 0..header.records_count {
        records.push(decode_record(&mut cursor, header.base_timestamp)?);
    }
    if cursor.pos != data.len() {
        return Err(records_error("bytes left after the last record"));
    }
    Ok((header, records))
}

/// Encodes a batch from `header` and `records`: base offset, leader epoch, attributes
/// (whose codec bits choose the compression), last offset delta, base timestamp, max
/// timestamp and producer fields come from `header`; the length, record count and CRC are
/// computed. Record timestamps are written relative to the header's base timestamp.
pub fn encode_batch(header: &BatchHeader, records: &[Record]) -> Result<Vec<u8>, BatchError> {
    let mut raw = Vec::new();
    let mut rec = Vec::new();
    for r in records {
        rec.clear();
        rec.push(r.attributes as u8);
        put_varint(&mut rec, r.timestamp.wrapping_sub(header.base_timestamp));
        put_varint(&mut rec, i64::from(r.offset_delta));
        put_bytes(&mut rec, r.key.as_deref());
        put_bytes(&mut rec, r.value.as_deref());
        rec.extend_from_slice(&r.headers);
        put_varint(&mut raw, rec.len() as i64);
        raw.extend_from_slice(&rec);
    }
    let codec = header
        .compression()
        .ok_or(BatchError::Inconsistent("unknown compression codec"))?;
    let mut out = Vec::with_capacity(HEADER_SIZE + raw.len());
    out.extend_from_slice(&header.base_offset.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, filled below
    out.extend_from_slice(&header.partition_leader_epoch.to_be_bytes());
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    out.extend_from_slice(&header.attributes.to_be_bytes());
    out.extend_from_slice(&header.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&header.base_timestamp.to_be_bytes());
    out.extend_from_slice(&header.max_timestamp.to_be_bytes());
    out.extend_from_slice(&header.producer_id.to_be_bytes());
    out.extend_from_slice(&header.producer_epoch.to_be_bytes());
    out.extend_from_slice(&header.base_sequence.to_be_bytes());
    let count = i32::try_from(records.len()).map_err(|_| records_error("too many records"))?;
    out.extend_from_slice(&count.to_be_bytes());
    compress(codec, &raw, &mut out)?;
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .map_err(|_| records_error("batch larger than 2 GiB"))?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Encodes decoded records in another codec, keeping everything else of `header`.
pub fn encode_with_codec(
    header: &BatchHeader,
    records: &[Record],
    to: Compression,
) -> Result<Vec<u8>, BatchError> {
    let mut h = *header;
    h.attributes = (h.attributes & !0x07) | to.attribute_bits();
    encode_batch(&h, records)
}

fn records_error(what: &str) -> BatchError {
    BatchError::Records(what.to_string())
}

fn put_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.extend_from_slice(b);
        }
    }
}

/// Reads records out of decompressed batch data, slicing keys and values without copies.
struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl Cursor<'_> {
    fn varint(&mut self) -> Result<i64, BatchError> {
        let mut rest = self
            .data
            .get(self.pos..)
            .ok_or_else(|| records_error("truncated record"))?;
        let before = rest.len();
        let v = get_varint(&mut rest).ok_or_else(|| records_error("truncated varint"))?;
        self.pos += before - rest.len();
        Ok(v)
    }

    fn take(&mut self, len: usize) -> Result<Bytes, BatchError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| records_error("truncated record"))?;
        let out = self.data.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    fn nullable(&mut self, end: usize) -> Result<Option<Bytes>, BatchError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < -1 => Err(records_error("negative length")),
            n => {
                let n = usize::try_from(n).map_err(|_| records_error("length too large"))?;
                if self.pos.saturating_add(n) > end {
                    return Err(records_error("field runs past its record"));
                }
                self.take(n).map(Some)
            }
        }
    }
}

fn decode_record(c: &mut Cursor<'_>, base_timestamp: i64) -> Result<Record, BatchError> {
    let len = usize::try_from(c.varint()?).map_err(|_| records_error("negative record length"))?;
    let end = c
        .pos
        .checked_add(len)
        .filter(|e| *e <= c.data.len())
        .ok_or_else(|| records_error("record runs past the batch"))?;
    let attributes = c.take(1)?[0] as i8;
    let timestamp = base_timestamp.wrapping_add(c.varint()?);
    let offset_delta =
        i32::try_from(c.varint()?).map_err(|_| records_error("offset delta out of range"))?;
    let key = c.nullable(end)?;
    let value = c.nullable(end)?;
    if c.pos > end {
        return Err(records_error("record runs past its length"));
    }
    let headers = c.take(end - c.pos)?;
    let mut h: &[u8] = &headers;
    match get_varint(&mut h) {
        Some(n) if n >= 0 => {}
        _ => return Err(records_error("bad header count")),
    }
    Ok(Record {
        attributes,
        timestamp,
        offset_delta,
        key,
        value,
        headers,
    })
}

fn decompress(codec: Compression, body: Bytes) -> Result<Bytes, BatchError> {
    crate::decompress::decompress(codec, &body, crate::decompress::MAX_DECOMPRESSED_BYTES)
        .map_err(|e| BatchError::Records(e.to_string()))
}

fn compress(codec: Compression, raw: &[u8], out: &mut Vec<u8>) -> Result<(), BatchError> {
    let fill = |b: &mut BytesMut| -> anyhow::Result<()> {
        b.extend_from_slice(raw);
        Ok(())
    };
    let done = match codec {
        Compression::None => {
            out.extend_from_slice(raw);
            return Ok(());
        }
        Compression::Gzip => <Gzip as Compressor<Vec<u8>>>::compress(out, fill),
        Compression::Snappy => <Snappy as Compressor<Vec<u8>>>::compress(out, fill),
        Compression::Lz4 => <Lz4 as Compressor<Vec<u8>>>::compress(out, fill),
        Compression::Zstd => <Zstd as Compressor<Vec<u8>>>::compress(out, fill),
    };
    done.map_err(|e| BatchError::Records(format!("cannot compress: {e}")))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType,
    };

    use super::*;

    fn kp_batch(codec: KpCompression) -> Bytes {
        let mut headers = IndexMap::new();
        headers.insert(
            StrBytes::from_static_str("h"),
            Some(Bytes::from_static(b"v")),
        );
        let records: Vec<KpRecord> = (0..5)
            .map(|i| KpRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: 100 + i,
                sequence: i as i32,
                timestamp: 1_000 + i * 10,
                key: Some(Bytes::from(format!("k{}", i % 2))),
                value: (i != 3).then(|| Bytes::from(format!("value-{i}").repeat(20))),
                headers: headers.clone(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: codec,
            },
        )
        .unwrap();
        buf.freeze()
    }

    fn kp_decode(batch: &[u8]) -> Vec<KpRecord> {
        let mut b = Bytes::copy_from_slice(batch);
        RecordBatchDecoder::decode(&mut b).unwrap().records
    }

    #[test]
    fn every_codec_round_trips_through_the_kafka_protocol_decoder() {
        for codec in [
            KpCompression::None,
            KpCompression::Gzip,
            KpCompression::Snappy,
            KpCompression::Lz4,
            KpCompression::Zstd,
        ] {
            let original = kp_batch(codec);
            let (header, records) = decode_records(&original).unwrap();
            assert_eq!(records.len(), 5);
            assert_eq!(records[3].value, None);
            assert_eq!(records[4].timestamp, 1_040);
            let again = encode_batch(&header, &records).unwrap();
            assert_eq!(kp_decode(&again), kp_decode(&original), "{codec:?}");
            let (_, back) = decode_records(&Bytes::from(again)).unwrap();
            assert_eq!(back, records);
        }
    }

    #[test]
    fn recompression_changes_only_the_codec() {
        let original = kp_batch(KpCompression::None);
        let (header, records) = decode_records(&original).unwrap();
        let zstd = encode_with_codec(&header, &records, Compression::Zstd).unwrap();
        let header = batch::validate(&zstd).unwrap();
        assert_eq!(header.compression(), Some(Compression::Zstd));
        assert!(zstd.len() < original.len());
        assert_eq!(kp_decode(&zstd), kp_decode(&original));
    }

    #[test]
    fn duplicate_and_binary_header_keys_survive() {
        // Two headers with the same key, one of them not UTF-8: a map would lose one.
        let mut headers = Vec::new();
        put_varint(&mut headers, 2);
        for (k, v) in [(&b"a"[..], &b"1"[..]), (&b"a\xff"[..], &b"2"[..])] {
            put_varint(&mut headers, k.len() as i64);
            headers.extend_from_slice(k);
            put_varint(&mut headers, v.len() as i64);
            headers.extend_from_slice(v);
        }
        let original = kp_batch(KpCompression::Lz4);
        let (header, mut records) = decode_records(&original).unwrap();
        records[0].headers = Bytes::from(headers);
        let encoded = Bytes::from(encode_batch(&header, &records).unwrap());
        let (_, back) = decode_records(&encoded).unwrap();
        assert_eq!(back, records);
    }

    #[test]
    fn a_delete_horizon_keeps_record_timestamps() {
        let (mut header, records) = decode_records(&kp_batch(KpCompression::Gzip)).unwrap();
        header.attributes |= DELETE_HORIZON_BIT;
        header.base_timestamp = 99_999_999;
        let encoded = Bytes::from(encode_batch(&header, &records).unwrap());
        let (h, back) = decode_records(&encoded).unwrap();
        assert!(h.has_delete_horizon());
        assert_eq!(h.base_timestamp, 99_999_999);
        let times: Vec<i64> = back.iter().map(|r| r.timestamp).collect();
        assert_eq!(times, vec![1_000, 1_010, 1_020, 1_030, 1_040]);
        assert_eq!(
            kp_decode(&encoded)
                .iter()
                .map(|r| r.timestamp)
                .collect::<Vec<_>>(),
            times
        );
    }

    #[test]
    fn keyless_records_are_found() {
        let keyless = |b: &Bytes| decode_records(b).unwrap().1.iter().any(|r| r.key.is_none());
        let batch = kp_batch(KpCompression::Snappy);
        assert!(!keyless(&batch));
        let (header, mut records) = decode_records(&batch).unwrap();
        records[2].key = None;
        let encoded = Bytes::from(encode_batch(&header, &records).unwrap());
        assert!(keyless(&encoded));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let batch = kp_batch(KpCompression::None);
        let (header, records) = decode_records(&batch).unwrap();
        // Claim one record more than the data holds.
        let mut h = header;
        h.last_offset_delta = 4;
        let mut bytes = encode_batch(&h, &records[..4]).unwrap();
        bytes[57..61].copy_from_slice(&5i32.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode_records(&Bytes::from(bytes)),
            Err(BatchError::Records(_))
        ));
    }
}
