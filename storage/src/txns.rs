//! Transaction-coordinator state: one record per transactional id, holding the producer id
//! and epoch, the state of the current transaction and the partitions it touched, and its
//! RocksDB column family. The broker now keeps these records in `__transaction_state`; it
//! reads the column family once, to move what an earlier version stored there (whose
//! records also name the groups and offsets of a transaction), and then empties it.

use rocksdb::{IteratorMode, WriteBatch};

use crate::codec::{Reader, Writer};
use crate::db::CF_TXNS;
use crate::groups::CommittedOffset;
use crate::{Storage, StorageError};

/// The state of a transactional id, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// No transaction in progress.
    Empty,
    /// A transaction has partitions or offsets added.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
}

impl TxnState {
    /// The name Kafka's DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    /// Every state, for filters.
    pub const ALL: [TxnState; 6] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ];

    /// Kafka's `TransactionState` byte (what `__transaction_state` records hold).
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
        }
    }

    /// The state of a [`TxnState::code`] byte.
    pub fn from_code(c: i8) -> Option<Self> {
        TxnState::ALL.into_iter().find(|s| s.code() == c)
    }
}

/// An offset commit made inside a transaction, applied when it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset {
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset and what came with it.
    pub committed: CommittedOffset,
}

/// A transactional id as stored after each state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// Current producer id.
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), or -1.
    pub previous_producer_id: i64,
    /// The producer id a transaction ending at an exhausted epoch moves to once its
    /// markers are written (transactions v2), or -1.
    pub next_producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump, or -1; lets a retried InitProducerId succeed.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// State of the current or last transaction.
    pub state: TxnState,
    /// Partitions of the current transaction, sorted.
    pub partitions: Vec<(String, i32)>,
    /// Groups added by AddOffsetsToTxn, sorted.
    pub groups: Vec<String>,
    /// Offsets committed by TxnOffsetCommit, visible when the transaction commits.
    pub pending_offsets: Vec<PendingOffset>,
    /// When the current transaction started (ms since the epoch), or -1.
    pub start_ms: i64,
    /// When the record last changed (ms since the epoch).
    pub last_update_ms: i64,
    /// The transaction version (KIP-890) the producer's client speaks: 2 bumps the
    /// producer epoch at every transaction end, 0 is the classic protocol.
    pub client_transaction_version: i16,
}

/// Format version of [`TxnRecord::encode`].
const TXN_RECORD_VERSION: i8 = 0;

impl TxnRecord {
    /// Serialised form stored in RocksDB.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i8(TXN_RECORD_VERSION)
            .i64(self.producer_id)
            .i64(self.previous_producer_id)
            .i32(i32::from(self.producer_epoch))
            .i32(i32::from(self.last_producer_epoch))
            .i32(self.timeout_ms)
            .i8(self.state.code())
            .i64(self.start_ms)
            .i64(self.last_update_ms)
            .i32(self.partitions.len() as i32);
        for (topic, partition) in &self.partitions {
            w.str(topic).i32(*partition);
        }
        w.i32(self.groups.len() as i32);
        for g in &self.groups {
            w.str(g);
        }
        w.i32(self.pending_offsets.len() as i32);
        for p in &self.pending_offsets {
            w.str(&p.group)
                .str(&p.topic)
                .i32(p.partition)
                .i64(p.committed.offset)
                .i32(p.committed.leader_epoch)
                .str(&p.committed.metadata)
                .i64(p.committed.commit_timestamp);
        }
        w.0
    }

    /// Parses [`TxnRecord::encode`].
    pub fn decode(v: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(v, "transaction record");
        let bad = |what: &str| StorageError::Corrupt(format!("transaction record: {what}"));
        if r.i8()? != TXN_RECORD_VERSION {
            return Err(bad("unknown version"));
        }
        let producer_id = r.i64()?;
        let previous_producer_id = r.i64()?;
        let producer_epoch = i16::try_from(r.i32()?).map_err(|_| bad("epoch"))?;
        let last_producer_epoch = i16::try_from(r.i32()?).map_err(|_| bad("last epoch"))?;
        let timeout_ms = r.i32()?;
        let state = TxnState::from_code(r.i8()?).ok_or_else(|| bad("state"))?;
        let start_ms = r.i64()?;
        let last_update_ms = r.i64()?;
        let count = |r: &mut Reader<'_>| -> Result<usize, StorageError> {
            usize::try_from(r.i32()?).map_err(|_| bad("count"))
        };
        let n = count(&mut r)?;
        let mut partitions = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            partitions.push((r.str()?, r.i32()?));
        }
        let n = count(&mut r)?;
        let mut groups = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            groups.push(r.str()?);
        }
        let n = count(&mut r)?;
        let mut pending_offsets = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            pending_offsets.push(PendingOffset {
                group: r.str()?,
                topic: r.str()?,
                partition: r.i32()?,
                committed: CommittedOffset {
                    offset: r.i64()?,
                    leader_epoch: r.i32()?,
                    metadata: r.str()?,
                    commit_timestamp: r.i64()?,
                },
            });
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(TxnRecord {
            producer_id,
            previous_producer_id,
            producer_epoch,
            last_producer_epoch,
            timeout_ms,
            state,
            partitions,
            groups,
            pending_offsets,
            start_ms,
            last_update_ms,
            // Records of this form predate transactions v2.
            next_producer_id: -1,
            client_transaction_version: 0,
        })
    }
}

impl Storage {
    /// Stores a transactional id's record, replacing what was there; durable before it
    /// returns when the flush policy makes acknowledged data durable.
    pub fn store_txn(
        &self,
        transactional_id: &str,
        record: &TxnRecord,
    ) -> Result<(), StorageError> {
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.db.cf(CF_TXNS)?,
            transactional_id.as_bytes(),
            record.encode(),
        );
        self.db.write(wb, !self.flush_policy().is_lazy())
    }

    /// Forgets a transactional id (expired after `transactional.id.expiration.ms`).
    pub fn delete_txn(&self, transactional_id: &str) -> Result<(), StorageError> {
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.db.cf(CF_TXNS)?, transactional_id.as_bytes());
        self.db.write(wb, !self.flush_policy().is_lazy())
    }

    /// Every stored transactional id, for the coordinator's start-up.
    pub fn load_txns(&self) -> Result<Vec<(String, TxnRecord)>, StorageError> {
        let cf = self.db.cf(CF_TXNS)?;
        let mut out = Vec::new();
        for item in self.db.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            let id = String::from_utf8(key.to_vec())
                .map_err(|_| StorageError::Corrupt("transactional id is not UTF-8".into()))?;
            out.push((id, TxnRecord::decode(&value)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_record_round_trips() {
        let record = TxnRecord {
            producer_id: 4001,
            previous_producer_id: -1,
            producer_epoch: 7,
            last_producer_epoch: 6,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions: vec![("in".into(), 0), ("out".into(), 3)],
            groups: vec!["copier".into()],
            pending_offsets: vec![PendingOffset {
                group: "copier".into(),
                topic: "in".into(),
                partition: 0,
                committed: CommittedOffset {
                    offset: 500,
                    leader_epoch: -1,
                    metadata: "m".into(),
                    commit_timestamp: 1_700_000_000_000,
                },
            }],
            start_ms: 1_700_000_000_000,
            last_update_ms: 1_700_000_000_500,
            next_producer_id: -1,
            client_transaction_version: 0,
        };
        assert_eq!(TxnRecord::decode(&record.encode()).unwrap(), record);
        assert!(TxnRecord::decode(&record.encode()[..30]).is_err());
    }
}
