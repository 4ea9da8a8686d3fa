//! The records of `__transaction_state`, in Kafka's schemas so that tools reading the topic
//! understand them: `TransactionLogKey` v0 and `TransactionLogValue` v1 (flexible, with
//! the previous and next producer ids and the client's transaction version as tagged
//! fields 0, 1 and 2, each written only when not its default). A null value is a tombstone. Version 0
//! values, as older Kafka writes them, are read too.
//!
//! Kafka keeps neither the groups of a transaction nor its offsets here: a group is the
//! transaction's partition of `__consumer_offsets`, and its offsets wait in that partition
//! for the marker. Those fields of [`TxnRecord`] (kept for data directories of earlier
//! versions) are not written.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sluice_storage::{TxnRecord, TxnState};

/// Why a record of the topic could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable __transaction_state record: {0}")]
pub(crate) struct RecordError(&'static str);

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 1;
/// The tag of `PreviousProducerId` in value version 1.
const PREVIOUS_PRODUCER_ID_TAG: u64 = 0;
/// The tag of `NextProducerId`.
const NEXT_PRODUCER_ID_TAG: u64 = 1;
/// The tag of `ClientTransactionVersion`.
const CLIENT_TRANSACTION_VERSION_TAG: u64 = 2;

/// The key of a transactional id's record.
pub(crate) fn key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(KEY_VERSION);
    b.put_i16(transactional_id.len() as i16);
    b.put_slice(transactional_id.as_bytes());
    b.freeze()
}

/// The transactional id a key names.
pub(crate) fn decode_key(mut key: &[u8]) -> Result<String, RecordError> {
    if key.remaining() < 4 {
        return Err(RecordError("short key"));
    }
    if key.get_i16() != KEY_VERSION {
        return Err(RecordError("unknown key version"));
    }
    let len = key.get_i16();
    let len = usize::try_from(len).map_err(|_| RecordError("null transactional id"))?;
    if key.remaining() != len {
        return Err(RecordError("key length"));
    }
    String::from_utf8(key.to_vec()).map_err(|_| RecordError("transactional id is not UTF-8"))
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
        if !b.has_remaining() {
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

/// The partitions grouped by topic, in order.
fn by_topic(partitions: &[(String, i32)]) -> Vec<(&str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in partitions {
        match out.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => out.push((t.as_str(), vec![*p])),
        }
    }
    out
}

/// The value of a transactional id's record.
pub(crate) fn value(r: &TxnRecord) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(VALUE_VERSION);
    b.put_i64(r.producer_id);
    b.put_i16(r.producer_epoch);
    b.put_i32(r.timeout_ms);
    b.put_i8(r.state.code());
    let topics = by_topic(&r.partitions);
    put_uvarint(&mut b, topics.len() as u64 + 1);
    for (topic, partitions) in topics {
        put_uvarint(&mut b, topic.len() as u64 + 1);
        b.put_slice(topic.as_bytes());
        put_uvarint(&mut b, partitions.len() as u64 + 1);
        for p in partitions {
            b.put_i32(p);
        }
        put_uvarint(&mut b, 0);
    }
    b.put_i64(r.last_update_ms);
    b.put_i64(r.start_ms);
    let mut tagged = BytesMut::new();
    let mut count = 0;
    if r.previous_producer_id >= 0 {
        put_uvarint(&mut tagged, PREVIOUS_PRODUCER_ID_TAG);
        put_uvarint(&mut tagged, 8);
        tagged.put_i64(r.previous_producer_id);
        count += 1;
    }
    if r.next_producer_id >= 0 {
        put_uvarint(&mut tagged, NEXT_PRODUCER_ID_TAG);
        put_uvarint(&mut tagged, 8);
        tagged.put_i64(r.next_producer_id);
        count += 1;
    }
    if r.client_transaction_version != 0 {
        put_uvarint(&mut tagged, CLIENT_TRANSACTION_VERSION_TAG);
        put_uvarint(&mut tagged, 2);
        tagged.put_i16(r.client_transaction_version);
        count += 1;
    }
    put_uvarint(&mut b, count);
    b.put_slice(&tagged);
    b.freeze()
}

fn need(b: &[u8], n: usize) -> Result<(), RecordError> {
    if b.remaining() < n {
        Err(RecordError("short value"))
    } else {
        Ok(())
    }
}

fn get_string(b: &mut &[u8], flexible: bool) -> Result<String, RecordError> {
    let len = if flexible {
        let n = get_uvarint(b)?;
        usize::try_from(n.checked_sub(1).ok_or(RecordError("null topic"))?)
            .map_err(|_| RecordError("topic length"))?
    } else {
        need(b, 2)?;
        usize::try_from(b.get_i16()).map_err(|_| RecordError("null topic"))?
    };
    need(b, len)?;
    let s = String::from_utf8(b[..len].to_vec()).map_err(|_| RecordError("topic is not UTF-8"))?;
    b.advance(len);
    Ok(s)
}

fn get_count(b: &mut &[u8], flexible: bool) -> Result<Option<usize>, RecordError> {
    if flexible {
        let n = get_uvarint(b)?;
        Ok(n.checked_sub(1).map(|n| n as usize))
    } else {
        need(b, 4)?;
        Ok(usize::try_from(b.get_i32()).ok())
    }
}

