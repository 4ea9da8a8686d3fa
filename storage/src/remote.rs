//! What the log knows of its remote tier (KIP-405): each remote segment's metadata
//! (Kafka's `RemoteLogSegmentMetadata`) kept in RocksDB, the queue of remote segments to
//! delete, and the formats of the index objects uploaded beside a segment. The object
//! store itself is the `sluice-tier` crate's business.

use std::fs::File;
use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, WriteBatch};
use uuid::Uuid;

use crate::db::{Db, PartitionKey, CF_META};
use crate::log::AbortedTxn;
use crate::StorageError;

/// Where a remote segment is in its life (Kafka's `RemoteLogSegmentState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteSegmentState {
    /// The upload has begun; the objects may be partial.
    CopyStarted,
    /// Every object is written; fetches may read it.
    CopyFinished,
    /// Retention or a deletion dropped it; its objects are being removed.
    DeleteStarted,
}

impl RemoteSegmentState {
    fn code(self) -> u8 {
        match self {
            RemoteSegmentState::CopyStarted => 0,
            RemoteSegmentState::CopyFinished => 1,
            RemoteSegmentState::DeleteStarted => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => RemoteSegmentState::CopyStarted,
            1 => RemoteSegmentState::CopyFinished,
            2 => RemoteSegmentState::DeleteStarted,
            _ => return None,
        })
    }
}

/// One segment in the remote tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSegment {
    /// Unique per upload, so a retried upload never overwrites an earlier attempt's objects.
    pub segment_id: Uuid,
    /// The topic's name (part of the object keys).
    pub topic: String,
    /// The topic's id.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// First offset of the segment.
    pub base_offset: i64,
    /// Last offset of the segment (inclusive).
    pub end_offset: i64,
    /// Largest record timestamp in it.
    pub max_timestamp: i64,
    /// Bytes of the segment file.
    pub size_bytes: u64,
    /// Leader epochs starting in or before the segment: (epoch, start offset).
    pub leader_epochs: Vec<(i32, i64)>,
    /// Where the segment is in its life.
    pub state: RemoteSegmentState,
    /// When the state last changed (ms since the epoch).
    pub event_ms: i64,
}

const RECORD_VERSION: u8 = 1;

impl RemoteSegment {
    /// The encoding kept in RocksDB (and, in a cluster, in the cluster metadata).
    pub fn encode(&self) -> Vec<u8> {
        let topic = self.topic.as_bytes();
        let mut v = Vec::with_capacity(96 + topic.len() + self.leader_epochs.len() * 12);
        v.push(RECORD_VERSION);
        v.push(self.state.code());
        v.extend_from_slice(self.segment_id.as_bytes());
        v.extend_from_slice(self.topic_id.as_bytes());
        v.extend_from_slice(&self.partition.to_be_bytes());
        v.extend_from_slice(&self.base_offset.to_be_bytes());
        v.extend_from_slice(&self.end_offset.to_be_bytes());
        v.extend_from_slice(&self.max_timestamp.to_be_bytes());
        v.extend_from_slice(&self.size_bytes.to_be_bytes());
        v.extend_from_slice(&self.event_ms.to_be_bytes());
        v.extend_from_slice(&(self.leader_epochs.len() as u32).to_be_bytes());
        for (epoch, start) in &self.leader_epochs {
            v.extend_from_slice(&epoch.to_be_bytes());
            v.extend_from_slice(&start.to_be_bytes());
        }
        v.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        v.extend_from_slice(topic);
        v
    }

    /// Reads what [`RemoteSegment::encode`] wrote.
    pub fn decode(v: &[u8]) -> Result<Self, StorageError> {
        let bad = || StorageError::Corrupt("malformed remote segment metadata".into());
        let mut r = Reader(v);
        if r.u8().ok_or_else(bad)? != RECORD_VERSION {
            return Err(bad());
        }
        let state = RemoteSegmentState::from_code(r.u8().ok_or_else(bad)?).ok_or_else(bad)?;
        let segment_id = r.uuid().ok_or_else(bad)?;
        let topic_id = r.uuid().ok_or_else(bad)?;
        let partition = r.i32().ok_or_else(bad)?;
        let base_offset = r.i64().ok_or_else(bad)?;
        let end_offset = r.i64().ok_or_else(bad)?;
        let max_timestamp = r.i64().ok_or_else(bad)?;
        let size_bytes = r.i64().ok_or_else(bad)? as u64;
        let event_ms = r.i64().ok_or_else(bad)?;
        let n = r.i32().ok_or_else(bad)? as u32 as usize;
        if n > r.0.len() / 12 {
            return Err(bad());
        }
        let mut leader_epochs = Vec::with_capacity(n);
        for _ in 0..n {
            leader_epochs.push((r.i32().ok_or_else(bad)?, r.i64().ok_or_else(bad)?));
        }
        let len = r.u16().ok_or_else(bad)? as usize;
        let topic = r.take(len).ok_or_else(bad)?;
        Ok(RemoteSegment {
            segment_id,
            topic: String::from_utf8(topic.to_vec()).map_err(|_| bad())?,
            topic_id,
            partition,
            base_offset,
            end_offset,
            max_timestamp,
            size_bytes,
            leader_epochs,
            state,
            event_ms,
        })
    }
}

