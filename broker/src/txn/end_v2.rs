//! EndTxn under transactions v2 (KIP-890 part 2), as Kafka 4's coordinator decides it:
//! every end bumps the producer epoch in its Prepare step, so the markers carry an epoch
//! no straggling batch of the transaction has, and the producer goes on with it. At an
//! exhausted epoch the coordinator also takes the next producer id, which the Complete
//! step moves to. A client may abort with nothing added (from Empty or a completed
//! transaction), which bumps the epoch too.

use kafka_protocol::ResponseError;
use sluice_storage::{TxnRecord, TxnState};

use super::{ProducerRef, TxnCoordinator, EPOCH_EXHAUSTED};

/// How the epoch a request names relates to the record's.
struct EpochMatch {
    /// The request names the record's producer id and epoch.
    same: bool,
    /// A retry of an end that bumped the epoch: the request names the epoch before.
    retry: bool,
}

fn epoch_match(record: &TxnRecord, producer: ProducerRef) -> EpochMatch {
    let same_id = record.producer_id == producer.producer_id;
    let retry_on_bump =
        same_id && i32::from(record.producer_epoch) == i32::from(producer.producer_epoch) + 1;
    // The end that exhausted the epoch moved the producer to the next producer id.
    let retry_on_overflow = record.previous_producer_id == producer.producer_id
        && producer.producer_epoch == EPOCH_EXHAUSTED
        && record.producer_epoch == 0;
    EpochMatch {
        same: same_id && record.producer_epoch == producer.producer_epoch,
        retry: retry_on_bump || retry_on_overflow,
    }
}

impl TxnCoordinator {
    /// EndTxn v5+; the caller holds the id's lock. Answers with the producer id and epoch
    /// the producer goes on with.
    pub(super) async fn end_txn_v2(
        &self,
        id: &str,
        producer: ProducerRef,
        commit: bool,
    ) -> Result<ProducerRef, ResponseError> {
        if id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        self.check_coordinator(id)?;
        let record = self
            .get(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let m = epoch_match(&record, producer);
        if record.producer_id != producer.producer_id && !m.retry {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        let valid = match record.state {
            TxnState::Ongoing | TxnState::Empty => m.same,
            TxnState::PrepareCommit | TxnState::PrepareAbort => m.retry,
            TxnState::CompleteCommit | TxnState::CompleteAbort => m.same || m.retry,
        };
        if !valid {
            return Err(ResponseError::ProducerFenced);
        }
        match (record.state, commit) {
            (TxnState::Ongoing, _) => self.end_bumped(id, record, commit).await,
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            // A retry of an end that completed: the epoch it gave.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if m.retry => {
                Ok(ProducerRef::of(&record))
            }
            // An abort with no partition added: nothing to mark, but the epoch moves on.
            // (A retried abort after a commit is not one: the commit stands.)
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false)
                if !m.retry =>
            {
                self.end_bumped(id, record, false).await
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Prepare with the epoch bumped (and the next producer id taken when it is
    /// exhausted), markers, Complete.
    async fn end_bumped(
        &self,
        id: &str,
        mut record: TxnRecord,
        commit: bool,
    ) -> Result<ProducerRef, ResponseError> {
        if record.producer_epoch >= EPOCH_EXHAUSTED {
            record.next_producer_id = self.allocate_producer_id()?;
        }
        record.last_producer_epoch = record.producer_epoch;
        record.producer_epoch = record.producer_epoch.saturating_add(1);
        let ended = self.end_transaction(id, record, commit).await?;
        // Markers not all written yet leave the record prepared with the bumped epoch and
        // not yet on the next producer id: the answer names where the producer goes on.
        if ended.next_producer_id >= 0 {
            return Ok(ProducerRef {
                producer_id: ended.next_producer_id,
                producer_epoch: 0,
            });
        }
        Ok(ProducerRef::of(&ended))
    }
}