/// Decodes a value; `None` for a tombstone.
pub(crate) fn decode_value(value: Option<&[u8]>) -> Result<Option<TxnRecord>, RecordError> {
    let Some(mut b) = value else {
        return Ok(None);
    };
    need(b, 2 + 8 + 2 + 4 + 1)?;
    let version = b.get_i16();
    let flexible = match version {
        0 => false,
        1 => true,
        _ => return Err(RecordError("unknown value version")),
    };
    let producer_id = b.get_i64();
    let producer_epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_code(b.get_i8()).ok_or(RecordError("unknown transaction state"))?;
    let mut partitions = Vec::new();
    for _ in 0..get_count(&mut b, flexible)?.unwrap_or(0) {
        let topic = get_string(&mut b, flexible)?;
        let count = get_count(&mut b, flexible)?.unwrap_or(0);
        need(b, count.saturating_mul(4))?;
        for _ in 0..count {
            partitions.push((topic.clone(), b.get_i32()));
        }
        if flexible {
            skip_tagged(&mut b)?;
        }
    }
    need(b, 16)?;
    let last_update_ms = b.get_i64();
    let start_ms = b.get_i64();
    let mut previous_producer_id = -1;
    let mut next_producer_id = -1;
    let mut client_transaction_version = 0;
    if flexible {
        for _ in 0..get_uvarint(&mut b)? {
            let tag = get_uvarint(&mut b)?;
            let size = get_uvarint(&mut b)? as usize;
            need(b, size)?;
            match (tag, size) {
                (PREVIOUS_PRODUCER_ID_TAG, 8) => previous_producer_id = (&b[..8]).get_i64(),
                (NEXT_PRODUCER_ID_TAG, 8) => next_producer_id = (&b[..8]).get_i64(),
                (CLIENT_TRANSACTION_VERSION_TAG, 2) => {
                    client_transaction_version = (&b[..2]).get_i16()
                }
                _ => {}
            }
            b.advance(size);
        }
    }
    Ok(Some(TxnRecord {
        producer_id,
        previous_producer_id,
        producer_epoch,
        // Not in Kafka's record either: a retried epoch bump after the coordinator moved
        // is answered as a new one.
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        groups: Vec::new(),
        pending_offsets: Vec::new(),
        start_ms,
        last_update_ms,
        next_producer_id,
        client_transaction_version,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TxnRecord {
        TxnRecord {
            producer_id: 4000,
            previous_producer_id: 17,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![
                ("orders".into(), 0),
                ("orders".into(), 2),
                ("__consumer_offsets".into(), 12),
            ],
            groups: Vec::new(),
            pending_offsets: Vec::new(),
            start_ms: 1_700_000_000_000,
            last_update_ms: 1_700_000_000_500,
            next_producer_id: -1,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn a_value_reads_back_as_written() {
        let r = record();
        assert_eq!(decode_value(Some(&value(&r))).unwrap(), Some(r.clone()));
        let fresh = TxnRecord {
            previous_producer_id: -1,
            state: TxnState::Empty,
            partitions: Vec::new(),
            start_ms: -1,
            ..r
        };
        assert_eq!(decode_value(Some(&value(&fresh))).unwrap(), Some(fresh));
        assert_eq!(decode_value(None).unwrap(), None);
        let v2 = TxnRecord {
            next_producer_id: 4001,
            client_transaction_version: 2,
            ..record()
        };
        assert_eq!(decode_value(Some(&value(&v2))).unwrap(), Some(v2));
    }

    #[test]
    fn the_value_is_kafkas_layout() {
        let mut r = record();
        r.partitions = vec![("t".into(), 1)];
        r.previous_producer_id = -1;
        let v = value(&r);
        let mut want = vec![0, 1];
        want.extend(4000i64.to_be_bytes());
        want.extend(3i16.to_be_bytes());
        want.extend(60_000i32.to_be_bytes());
        want.push(1); // Ongoing
        want.extend([2, 2, b't', 2]); // one topic "t" with one partition
        want.extend(1i32.to_be_bytes());
        want.push(0); // the topic entry's tagged fields
        want.extend(1_700_000_000_500i64.to_be_bytes());
        want.extend(1_700_000_000_000i64.to_be_bytes());
        want.push(0); // no tagged fields
        assert_eq!(&v[..], &want[..]);

        // Transactions v2: the tagged fields in tag order, each with its size.
        r.previous_producer_id = 17;
        r.next_producer_id = 4001;
        r.client_transaction_version = 2;
        let v = value(&r);
        want.pop();
        want.extend([3, 0, 8]);
        want.extend(17i64.to_be_bytes());
        want.extend([1, 8]);
        want.extend(4001i64.to_be_bytes());
        want.extend([2, 2, 0, 2]);
        assert_eq!(&v[..], &want[..]);
    }

    #[test]
    fn a_version_0_value_is_read() {
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i64(9);
        b.put_i16(1);
        b.put_i32(1000);
        b.put_i8(4);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(5);
        b.put_i64(20);
        b.put_i64(10);
        let r = decode_value(Some(&b)).unwrap().unwrap();
        assert_eq!(r.state, TxnState::CompleteCommit);
        assert_eq!(r.partitions, vec![("t".into(), 0), ("t".into(), 5)]);
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.timeout_ms),
            (9, 1, 1000)
        );
        assert_eq!((r.last_update_ms, r.start_ms), (20, 10));
    }

    #[test]
    fn keys_round_trip_and_bad_bytes_are_errors() {
        assert_eq!(decode_key(&key("payments-1")).unwrap(), "payments-1");
        assert!(decode_key(&[0, 0, 0]).is_err());
        assert!(decode_value(Some(&[0, 1, 0])).is_err());
        let mut v = value(&record()).to_vec();
        v[16] = 9; // no such state
        assert!(decode_value(Some(&v)).is_err());
    }
}