/// A segment to upload: its metadata (state COPY_STARTED, already recorded) and what goes
/// to the object store with it.
#[derive(Debug)]
pub struct CopyJob {
    /// The metadata recorded for it.
    pub segment: RemoteSegment,
    /// The segment file, open: it stays readable even if the file is removed meanwhile.
    pub file: Arc<File>,
    /// The offset index entries of its batches ([`encode_batch_index`]).
    pub offset_index: Vec<u8>,
    /// The aborted transactions with records in it ([`encode_txn_index`]).
    pub txn_index: Vec<u8>,
    /// The partition's producer state when the copy began ([`crate::producers`] entries).
    pub producer_snapshot: Vec<u8>,
}

/// One batch of a remote segment, as its uploaded offset index lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Last offset of the batch.
    pub last_offset: i64,
    /// Byte position of the batch in the segment.
    pub position: u64,
    /// Bytes of the batch.
    pub size: u32,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
}

const INDEX_MAGIC: &[u8; 4] = b"SLI1";
const TXN_INDEX_MAGIC: &[u8; 4] = b"SLT1";
const SNAPSHOT_MAGIC: &[u8; 4] = b"SLP1";
const BATCH_ENTRY_LEN: usize = 36;

/// The uploaded offset index of a segment: its batches in offset order.
pub fn encode_batch_index(entries: &[BatchEntry]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + entries.len() * BATCH_ENTRY_LEN);
    v.extend_from_slice(INDEX_MAGIC);
    for e in entries {
        v.extend_from_slice(&e.base_offset.to_be_bytes());
        v.extend_from_slice(&e.last_offset.to_be_bytes());
        v.extend_from_slice(&e.position.to_be_bytes());
        v.extend_from_slice(&e.size.to_be_bytes());
        v.extend_from_slice(&e.max_timestamp.to_be_bytes());
    }
    v
}

/// Reads an uploaded offset index.
pub fn decode_batch_index(v: &[u8]) -> Result<Vec<BatchEntry>, StorageError> {
    let bad = || StorageError::Corrupt("malformed remote offset index".into());
    let body = v.strip_prefix(INDEX_MAGIC).ok_or_else(bad)?;
    if !body.len().is_multiple_of(BATCH_ENTRY_LEN) {
        return Err(bad());
    }
    body.chunks_exact(BATCH_ENTRY_LEN)
        .map(|c| {
            let mut r = Reader(c);
            let mut entry = || {
                Some(BatchEntry {
                    base_offset: r.i64()?,
                    last_offset: r.i64()?,
                    position: r.i64()? as u64,
                    size: r.i32()? as u32,
                    max_timestamp: r.i64()?,
                })
            };
            entry().ok_or_else(bad)
        })
        .collect()
}

/// The uploaded transaction index of a segment: aborted transactions with records in it.
pub fn encode_txn_index(aborted: &[AbortedTxn]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + aborted.len() * 24);
    v.extend_from_slice(TXN_INDEX_MAGIC);
    for t in aborted {
        v.extend_from_slice(&t.producer_id.to_be_bytes());
        v.extend_from_slice(&t.first_offset.to_be_bytes());
        v.extend_from_slice(&t.last_offset.to_be_bytes());
    }
    v
}

/// Reads an uploaded transaction index.
pub fn decode_txn_index(v: &[u8]) -> Result<Vec<AbortedTxn>, StorageError> {
    let bad = || StorageError::Corrupt("malformed remote transaction index".into());
    let body = v.strip_prefix(TXN_INDEX_MAGIC).ok_or_else(bad)?;
    if !body.len().is_multiple_of(24) {
        return Err(bad());
    }
    body.chunks_exact(24)
        .map(|c| {
            let mut r = Reader(c);
            let mut txn = || {
                Some(AbortedTxn {
                    producer_id: r.i64()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                })
            };
            txn().ok_or_else(bad)
        })
        .collect()
}

/// The producer snapshot uploaded with a segment: producer id and state entries.
pub(crate) fn encode_producer_snapshot(entries: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut v = SNAPSHOT_MAGIC.to_vec();
    for (pid, state) in entries {
        v.extend_from_slice(&pid.to_be_bytes());
        v.extend_from_slice(&(state.len() as u32).to_be_bytes());
        v.extend_from_slice(state);
    }
    v
}

/// Reads what [`encode_producer_snapshot`] wrote: producer ids and their encoded state.
pub(crate) fn decode_producer_snapshot(v: &[u8]) -> Result<Vec<(i64, Vec<u8>)>, StorageError> {
    let bad = || StorageError::Corrupt("malformed remote producer snapshot".into());
    let mut r = Reader(v.strip_prefix(SNAPSHOT_MAGIC).ok_or_else(bad)?);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let pid = r.i64().ok_or_else(bad)?;
        let len = r.i32().ok_or_else(bad)? as u32 as usize;
        out.push((pid, r.take(len).ok_or_else(bad)?.to_vec()));
    }
    Ok(out)
}

