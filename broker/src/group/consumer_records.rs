//! A KIP-848 consumer group's state as Kafka writes it to `__consumer_offsets`: the group
//! epoch (`ConsumerGroupMetadata`, key 3), each member's subscription
//! (`ConsumerGroupMemberMetadata`, 5), the target assignment's epoch and each member's
//! target (`ConsumerGroupTargetAssignmentMetadata`, 6, and `...Member`, 7), and each
//! member's epoch and current assignment (`ConsumerGroupCurrentMemberAssignment`, 8).
//! Keys are Kafka's fixed-layout keys; values are version 0 of Kafka's flexible schemas.
//!
//! The coordinator compares the records of a group's state with those it last wrote and
//! writes only the difference ([`diff`]); a load decodes the latest record of each key
//! ([`decode`]). Members come back with a fresh session, as Kafka's do after a load.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer::{ConsumerGroupState, ConsumerMember, MemberState};
use super::records::{get_i16, get_i32, get_str, need, put_str, RecordError};

/// A group's consumer-protocol records: key → value.
pub(crate) type ConsumerRecords = BTreeMap<Bytes, Bytes>;

const METADATA: i16 = 3;
const MEMBER_METADATA: i16 = 5;
const TARGET_METADATA: i16 = 6;
const TARGET_MEMBER: i16 = 7;
const CURRENT_ASSIGNMENT: i16 = 8;

/// Whether a key of `__consumer_offsets` is a consumer-protocol record; its group if so.
pub(crate) fn group_of(key: &[u8]) -> Result<Option<String>, RecordError> {
    let mut k = key;
    match get_i16(&mut k)? {
        METADATA..=CURRENT_ASSIGNMENT => get_str(&mut k).map(Some),
        _ => Ok(None),
    }
}

fn key(version: i16, group: &str, member: Option<&str>) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version);
    put_str(&mut b, group);
    if let Some(m) = member {
        put_str(&mut b, m);
    }
    b.freeze()
}

/// The records that hold `cg`, the state of group `group`.
pub(crate) fn encode(group: &str, cg: &ConsumerGroupState) -> ConsumerRecords {
    let mut out = ConsumerRecords::new();
    let mut v = value();
    v.put_i32(cg.group_epoch);
    out.insert(key(METADATA, group, None), end(v));
    let mut v = value();
    v.put_i32(cg.assignment_epoch);
    out.insert(key(TARGET_METADATA, group, None), end(v));
    for m in cg.members.values() {
        encode_member_into(&mut out, group, cg, m);
    }
    out
}

/// The records of one member of `cg` (none when it is not a member).
pub(crate) fn encode_member(group: &str, cg: &ConsumerGroupState, member: &str) -> ConsumerRecords {
    let mut out = ConsumerRecords::new();
    if let Some(m) = cg.members.get(member) {
        encode_member_into(&mut out, group, cg, m);
    }
    out
}

/// The keys of one member's records.
pub(crate) fn member_keys(group: &str, member: &str) -> [Bytes; 3] {
    let id = Some(member);
    [
        key(MEMBER_METADATA, group, id),
        key(TARGET_MEMBER, group, id),
        key(CURRENT_ASSIGNMENT, group, id),
    ]
}

fn encode_member_into(
    out: &mut ConsumerRecords,
    group: &str,
    cg: &ConsumerGroupState,
    m: &ConsumerMember,
) {
    let [metadata, target, current] = member_keys(group, &m.member_id);
    out.insert(metadata, member_metadata(m));
    let mut v = value();
    put_partitions(&mut v, cg.target.get(&m.member_id));
    out.insert(target, end(v));
    let mut v = value();
    v.put_i32(m.member_epoch);
    v.put_i32(m.previous_member_epoch);
    v.put_i8(state_code(m.state));
    put_partitions(&mut v, Some(&m.assigned));
    put_partitions(&mut v, Some(&m.pending_revocation));
    out.insert(current, end(v));
}

/// What to write so that the log holds `now` where it held `before`: changed and new
/// records, and tombstones for keys that are gone.
pub(crate) fn diff(before: &ConsumerRecords, now: &ConsumerRecords) -> Vec<(Bytes, Option<Bytes>)> {
    let mut out: Vec<(Bytes, Option<Bytes>)> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    out.extend(
        before
            .keys()
            .filter(|k| !now.contains_key(*k))
            .map(|k| (k.clone(), None)),
    );
    out
}

