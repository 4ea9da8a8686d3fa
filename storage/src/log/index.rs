//! The partition's offset, time and transaction index in RocksDB: what one batch adds to
//! it, and the lookup of the batch holding an offset.

use rocksdb::{Direction, IteratorMode, WriteBatch};
use sluice_protocol::batch::{BatchHeader, ControlType};

use super::log_state::LogState;
use super::meta::leader_epochs_key;
use super::types::AbortedTxn;
use crate::db::{
    timestamp_key, Db, IndexEntry, PartitionKey, CF_ABORTED_TXNS, CF_META, CF_OFFSETS,
    CF_PRODUCERS, CF_TIMES,
};
use crate::StorageError;

/// Index entries, producer state and the leader-epoch cache for one batch, added to `wb`;
/// shared by appends (leader and follower) and recovery so all index a batch the same way.
/// `control` is the marker type and coordinator epoch of a transaction marker.
#[allow(clippy::too_many_arguments)]
pub(super) fn index_batch(
    db: &Db,
    key: PartitionKey,
    log: &mut LogState,
    wb: &mut WriteBatch,
    header: &BatchHeader,
    control: Option<(ControlType, i32)>,
    segment_base: i64,
    position: u64,
) -> Result<(), StorageError> {
    let entry = IndexEntry {
        segment: segment_base,
        position,
        size: header.size() as u32,
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
        max_timestamp: header.max_timestamp,
    };
    wb.put_cf(
        db.cf(CF_OFFSETS)?,
        key.with_i64(entry.last_offset),
        entry.encode(),
    );
    if header.max_timestamp > log.max_timestamp {
        log.max_timestamp = header.max_timestamp;
        wb.put_cf(
            db.cf(CF_TIMES)?,
            key.with_u64(timestamp_key(header.max_timestamp)),
            header.base_offset.to_be_bytes(),
        );
    }
    // A batch with a newer leader epoch starts that epoch (Kafka's assign on append).
    if log
        .epochs
        .assign(header.partition_leader_epoch, header.base_offset)
    {
        wb.put_cf(
            db.cf(CF_META)?,
            leader_epochs_key(&key),
            log.epochs.encode(),
        );
    }
    if !header.has_producer_id() {
        return Ok(());
    }
    let producers = db.cf(CF_PRODUCERS)?;
    if header.is_control() {
        let Some((control, coordinator_epoch)) = control else {
            // A control record that is not a transaction marker changes no producer.
            return Ok(());
        };
        let (state, completed) = log
            .producers
            .record_marker(header, control, coordinator_epoch);
        wb.put_cf(producers, key.with_i64(header.producer_id), state.encode());
        if let Some(done) = completed {
            log.ongoing_txns.remove(&done.first_offset);
            if done.aborted {
                let aborted = AbortedTxn {
                    producer_id: done.producer_id,
                    first_offset: done.first_offset,
                    last_offset: done.last_offset,
                };
                wb.put_cf(
                    db.cf(CF_ABORTED_TXNS)?,
                    key.with_i64(aborted.last_offset),
                    aborted.encode(),
                );
                log.aborted_txns.insert(aborted);
            }
        }
    } else {
        let was_open = log
            .producers
            .producers
            .get(&header.producer_id)
            .is_some_and(|e| e.txn_first_offset.is_some());
        let state = log.producers.record(header);
        if let (false, Some(first)) = (was_open, state.txn_first_offset) {
            log.ongoing_txns.insert(first, header.producer_id);
        }
        wb.put_cf(producers, key.with_i64(header.producer_id), state.encode());
    }
    Ok(())
}

/// The index entry of the first batch whose last offset is at or after `offset`.
pub(super) fn batch_containing(
    db: &Db,
    key: PartitionKey,
    offset: i64,
) -> Result<Option<IndexEntry>, StorageError> {
    let cf = db.cf(CF_OFFSETS)?;
    let start = key.with_i64(offset.max(0));
    let mut it = db
        .db
        .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
    match it.next() {
        Some(Ok((k, v))) if k.starts_with(key.as_bytes()) => Ok(Some(IndexEntry::decode(&k, &v)?)),
        Some(Err(e)) => Err(e.into()),
        _ => Ok(None),
    }
}
