//! The records of `__consumer_offsets`, in Kafka's own schemas, so that tools that read the
//! topic (Burrow, Kafka's `OffsetsMessageFormatter`) understand it:
//! `OffsetCommitKey` v1 and `OffsetCommitValue` v3, `GroupMetadataKey` v2 and
//! `GroupMetadataValue` v3. A null value is a tombstone.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sluice_storage::{CommittedOffset, GroupRecord, MemberRecord};

/// A decoded record of the group metadata topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupLogRecord {
    /// A committed offset, or its removal (`None`).
    Offset {
        /// The group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The committed offset; `None` for a tombstone.
        committed: Option<CommittedOffset>,
    },
    /// A group's generation, or the group's removal (`None`).
    Group {
        /// The group.
        group: String,
        /// The generation; `None` for a tombstone.
        record: Option<GroupRecord>,
    },
}

/// Why a record of the topic could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable __consumer_offsets record: {0}")]
pub(crate) struct RecordError(pub(super) &'static str);

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// The key of a committed offset.
pub(crate) fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(OFFSET_KEY_VERSION);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

/// The value of a committed offset.
pub(crate) fn offset_value(c: &CommittedOffset) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(OFFSET_VALUE_VERSION);
    b.put_i64(c.offset);
    b.put_i32(c.leader_epoch);
    put_str(&mut b, &c.metadata);
    b.put_i64(c.commit_timestamp);
    b.freeze()
}

/// The key of a group's metadata.
pub(crate) fn group_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(GROUP_KEY_VERSION);
    put_str(&mut b, group);
    b.freeze()
}