fn member_metadata(m: &ConsumerMember) -> Bytes {
    let mut v = value();
    put_compact_opt_str(&mut v, m.instance_id.as_deref());
    put_compact_opt_str(&mut v, m.rack_id.as_deref());
    put_compact_str(&mut v, &m.client_id);
    put_compact_str(&mut v, &m.client_host);
    put_uvarint(&mut v, m.subscribed_topic_names.len() as u64 + 1);
    for t in &m.subscribed_topic_names {
        put_compact_str(&mut v, t);
    }
    put_compact_opt_str(&mut v, m.subscribed_topic_regex.as_deref());
    v.put_i32(m.rebalance_timeout_ms);
    put_compact_opt_str(&mut v, m.server_assignor.as_deref());
    end(v)
}

/// A group's state from its records. `session` is the fresh session each member gets.
pub(crate) fn decode(
    records: &ConsumerRecords,
    now: Instant,
    session: Duration,
) -> Result<ConsumerGroupState, RecordError> {
    let mut cg = ConsumerGroupState::default();
    let mut members: BTreeMap<String, ConsumerMember> = BTreeMap::new();
    let mut current: BTreeMap<String, (i32, i32, MemberState, Assignment, Assignment)> =
        BTreeMap::new();
    for (k, v) in records {
        let mut k = &k[..];
        let version = get_i16(&mut k)?;
        let _group = get_str(&mut k)?;
        let mut v = &v[..];
        if get_i16(&mut v)? != 0 {
            return Err(RecordError("unknown consumer group record value version"));
        }
        match version {
            METADATA => cg.group_epoch = get_i32(&mut v)?,
            TARGET_METADATA => cg.assignment_epoch = get_i32(&mut v)?,
            MEMBER_METADATA => {
                let member_id = get_str(&mut k)?;
                let m = read_member(member_id.clone(), &mut v, now + session)?;
                members.insert(member_id, m);
            }
            TARGET_MEMBER => {
                let member_id = get_str(&mut k)?;
                cg.target.insert(member_id, get_partitions(&mut v)?);
            }
            CURRENT_ASSIGNMENT => {
                let member_id = get_str(&mut k)?;
                let epoch = get_i32(&mut v)?;
                let previous = get_i32(&mut v)?;
                need(v, 1)?;
                let state = member_state(v.get_i8())?;
                let assigned = get_partitions(&mut v)?;
                let pending = get_partitions(&mut v)?;
                current.insert(member_id, (epoch, previous, state, assigned, pending));
            }
            // Written by Kafka, not read here (the subscribed topics' metadata, regexes).
            _ => continue,
        }
        skip_tagged_fields(&mut v)?;
    }
    let mut ordered: IndexMap<String, ConsumerMember> = IndexMap::new();
    for (id, mut m) in members {
        if let Some((epoch, previous, state, assigned, pending)) = current.remove(&id) {
            m.member_epoch = epoch;
            m.previous_member_epoch = previous;
            m.state = state;
            m.assigned = assigned;
            if !pending.is_empty() {
                // The revocation's clock starts again with the new coordinator.
                m.revocation_deadline =
                    Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            }
            m.pending_revocation = pending;
        }
        if let Some(i) = &m.instance_id {
            cg.static_members.insert(i.clone(), id.clone());
        }
        ordered.insert(id, m);
    }
    cg.target.retain(|id, _| ordered.contains_key(id));
    cg.members = ordered;
    Ok(cg)
}

