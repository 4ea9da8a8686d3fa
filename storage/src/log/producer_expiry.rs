//! Producer id expiry: the state of producers idle for `producer.id.expiration.ms` is
//! dropped from memory and from the index, as Kafka's `removeExpiredProducers` does, so
//! short-lived idempotent producers do not grow the broker without bound.

use rocksdb::WriteBatch;

use super::partition::Partition;
use crate::db::CF_PRODUCERS;
use crate::StorageError;

impl Partition {
    /// Forgets the producers whose state expired at `now_ms` (see
    /// `ProducerStates::expired`); returns how many.
    pub fn remove_expired_producers(
        &self,
        now_ms: i64,
        expiration_ms: i64,
    ) -> Result<usize, StorageError> {
        let mut log = self.lock();
        let expired = log.producers.expired(now_ms, expiration_ms);
        if expired.is_empty() {
            return Ok(0);
        }
        let cf = self.db.cf(CF_PRODUCERS)?;
        let mut wb = WriteBatch::default();
        for pid in &expired {
            wb.delete_cf(cf, self.key.with_i64(*pid));
        }
        // Unsynced like the appends that wrote the entries: a crash that loses the delete
        // brings back state that the next check removes again.
        self.db.write(wb, false)?;
        log.producers.remove(&expired);
        Ok(expired.len())
    }

    /// Producer ids with state on this partition (Kafka's ProducerIdCount).
    pub fn producer_id_count(&self) -> usize {
        self.lock().producers.producers.len()
    }
}