/// The value of a group's metadata. Kafka's protocol type is not nullable: a group without
/// one is written with an empty string and read back as `None`.
pub(crate) fn group_value(r: &GroupRecord) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut b, r.protocol_type.as_deref().unwrap_or(""));
    b.put_i32(r.generation);
    put_opt_str(&mut b, r.protocol.as_deref());
    put_opt_str(&mut b, r.leader.as_deref());
    b.put_i64(r.state_timestamp);
    b.put_i32(r.members.len() as i32);
    for m in &r.members {
        put_str(&mut b, &m.member_id);
        put_opt_str(&mut b, m.group_instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// Decodes a record; keys of versions this broker does not know (Kafka's newer record
/// types, such as those of consumer-protocol groups) are `Ok(None)` and skipped.
pub(crate) fn decode(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<Option<GroupLogRecord>, RecordError> {
    let mut k = key;
    let version = get_i16(&mut k)?;
    match version {
        0 | 1 => {
            let group = get_str(&mut k)?;
            let topic = get_str(&mut k)?;
            let partition = get_i32(&mut k)?;
            let committed = value.map(decode_offset).transpose()?;
            Ok(Some(GroupLogRecord::Offset {
                group,
                topic,
                partition,
                committed,
            }))
        }
        2 => {
            let group = get_str(&mut k)?;
            let record = value.map(decode_group).transpose()?;
            Ok(Some(GroupLogRecord::Group { group, record }))
        }
        _ => Ok(None),
    }
}

fn decode_offset(mut v: &[u8]) -> Result<CommittedOffset, RecordError> {
    let version = get_i16(&mut v)?;
    if !(0..=3).contains(&version) {
        return Err(RecordError("unknown OffsetCommitValue version"));
    }
    let offset = get_i64(&mut v)?;
    let leader_epoch = if version >= 3 { get_i32(&mut v)? } else { -1 };
    let metadata = get_str(&mut v)?;
    let commit_timestamp = get_i64(&mut v)?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

fn decode_group(mut v: &[u8]) -> Result<GroupRecord, RecordError> {
    let version = get_i16(&mut v)?;
    if !(0..=3).contains(&version) {
        return Err(RecordError("unknown GroupMetadataValue version"));
    }
    let protocol_type = Some(get_str(&mut v)?).filter(|t| !t.is_empty());
    let generation = get_i32(&mut v)?;
    let protocol = get_opt_str(&mut v)?;
    let leader = get_opt_str(&mut v)?;
    let state_timestamp = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let count = get_i32(&mut v)?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = get_str(&mut v)?;
        let group_instance_id = if version >= 3 {
            get_opt_str(&mut v)?
        } else {
            None
        };
        let client_id = get_str(&mut v)?;
        let client_host = get_str(&mut v)?;
        let session_timeout_ms;
        let rebalance_timeout_ms;
        if version >= 1 {
            rebalance_timeout_ms = get_i32(&mut v)?;
            session_timeout_ms = get_i32(&mut v)?;
        } else {
            session_timeout_ms = get_i32(&mut v)?;
            rebalance_timeout_ms = session_timeout_ms;
        }
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(MemberRecord {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupRecord {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

pub(super) fn put_str(b: &mut BytesMut, s: &str) {
    // Kafka's STRING is at most i16::MAX bytes; longer names never reach here (group ids,
    // topics and metadata are bounded by the request decoder and offset.metadata.max.bytes).
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    b.put_i16(bytes.len() as i16);
    b.put_slice(bytes);
}

fn put_opt_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

pub(super) fn need(buf: &[u8], n: usize) -> Result<(), RecordError> {
    if buf.remaining() < n {
        return Err(RecordError("truncated"));
    }
    Ok(())
}

pub(super) fn get_i16(buf: &mut &[u8]) -> Result<i16, RecordError> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

pub(super) fn get_i32(buf: &mut &[u8]) -> Result<i32, RecordError> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

pub(super) fn get_i64(buf: &mut &[u8]) -> Result<i64, RecordError> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

fn get_opt_str(buf: &mut &[u8]) -> Result<Option<String>, RecordError> {
    let len = get_i16(buf)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    need(buf, len)?;
    let s = std::str::from_utf8(&buf[..len]).map_err(|_| RecordError("string not UTF-8"))?;
    let s = s.to_string();
    buf.advance(len);
    Ok(Some(s))
}

pub(super) fn get_str(buf: &mut &[u8]) -> Result<String, RecordError> {
    get_opt_str(buf)?.ok_or(RecordError("null where a string is required"))
}

fn get_bytes(buf: &mut &[u8]) -> Result<Vec<u8>, RecordError> {
    let len = get_i32(buf)?;
    if len < 0 {
        return Ok(Vec::new());
    }
    let len = len as usize;
    need(buf, len)?;
    let v = buf[..len].to_vec();
    buf.advance(len);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_records_have_kafkas_layout() {
        // OffsetCommitKey v1: version, group, topic, partition.
        let key = offset_key("g", "t", 7);
        assert_eq!(&key[..], b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x07");
        let committed = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1000,
        };
        // OffsetCommitValue v3: version, offset, leader epoch, metadata, commit timestamp.
        let value = offset_value(&committed);
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice(b"\x00\x01m");
        expected.extend_from_slice(&1000i64.to_be_bytes());
        assert_eq!(&value[..], &expected[..]);
        assert_eq!(
            decode(&key, Some(&value)).unwrap(),
            Some(GroupLogRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                committed: Some(committed),
            })
        );
    }

    #[test]
    fn group_metadata_round_trips_and_tombstones_are_removals() {
        let record = GroupRecord {
            protocol_type: Some("consumer".into()),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp: 123,
            members: vec![MemberRecord {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: vec![1, 2],
                assignment: vec![],
            }],
        };
        let key = group_key("g");
        assert_eq!(&key[..], b"\x00\x02\x00\x01g");
        let value = group_value(&record);
        assert_eq!(&value[..2], &[0, 3]);
        assert_eq!(
            decode(&key, Some(&value)).unwrap(),
            Some(GroupLogRecord::Group {
                group: "g".into(),
                record: Some(record),
            })
        );
        assert_eq!(
            decode(&key, None).unwrap(),
            Some(GroupLogRecord::Group {
                group: "g".into(),
                record: None,
            })
        );
    }

    #[test]
    fn a_group_without_protocol_type_reads_back_as_none() {
        let record = GroupRecord {
            generation: 0,
            ..Default::default()
        };
        let Some(GroupLogRecord::Group {
            record: Some(r), ..
        }) = decode(&group_key("g"), Some(&group_value(&record))).unwrap()
        else {
            panic!("not a group record");
        };
        assert_eq!(r.protocol_type, None);
    }

    #[test]
    fn newer_record_types_are_skipped_and_garbage_is_an_error() {
        // Key version 3+: Kafka's consumer-protocol group records.
        assert_eq!(decode(b"\x00\x03\x00\x01g", Some(b"x")).unwrap(), None);
        assert!(decode(b"\x00", None).is_err());
        assert!(decode(b"\x00\x01\x00\x05g", None).is_err());
        assert!(decode(&offset_key("g", "t", 0), Some(b"\x00\x03\x00")).is_err());
    }
}
