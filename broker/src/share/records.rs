//! The records of `__share_group_state`, in Kafka's share coordinator schemas:
//! `ShareSnapshotKey` (record type 0: group id, topic id, partition) and
//! `ShareSnapshotValue` v0 (flexible: snapshot epoch, state epoch, leader epoch, start
//! offset and the state batches). Each write is a whole snapshot of a share-partition, so
//! compaction keeps the last one; a null value is a tombstone.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Why a record of the topic could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable __share_group_state record: {0}")]
pub(crate) struct RecordError(&'static str);

/// `ShareSnapshotKey`'s record type.
const SNAPSHOT_KEY_TYPE: i16 = 0;
/// `ShareSnapshotValue`'s version.
const SNAPSHOT_VALUE_VERSION: i16 = 0;

/// A share-partition as a share coordinator knows it: group, topic id, partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ShareKey {
    pub(crate) group: String,
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
}

impl ShareKey {
    /// Kafka's `SharePartitionKey` string, which places the key in a partition of the topic.
    pub(crate) fn coordinator_key(&self) -> String {
        format!("{}:{}:{}", self.group, self.topic_id, self.partition)
    }
}

/// Offsets in one delivery state, with their delivery count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateBatch {
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    /// 0 available, 2 acknowledged, 4 archived (acquired is never written).
    pub(crate) delivery_state: i8,
    pub(crate) delivery_count: i16,
}

/// The durable state of one share-partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShareState {
    /// Bumped when the state is reset (offsets altered or deleted).
    pub(crate) state_epoch: i32,
    pub(crate) leader_epoch: i32,
    /// The share-partition start offset; -1 before the group first read the partition.
    pub(crate) start_offset: i64,
    pub(crate) batches: Vec<StateBatch>,
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn get_uvarint(b: &mut &[u8]) -> Result<u64, RecordError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if b.is_empty() {
            return Err(RecordError("short varint"));
        }
        let byte = b.get_u8();
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(RecordError("varint too long"))
}

fn need(b: &[u8], n: usize) -> Result<(), RecordError> {
    if b.len() < n {
        Err(RecordError("short record"))
    } else {
        Ok(())
    }
}

fn skip_tagged(b: &mut &[u8]) -> Result<(), RecordError> {
    for _ in 0..get_uvarint(b)? {
        get_uvarint(b)?;
        let size = get_uvarint(b)? as usize;
        need(b, size)?;
        b.advance(size);
    }
    Ok(())
}

/// The key of a share-partition's record.
pub(crate) fn key(k: &ShareKey) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(SNAPSHOT_KEY_TYPE);
    b.put_i16(k.group.len() as i16);
    b.put_slice(k.group.as_bytes());
    b.put_slice(k.topic_id.as_bytes());
    b.put_i32(k.partition);
    b.freeze()
}

/// Decodes a key; `None` for a record type this broker does not write (Kafka's
/// `ShareUpdate` deltas), which a load skips.
pub(crate) fn decode_key(mut b: &[u8]) -> Result<Option<ShareKey>, RecordError> {
    need(b, 4)?;
    if b.get_i16() != SNAPSHOT_KEY_TYPE {
        return Ok(None);
    }
    let len = usize::try_from(b.get_i16()).map_err(|_| RecordError("null group id"))?;
    need(b, len + 16 + 4)?;
    let group = String::from_utf8(b[..len].to_vec()).map_err(|_| RecordError("group id"))?;
    b.advance(len);
    let topic_id = Uuid::from_slice(&b[..16]).map_err(|_| RecordError("topic id"))?;
    b.advance(16);
    let partition = b.get_i32();
    Ok(Some(ShareKey {
        group,
        topic_id,
        partition,
    }))
}

/// The value of a share-partition's record.
pub(crate) fn value(s: &ShareState) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(SNAPSHOT_VALUE_VERSION);
    b.put_u16(0); // snapshot epoch
    b.put_i32(s.state_epoch);
    b.put_i32(s.leader_epoch);
    b.put_i64(s.start_offset);
    put_uvarint(&mut b, s.batches.len() as u64 + 1);
    for batch in &s.batches {
        b.put_i64(batch.first_offset);
        b.put_i64(batch.last_offset);
        b.put_i8(batch.delivery_state);
        b.put_i16(batch.delivery_count);
        put_uvarint(&mut b, 0);
    }
    put_uvarint(&mut b, 0);
    b.freeze()
}

/// Decodes a value; `None` for a tombstone.
pub(crate) fn decode_value(value: Option<&[u8]>) -> Result<Option<ShareState>, RecordError> {
    let Some(mut b) = value else {
        return Ok(None);
    };
    need(b, 2 + 2 + 4 + 4 + 8)?;
    if b.get_i16() != SNAPSHOT_VALUE_VERSION {
        return Err(RecordError("unknown value version"));
    }
    b.get_u16();
    let state_epoch = b.get_i32();
    let leader_epoch = b.get_i32();
    let start_offset = b.get_i64();
    let count = get_uvarint(&mut b)?
        .checked_sub(1)
        .ok_or(RecordError("null state batches"))? as usize;
    let mut batches = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        need(b, 8 + 8 + 1 + 2)?;
        batches.push(StateBatch {
            first_offset: b.get_i64(),
            last_offset: b.get_i64(),
            delivery_state: b.get_i8(),
            delivery_count: b.get_i16(),
        });
        skip_tagged(&mut b)?;
    }
    skip_tagged(&mut b)?;
    Ok(Some(ShareState {
        state_epoch,
        leader_epoch,
        start_offset,
        batches,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_in_kafkas_layout() {
        let k = ShareKey {
            group: "g".into(),
            topic_id: Uuid::from_u128(0x0102),
            partition: 3,
        };
        let kb = key(&k);
        let mut want = vec![0, 0, 0, 1, b'g'];
        want.extend(Uuid::from_u128(0x0102).as_bytes());
        want.extend(3i32.to_be_bytes());
        assert_eq!(&kb[..], &want[..]);
        assert_eq!(decode_key(&kb).unwrap(), Some(k));
        // A ShareUpdate key (type 1) is not ours.
        assert_eq!(decode_key(&[0, 1, 0, 0]).unwrap(), None);

        let s = ShareState {
            state_epoch: 1,
            leader_epoch: 0,
            start_offset: 10,
            batches: vec![StateBatch {
                first_offset: 12,
                last_offset: 14,
                delivery_state: 2,
                delivery_count: 1,
            }],
        };
        let v = value(&s);
        let mut want = vec![0, 0, 0, 0];
        want.extend(1i32.to_be_bytes());
        want.extend(0i32.to_be_bytes());
        want.extend(10i64.to_be_bytes());
        want.push(2);
        want.extend(12i64.to_be_bytes());
        want.extend(14i64.to_be_bytes());
        want.extend([2, 0, 1, 0, 0]);
        assert_eq!(&v[..], &want[..]);
        assert_eq!(decode_value(Some(&v)).unwrap(), Some(s));
        assert_eq!(decode_value(None).unwrap(), None);
        assert!(decode_value(Some(&v[..10])).is_err());
        assert_eq!(k_string(), "g:00000000-0000-0000-0000-000000000102:3");
    }

    fn k_string() -> String {
        ShareKey {
            group: "g".into(),
            topic_id: Uuid::from_u128(0x0102),
            partition: 3,
        }
        .coordinator_key()
    }
}
