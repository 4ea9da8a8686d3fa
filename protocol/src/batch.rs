//! Views over magic v2 record batches as producers send them and segments store them.
//!
//! The broker reads only the fixed 61-byte header; records stay compressed and untouched.

use bytes::{Buf, Bytes};

/// Size of the fixed v2 batch header.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the `batchLength` field ends: base offset (8) and batch length (4).
pub const LOG_OVERHEAD: usize = 12;
pub(crate) const CRC_START: usize = 21;

/// Why bytes are not a valid record batch (answered as CORRUPT_MESSAGE, or
/// INVALID_RECORD / UNSUPPORTED_FOR_MESSAGE_FORMAT where Kafka distinguishes).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length.
    #[error("truncated record batch")]
    Truncated,
    /// The declared length is impossible.
    #[error("invalid batch length {0}")]
    BadLength(i32),
    /// Not a magic v2 batch.
    #[error("unsupported record batch magic {0}")]
    BadMagic(i8),
    /// The CRC-32C does not match.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The header's counts contradict each other.
    #[error("record batch header is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The records inside the batch do not decode (or do not compress).
    #[error("record batch records are malformed: {0}")]
    Records(String),
}

/// The compression codec in a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// snappy (xerial framing as Java writes it).
    Snappy,
    /// lz4 frame.
    Lz4,
    /// zstd.
    Zstd,
}

/// The decoded fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// CRC-32C of attributes onwards.
    pub crc: u32,
    /// Attribute bits: compression, timestamp type, transactional, control.
    pub attributes: i16,
    /// Offset of the last record relative to the base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Total size on the wire, header included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Sequence of the last record (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    /// The codec the records are compressed with; `None` for an unknown codec id.
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes & 0x07 {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// True when timestamps are LogAppendTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    /// True for a batch of a transactional producer.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// True for a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// True when the batch carries an idempotent producer id.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Reads the fixed header without checking the CRC; `buf` must hold at least
/// [`HEADER_SIZE`] bytes.
pub fn read_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < HEADER_SIZE {
        return Err(BatchError::Truncated);
    }
    let mut b = &buf[..HEADER_SIZE];
    let base_offset = b.get_i64();
    let batch_length = b.get_i32();
    let partition_leader_epoch = b.get_i32();
    let magic = b.get_i8();
    if magic != 2 {
        return Err(BatchError::BadMagic(magic));
    }
    if (batch_length as i64) < (HEADER_SIZE - LOG_OVERHEAD) as i64 {
        return Err(BatchError::BadLength(batch_length));
    }
    let crc = b.get_u32();
    let header = BatchHeader {
        base_offset,
        batch_length,
        partition_leader_epoch,
        crc,
        attributes: b.get_i16(),
        last_offset_delta: b.get_i32(),
        base_timestamp: b.get_i64(),
        max_timestamp: b.get_i64(),
        producer_id: b.get_i64(),
        producer_epoch: b.get_i16(),
        base_sequence: b.get_i32(),
        records_count: b.get_i32(),
    };
    Ok(header)
}

/// Reads and fully validates the batch at the front of `buf`: header, length, and CRC.
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = read_header(buf)?;
    if buf.len() < header.size() {
        return Err(BatchError::Truncated);
    }
    let computed = crc32c::crc32c(&buf[CRC_START..header.size()]);
    if computed != header.crc {
        return Err(BatchError::BadCrc {
            stored: header.crc,
            computed,
        });
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::Inconsistent("negative last offset delta"));
    }
    if header.records_count < 0 || (header.records_count == 0 && !header.is_control()) {
        return Err(BatchError::Inconsistent("batch without records"));
    }
    if header.compression().is_none() {
        return Err(BatchError::Inconsistent("unknown compression codec"));
    }
    Ok(header)
}

/// Splits a produce request's record set into validated batches. A trailing partial batch
/// is an error: Kafka rejects a produce request that does not end on a batch boundary.
pub fn split_batches(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let header = validate(&records[pos..])?;
        let end = pos + header.size();
        out.push((header, records.slice(pos..end)));
        pos = end;
    }
    Ok(out)
}