/// A cursor over big-endian fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn uuid(&mut self) -> Option<Uuid> {
        Uuid::from_slice(self.take(16)?).ok()
    }
}

const SEGMENT_PREFIX: &[u8] = b"remote_segment:";
const DELETE_PREFIX: &[u8] = b"remote_delete:";

/// The RocksDB key of a partition's remote segment (copying or copied).
pub(crate) fn segment_key(key: &PartitionKey, base_offset: i64) -> Vec<u8> {
    let mut k = SEGMENT_PREFIX.to_vec();
    k.extend_from_slice(&key.with_i64(base_offset));
    k
}

/// The prefix of every remote segment key of a partition.
fn partition_prefix(key: &PartitionKey) -> Vec<u8> {
    let mut k = SEGMENT_PREFIX.to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// The RocksDB key of a remote segment waiting to be deleted.
fn delete_key(segment_id: Uuid) -> Vec<u8> {
    let mut k = DELETE_PREFIX.to_vec();
    k.extend_from_slice(segment_id.as_bytes());
    k
}

/// Every remote segment recorded under keys starting with `prefix`, in key order.
fn scan(db: &Db, prefix: &[u8]) -> Result<Vec<RemoteSegment>, StorageError> {
    let cf = db.cf(CF_META)?;
    let mut out = Vec::new();
    for item in db
        .db
        .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward))
    {
        let (k, v) = item?;
        if !k.starts_with(prefix) {
            break;
        }
        out.push(RemoteSegment::decode(&v)?);
    }
    Ok(out)
}

/// A partition's remote segments (COPY_STARTED and COPY_FINISHED), by base offset.
pub(crate) fn partition_segments(
    db: &Db,
    key: &PartitionKey,
) -> Result<Vec<RemoteSegment>, StorageError> {
    scan(db, &partition_prefix(key))
}

/// Moves `segment` from the partition's segments to the deletion queue, in `wb`. In a
/// cluster the queue is the cluster metadata's (DELETE_STARTED entries, written by the
/// remote log manager), so the segment is only forgotten here.
pub(crate) fn queue_deletion(
    db: &Db,
    wb: &mut WriteBatch,
    key: &PartitionKey,
    segment: &RemoteSegment,
    now_ms: i64,
) -> Result<(), StorageError> {
    let cf = db.cf(CF_META)?;
    wb.delete_cf(cf, segment_key(key, segment.base_offset));
    if db.remote_metadata_shared {
        return Ok(());
    }
    let mut doomed = segment.clone();
    doomed.state = RemoteSegmentState::DeleteStarted;
    doomed.event_ms = now_ms;
    wb.put_cf(cf, delete_key(segment.segment_id), doomed.encode());
    Ok(())
}

/// Remote segments waiting for their objects to be deleted.
pub(crate) fn pending_deletions(db: &Db) -> Result<Vec<RemoteSegment>, StorageError> {
    scan(db, DELETE_PREFIX)
}

/// Forgets a remote segment whose objects are gone.
pub(crate) fn finish_deletion(db: &Db, segment_id: Uuid) -> Result<(), StorageError> {
    let mut wb = WriteBatch::default();
    wb.delete_cf(db.cf(CF_META)?, delete_key(segment_id));
    db.write(wb, true)
}

/// Every partition's remote segments, for sweeping those of topics no longer known.
pub(crate) fn all_segments(db: &Db) -> Result<Vec<RemoteSegment>, StorageError> {
    scan(db, SEGMENT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips() {
        let s = RemoteSegment {
            segment_id: Uuid::new_v4(),
            topic: "events".into(),
            topic_id: Uuid::new_v4(),
            partition: 3,
            base_offset: 100,
            end_offset: 199,
            max_timestamp: 1_700_000_000_000,
            size_bytes: 4096,
            leader_epochs: vec![(0, 0), (2, 150)],
            state: RemoteSegmentState::CopyFinished,
            event_ms: 42,
        };
        assert_eq!(RemoteSegment::decode(&s.encode()).unwrap(), s);
        assert!(RemoteSegment::decode(&s.encode()[..20]).is_err());
    }

    #[test]
    fn indexes_round_trip_and_refuse_garbage() {
        let entries = vec![
            BatchEntry {
                base_offset: 0,
                last_offset: 4,
                position: 0,
                size: 120,
                max_timestamp: 7,
            },
            BatchEntry {
                base_offset: 5,
                last_offset: 5,
                position: 120,
                size: 70,
                max_timestamp: 9,
            },
        ];
        assert_eq!(
            decode_batch_index(&encode_batch_index(&entries)).unwrap(),
            entries
        );
        assert!(decode_batch_index(b"SLI1\0\0").is_err());
        assert!(decode_batch_index(b"nope").is_err());
        let txns = vec![AbortedTxn {
            producer_id: 9,
            first_offset: 3,
            last_offset: 8,
        }];
        assert_eq!(decode_txn_index(&encode_txn_index(&txns)).unwrap(), txns);
        assert!(decode_txn_index(b"SLT1x").is_err());
    }
}
