//! What compaction keeps of one batch: the latest record of each key, minus aborted
//! transactions and tombstones past their delete horizon (KIP-534).

use std::collections::HashMap;

use bytes::Bytes;
use sluice_protocol::batch::{self, BatchHeader};
use sluice_protocol::records::{self, DELETE_HORIZON_BIT};

use super::types::AbortedTxn;

/// Aborted transactions by producer: (first offset, marker offset) ranges.
pub(super) fn aborted_by_producer(aborted: &[AbortedTxn]) -> HashMap<i64, Vec<(i64, i64)>> {
    let mut out: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for t in aborted {
        out.entry(t.producer_id)
            .or_default()
            .push((t.first_offset, t.last_offset));
    }
    out
}

/// Whether a transactional batch belongs to an aborted transaction.
pub(super) fn is_aborted(aborted: &HashMap<i64, Vec<(i64, i64)>>, h: &BatchHeader) -> bool {
    h.is_transactional()
        && aborted.get(&h.producer_id).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|(first, last)| *first <= h.base_offset && h.base_offset < *last)
        })
}

/// Decides, batch by batch, what a clean keeps.
pub(super) struct BatchCleaner<'a> {
    /// Each key's latest offset in the dirty section.
    pub(super) map: &'a HashMap<Bytes, i64>,
    /// Aborted transactions by producer.
    pub(super) aborted: &'a HashMap<i64, Vec<(i64, i64)>>,
    /// The time of the pass.
    pub(super) now_ms: i64,
    /// `delete.retention.ms`: how long tombstones are kept once cleaned.
    pub(super) delete_retention_ms: i64,
}

/// What a clean keeps of one batch.
pub(super) struct Kept {
    /// The batch to write (the original bytes when nothing changed), or none.
    pub(super) batch: Option<(BatchHeader, Bytes)>,
    /// Records dropped.
    pub(super) removed: u64,
    /// The delete horizon of the tombstones kept, if any.
    pub(super) horizon: Option<i64>,
}

impl BatchCleaner<'_> {
    /// What to keep of one batch: dropped records of aborted transactions, records
    /// superseded by a later one of their key, and tombstones past their delete horizon.
    pub(super) fn clean(
        &self,
        header: &BatchHeader,
        bytes: &Bytes,
    ) -> Result<Kept, batch::BatchError> {
        let keep_all = |horizon| Kept {
            batch: Some((*header, bytes.clone())),
            removed: 0,
            horizon,
        };
        // Markers stay: a read-committed consumer needs each ABORT marker to stop skipping.
        if header.is_control() {
            return Ok(keep_all(None));
        }
        if is_aborted(self.aborted, header) {
            return Ok(Kept {
                batch: None,
                removed: header.records_count.max(0) as u64,
                horizon: None,
            });
        }
        let (h, recs) = records::decode_records(bytes)?;
        let total = recs.len();
        let horizon_passed = h.has_delete_horizon() && self.now_ms >= h.base_timestamp;
        let kept: Vec<records::Record> = recs
            .into_iter()
            .filter(|r| {
                let Some(key) = &r.key else {
                    // Kafka's cleaner drops records without a key too.
                    return false;
                };
                let offset = h.base_offset + i64::from(r.offset_delta);
                let latest = self.map.get(key).is_none_or(|o| offset >= *o);
                latest && !(r.value.is_none() && horizon_passed)
            })
            .collect();
        let removed = (total - kept.len()) as u64;
        let Some(last) = kept.last() else {
            return Ok(Kept {
                batch: None,
                removed,
                horizon: None,
            });
        };
        let tombstones = kept.iter().any(|r| r.value.is_none());
        let horizon = match (tombstones, h.has_delete_horizon()) {
            (false, _) => None,
            (true, true) => Some(h.base_timestamp),
            (true, false) => Some(self.now_ms.saturating_add(self.delete_retention_ms)),
        };
        if removed == 0 && (!tombstones || h.has_delete_horizon()) {
            return Ok(keep_all(horizon));
        }
        let mut nh = h;
        nh.last_offset_delta = last.offset_delta;
        match horizon {
            Some(t) => {
                nh.attributes |= DELETE_HORIZON_BIT;
                nh.base_timestamp = t;
            }
            None => {
                nh.attributes &= !DELETE_HORIZON_BIT;
                nh.base_timestamp = kept
                    .iter()
                    .map(|r| r.timestamp)
                    .min()
                    .unwrap_or(h.base_timestamp);
            }
        }
        if !h.is_log_append_time() {
            nh.max_timestamp = kept
                .iter()
                .map(|r| r.timestamp)
                .max()
                .unwrap_or(h.max_timestamp);
        }
        let encoded = records::encode_batch(&nh, &kept)?;
        let header = batch::read_header(&encoded)?;
        Ok(Kept {
            batch: Some((header, Bytes::from(encoded))),
            removed,
            horizon,
        })
    }
}