/// Stamps a batch with the broker's time (`message.timestamp.type=LogAppendTime`): sets
/// the timestamp-type bit and the max timestamp, which consumers then use for every
/// record, and recomputes the CRC, which covers both.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | 0x08;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let end = (LOG_OVERHEAD
        + i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]) as usize)
        .min(batch.len());
    let crc = crc32c::crc32c(&batch[CRC_START..end]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The smallest record timestamp of a batch (decompressing it if needed), as the
/// `message.timestamp.before.max.ms` check needs; `None` if the records do not decode.
pub fn min_record_timestamp(batch: &Bytes) -> Option<i64> {
    let mut buf = batch.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().map(|r| r.timestamp).min()
}

/// Attribute bits of a transaction marker: transactional (0x10) and control (0x20).
const CONTROL_ATTRIBUTES: i16 = 0x30;

/// The kind of a transaction marker, as the control record's key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// ABORT marker (type 0).
    Abort,
    /// COMMIT marker (type 1).
    Commit,
}

impl ControlType {
    fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }
}

/// Builds an uncompressed control batch holding one transaction marker, as Kafka's
/// `writeEndTransactionalMarker` does: base offset 0 (the log assigns it), base
/// sequence -1, key `(version 0, type)`, value `(version 0, coordinator epoch)`.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    control: ControlType,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&control.code().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());

    let mut record = Vec::with_capacity(16);
    record.push(0); // record attributes
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, 0); // offset delta
    put_varint(&mut record, key.len() as i64);
    record.extend_from_slice(&key);
    put_varint(&mut record, value.len() as i64);
    record.extend_from_slice(&value);
    put_varint(&mut record, 0); // header count

    let mut buf = Vec::with_capacity(HEADER_SIZE + record.len() + 2);
    buf.extend_from_slice(&0i64.to_be_bytes()); // base offset
    buf.extend_from_slice(&0i32.to_be_bytes()); // batch length, filled below
    buf.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    buf.push(2); // magic
    buf.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    buf.extend_from_slice(&CONTROL_ATTRIBUTES.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    buf.extend_from_slice(&timestamp.to_be_bytes()); // base timestamp
    buf.extend_from_slice(&timestamp.to_be_bytes()); // max timestamp
    buf.extend_from_slice(&producer_id.to_be_bytes());
    buf.extend_from_slice(&producer_epoch.to_be_bytes());
    buf.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    buf.extend_from_slice(&1i32.to_be_bytes()); // records count
    put_varint(&mut buf, record.len() as i64);
    buf.extend_from_slice(&record);

    let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
    buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(buf)
}

/// The marker type of a control batch (whole batch bytes); `None` when the batch is not
/// a control batch or its record is not a transaction marker.
pub fn control_type(batch: &[u8]) -> Option<ControlType> {
    let header = read_header(batch).ok()?;
    if !header.is_control() || header.compression() != Some(Compression::None) {
        return None;
    }
    let mut rest = batch.get(HEADER_SIZE..header.size())?;
    let _record_len = get_varint(&mut rest)?;
    rest = rest.get(1..)?; // record attributes
    get_varint(&mut rest)?; // timestamp delta
    get_varint(&mut rest)?; // offset delta
    let key_len = usize::try_from(get_varint(&mut rest)?).ok()?;
    let key = rest.get(..key_len)?;
    match i16::from_be_bytes(key.get(2..4)?.try_into().ok()?) {
        0 => Some(ControlType::Abort),
        1 => Some(ControlType::Commit),
        _ => None,
    }
}

/// The marker type and coordinator epoch of a control batch (whole batch bytes); `None`
/// when the batch is not a transaction marker. A value too short to hold the epoch gives
/// -1, as a marker without one is still a marker.
pub fn control_marker(batch: &[u8]) -> Option<(ControlType, i32)> {
    let control = control_type(batch)?;
    let header = read_header(batch).ok()?;
    let epoch = (|| {
        let mut rest = batch.get(HEADER_SIZE..header.size())?;
        get_varint(&mut rest)?; // record length
        rest = rest.get(1..)?; // record attributes
        get_varint(&mut rest)?; // timestamp delta
        get_varint(&mut rest)?; // offset delta
        let key_len = usize::try_from(get_varint(&mut rest)?).ok()?;
        rest = rest.get(key_len..)?;
        let value_len = usize::try_from(get_varint(&mut rest)?).ok()?;
        let value = rest.get(..value_len)?;
        Some(i32::from_be_bytes(value.get(2..6)?.try_into().ok()?))
    })()
    .unwrap_or(-1);
    Some((control, epoch))
}