fn read_member(
    member_id: String,
    v: &mut &[u8],
    session_deadline: Instant,
) -> Result<ConsumerMember, RecordError> {
    let instance_id = get_compact_opt_str(v)?;
    let rack_id = get_compact_opt_str(v)?;
    let client_id = get_compact_str(v)?;
    let client_host = get_compact_str(v)?;
    let count = get_uvarint(v)?;
    let mut subscribed_topic_names = Vec::new();
    for _ in 1..count.max(1) {
        subscribed_topic_names.push(get_compact_str(v)?);
    }
    let subscribed_topic_regex = get_compact_opt_str(v)?;
    let rebalance_timeout_ms = get_i32(v)?;
    let server_assignor = get_compact_opt_str(v)?;
    Ok(ConsumerMember {
        member_id,
        instance_id,
        rack_id,
        client_id,
        client_host,
        member_epoch: 0,
        previous_member_epoch: -1,
        state: MemberState::Stable,
        rebalance_timeout_ms,
        subscribed_topic_names,
        subscribed_topic_regex,
        server_assignor,
        assigned: Assignment::new(),
        pending_revocation: Assignment::new(),
        session_deadline,
        revocation_deadline: None,
        left_temporarily: false,
    })
}

/// Kafka's `MemberState` codes.
fn state_code(s: MemberState) -> i8 {
    match s {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

fn member_state(code: i8) -> Result<MemberState, RecordError> {
    match code {
        0 => Ok(MemberState::Stable),
        1 => Ok(MemberState::UnrevokedPartitions),
        2 => Ok(MemberState::UnreleasedPartitions),
        _ => Err(RecordError("unknown consumer group member state")),
    }
}

/// A value's version (0) before its fields.
fn value() -> BytesMut {
    let mut v = BytesMut::new();
    v.put_i16(0);
    v
}

/// A value's (empty) tagged fields after its fields.
fn end(mut v: BytesMut) -> Bytes {
    put_uvarint(&mut v, 0);
    v.freeze()
}

/// `[]TopicPartitions` of a flexible value: topic id, partitions, tagged fields.
fn put_partitions(v: &mut BytesMut, a: Option<&Assignment>) {
    let empty = Assignment::new();
    let a = a.unwrap_or(&empty);
    put_uvarint(v, a.len() as u64 + 1);
    for (topic, partitions) in a {
        v.put_slice(topic.as_bytes());
        put_uvarint(v, partitions.len() as u64 + 1);
        for p in partitions {
            v.put_i32(*p);
        }
        put_uvarint(v, 0);
    }
}

fn get_partitions(v: &mut &[u8]) -> Result<Assignment, RecordError> {
    let mut out = Assignment::new();
    let topics = get_uvarint(v)?;
    for _ in 1..topics.max(1) {
        need(v, 16)?;
        let id = Uuid::from_slice(&v[..16]).map_err(|_| RecordError("topic id"))?;
        v.advance(16);
        let count = get_uvarint(v)?;
        let mut partitions = BTreeSet::new();
        for _ in 1..count.max(1) {
            partitions.insert(get_i32(v)?);
        }
        skip_tagged_fields(v)?;
        out.insert(id, partitions);
    }
    Ok(out)
}

fn put_uvarint(v: &mut BytesMut, mut n: u64) {
    while n >= 0x80 {
        v.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    v.put_u8(n as u8);
}

fn get_uvarint(v: &mut &[u8]) -> Result<u64, RecordError> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        need(v, 1)?;
        let b = v.get_u8();
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(RecordError("varint too long"))
}

fn put_compact_str(v: &mut BytesMut, s: &str) {
    put_uvarint(v, s.len() as u64 + 1);
    v.put_slice(s.as_bytes());
}

fn put_compact_opt_str(v: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_compact_str(v, s),
        None => put_uvarint(v, 0),
    }
}

fn get_compact_opt_str(v: &mut &[u8]) -> Result<Option<String>, RecordError> {
    let n = get_uvarint(v)?;
    if n == 0 {
        return Ok(None);
    }
    let len = usize::try_from(n - 1).map_err(|_| RecordError("string too long"))?;
    need(v, len)?;
    let s = std::str::from_utf8(&v[..len]).map_err(|_| RecordError("string not UTF-8"))?;
    let s = s.to_string();
    v.advance(len);
    Ok(Some(s))
}

fn get_compact_str(v: &mut &[u8]) -> Result<String, RecordError> {
    get_compact_opt_str(v)?.ok_or(RecordError("null where a string is required"))
}

fn skip_tagged_fields(v: &mut &[u8]) -> Result<(), RecordError> {
    for _ in 0..get_uvarint(v)? {
        let _tag = get_uvarint(v)?;
        let size = usize::try_from(get_uvarint(v)?).map_err(|_| RecordError("tagged field"))?;
        need(v, size)?;
        v.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, epoch: i32) -> ConsumerMember {
        let now = Instant::now();
        ConsumerMember {
            member_id: id.into(),
            instance_id: (id == "m2").then(|| "instance-2".to_string()),
            rack_id: Some("rack-a".into()),
            client_id: "rdkafka".into(),
            client_host: "/127.0.0.1".into(),
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            state: MemberState::Stable,
            rebalance_timeout_ms: 300_000,
            subscribed_topic_names: vec!["orders".into()],
            subscribed_topic_regex: None,
            server_assignor: Some("uniform".into()),
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline: now,
            revocation_deadline: None,
            left_temporarily: false,
        }
    }

    #[test]
    fn the_group_epoch_record_has_kafkas_layout() {
        let cg = ConsumerGroupState {
            group_epoch: 5,
            ..Default::default()
        };
        let records = encode("g", &cg);
        // ConsumerGroupMetadataKey: version 3, group id.
        let key = Bytes::from_static(b"\x00\x03\x00\x01g");
        // ConsumerGroupMetadataValue v0: epoch, then no tagged fields.
        assert_eq!(
            records.get(&key).map(|v| &v[..]),
            Some(&b"\x00\x00\x00\x00\x00\x05\x00"[..])
        );
        assert_eq!(group_of(&key).unwrap(), Some("g".to_string()));
        // An offset commit's key is not a consumer-protocol record.
        assert_eq!(
            group_of(b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x00").unwrap(),
            None
        );
    }

    #[test]
    fn a_group_comes_back_from_its_records_with_fresh_sessions() {
        let orders = Uuid::from_u128(7);
        let mut cg = ConsumerGroupState {
            group_epoch: 4,
            assignment_epoch: 4,
            ..Default::default()
        };
        let mut m1 = member("m1", 4);
        m1.assigned = Assignment::from([(orders, BTreeSet::from([0, 1]))]);
        let mut m2 = member("m2", 3);
        m2.state = MemberState::UnrevokedPartitions;
        m2.assigned = Assignment::from([(orders, BTreeSet::from([2]))]);
        m2.pending_revocation = Assignment::from([(orders, BTreeSet::from([3]))]);
        cg.target.insert("m1".into(), m1.assigned.clone());
        cg.target.insert(
            "m2".into(),
            Assignment::from([(orders, BTreeSet::from([2]))]),
        );
        cg.members.insert("m1".into(), m1);
        cg.members.insert("m2".into(), m2);

        let records = encode("g", &cg);
        assert_eq!(records.len(), 2 + 3 * 2);
        let now = Instant::now();
        let back = decode(&records, now, Duration::from_secs(45)).unwrap();
        assert_eq!((back.group_epoch, back.assignment_epoch), (4, 4));
        assert_eq!(back.target, cg.target);
        assert_eq!(
            back.static_members.get("instance-2").map(String::as_str),
            Some("m2")
        );
        for (id, m) in &cg.members {
            let b = &back.members[id];
            assert_eq!(
                (b.member_epoch, b.previous_member_epoch, b.state),
                (m.member_epoch, m.previous_member_epoch, m.state)
            );
            assert_eq!(
                (&b.assigned, &b.pending_revocation),
                (&m.assigned, &m.pending_revocation)
            );
            assert_eq!(
                (&b.instance_id, &b.rack_id, &b.client_id, &b.client_host),
                (&m.instance_id, &m.rack_id, &m.client_id, &m.client_host)
            );
            assert_eq!(b.subscribed_topic_names, m.subscribed_topic_names);
            assert_eq!(b.server_assignor, m.server_assignor);
            assert_eq!(b.session_deadline, now + Duration::from_secs(45));
        }
        assert!(back.members["m2"].revocation_deadline.is_some());
        assert!(back.members["m1"].revocation_deadline.is_none());

        // A member leaving: its three records become tombstones, nothing else is written.
        let mut after = cg;
        after.members.shift_remove("m2");
        after.target.remove("m2");
        let writes = diff(&records, &encode("g", &after));
        assert_eq!(writes.len(), 3);
        assert!(writes.iter().all(|(_, v)| v.is_none()));
    }
}