/// Appends a zig-zag varint, the record format's integer encoding.
pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Reads a zig-zag varint from the front of `buf`.
pub(crate) fn get_varint(buf: &mut &[u8]) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Writes the base offset into a batch in place; the CRC does not cover it.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch in place; the CRC does not cover it.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression as KCompression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// A batch written by the kafka-protocol crate's encoder, as a producer would send it.
    fn sample_batch(records: i64) -> Bytes {
        let recs: Vec<Record> = (0..records)
            .map(|i| Record {
                transactional: false,
                delete_horizon: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 1_000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression: KCompression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &recs, &opts).unwrap();
        buf.freeze()
    }

    #[test]
    fn reads_header_fields() {
        let b = sample_batch(3);
        let h = validate(&b).unwrap();
        assert_eq!(h.size(), b.len());
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.producer_id, 7);
        assert_eq!(h.base_sequence, 0);
        assert_eq!(h.last_sequence(), 2);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(h.compression(), Some(Compression::None));
    }

    #[test]
    fn base_offset_rewrite_keeps_crc_valid() {
        let mut b = BytesMut::from(&sample_batch(2)[..]);
        set_base_offset(&mut b, 42);
        set_partition_leader_epoch(&mut b, 3);
        let h = validate(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 43);
        assert_eq!(h.partition_leader_epoch, 3);
    }

    #[test]
    fn corrupt_batches_are_rejected() {
        let good = sample_batch(2);
        let mut flipped = BytesMut::from(&good[..]);
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(validate(&flipped), Err(BatchError::BadCrc { .. })));
        assert_eq!(
            validate(&good[..good.len() - 1]),
            Err(BatchError::Truncated)
        );
        assert_eq!(validate(&good[..30]), Err(BatchError::Truncated));
        let mut magic = BytesMut::from(&good[..]);
        magic[16] = 1;
        assert_eq!(validate(&magic), Err(BatchError::BadMagic(1)));
    }

    #[test]
    fn log_append_time_rewrites_the_max_timestamp_and_the_crc() {
        use kafka_protocol::records::{RecordBatchDecoder, TimestampType as KTimestampType};
        let mut b = BytesMut::from(&sample_batch(3)[..]);
        set_log_append_time(&mut b, 1_234_567);
        let h = validate(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 1_234_567);
        let mut bytes = b.freeze();
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        // Clients take every record's time from the max timestamp once the type bit is set.
        assert!(set
            .records
            .iter()
            .all(|r| r.timestamp_type == KTimestampType::LogAppend));
    }

    #[test]
    fn min_record_timestamp_reads_every_record() {
        assert_eq!(min_record_timestamp(&sample_batch(3)), Some(1_000));
        assert_eq!(min_record_timestamp(&Bytes::from_static(b"nonsense")), None);
    }

    #[test]
    fn control_batches_decode_as_kafka_markers() {
        use kafka_protocol::records::RecordBatchDecoder;
        for (control, code) in [(ControlType::Abort, 0i16), (ControlType::Commit, 1)] {
            let b = control_batch(42, 3, control, 7, 1_700_000_000_000);
            let h = validate(&b).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (42, 3, -1)
            );
            assert_eq!((h.records_count, h.last_offset_delta), (1, 0));
            assert_eq!(control_type(&b), Some(control));
            assert_eq!(control_marker(&b), Some((control, 7)));
            // The kafka-protocol crate (a client-side decoder) reads the same record.
            let mut bytes = b.clone();
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            let r = &set.records[0];
            assert!(r.control && r.transactional);
            assert_eq!(r.timestamp, 1_700_000_000_000);
            let key = r.key.as_ref().unwrap();
            assert_eq!(&key[..], &[0, 0, 0, code as u8]);
            assert_eq!(&r.value.as_ref().unwrap()[..], &[0, 0, 0, 0, 0, 7]);
        }
        assert_eq!(control_type(&sample_batch(1)), None);
        assert_eq!(control_marker(&sample_batch(1)), None);
    }

    #[test]
    fn split_batches_walks_concatenated_batches() {
        let mut both = BytesMut::from(&sample_batch(1)[..]);
        both.extend_from_slice(&sample_batch(4));
        let batches = split_batches(&both.freeze()).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].0.records_count, 4);
    }
}
