//! The transaction coordinator's background work: completing prepared transactions,
//! aborting those past their timeout, and forgetting idle transactional ids.

use std::sync::Arc;
use std::time::Duration;

use sluice_storage::TxnState;
use tokio::sync::watch;

use super::TxnCoordinator;

/// How often prepared transactions are looked for to complete.
const COMPLETE_RETRY: Duration = Duration::from_millis(500);

impl TxnCoordinator {
    /// Completes every transaction left between Prepare and Complete (by a crash, or a
    /// marker write that failed); run after a load and every half second.
    pub(crate) async fn complete_prepared(&self) {
        let prepared: Vec<String> = self
            .read()
            .by_id
            .iter()
            .filter(|(_, r)| matches!(r.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
            .map(|(id, _)| id.clone())
            .collect();
        for id in prepared {
            let _guard = self.lock_id(&id).await;
            let Some(record) = self.get(&id) else {
                continue;
            };
            if !matches!(
                record.state,
                TxnState::PrepareCommit | TxnState::PrepareAbort
            ) {
                continue;
            }
            tracing::info!(transactional_id = %id, state = record.state.name(), "completing a prepared transaction");
            if let Err(e) = self.complete(&id, record).await {
                tracing::error!(transactional_id = %id, error = ?e, "completing a prepared transaction failed; will retry");
            }
        }
    }

    /// Aborts every Ongoing transaction older than its timeout, fencing its producer
    /// with a bumped epoch as Kafka does; returns how many were aborted.
    pub(crate) async fn abort_timed_out(&self, now: i64) -> usize {
        let expired: Vec<String> = self
            .read()
            .by_id
            .iter()
            .filter(|(_, r)| {
                r.state == TxnState::Ongoing && r.start_ms + i64::from(r.timeout_ms) < now
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut aborted = 0;
        for id in expired {
            let _guard = self.lock_id(&id).await;
            let Some(mut record) = self.get(&id) else {
                continue;
            };
            if !(record.state == TxnState::Ongoing
                && record.start_ms + i64::from(record.timeout_ms) < self.clock.now_ms())
            {
                continue;
            }
            record.producer_epoch = record.producer_epoch.saturating_add(1);
            record.last_producer_epoch = -1;
            tracing::info!(transactional_id = %id, producer_id = record.producer_id, timeout_ms = record.timeout_ms, "aborting a transaction that exceeded its timeout");
            match self.end_transaction(&id, record, false).await {
                Ok(_) => aborted += 1,
                Err(e) => {
                    tracing::error!(transactional_id = %id, error = ?e, "aborting a timed-out transaction failed")
                }
            }
        }
        aborted
    }

    /// Forgets transactional ids idle for longer than `transactional.id.expiration.ms`.
    pub(crate) async fn expire_ids(&self, now: i64) -> usize {
        let horizon = now.saturating_sub(self.config.id_expiration_ms);
        let idle: Vec<String> = self
            .read()
            .by_id
            .iter()
            .filter(|(_, r)| {
                matches!(
                    r.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && r.last_update_ms <= horizon
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut expired = 0;
        for id in idle {
            let _guard = self.lock_id(&id).await;
            let still_idle = self.get(&id).is_some_and(|r| {
                matches!(
                    r.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && r.last_update_ms <= horizon
            });
            if !still_idle {
                continue;
            }
            if let Err(e) = self.store.delete_txn(&id) {
                tracing::error!(transactional_id = %id, error = %e, "expiring a transactional id failed");
                continue;
            }
            {
                let mut txns = self.write();
                if let Some(r) = txns.by_id.remove(&id) {
                    txns.by_producer.remove(&r.producer_id);
                }
            }
            drop(_guard);
            // Forget the id's lock too, unless a request is already waiting on it.
            let mut locks = self.id_locks.lock().unwrap_or_else(|p| p.into_inner());
            if locks.get(&id).is_some_and(|l| Arc::strong_count(l) == 1) {
                locks.remove(&id);
            }
            expired += 1;
        }
        expired
    }

    /// Runs the timeout and expiry checks until `stop`.
    pub(crate) async fn run_timers(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config.abort_timed_out_interval_ms.max(1) as u64);
        let expire_every =
            Duration::from_millis(self.config.remove_expired_interval_ms.max(1) as u64);
        let mut abort_tick = tokio::time::interval(every);
        abort_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut expire_tick = tokio::time::interval(expire_every);
        expire_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Markers not written at EndTxn (a leader moving) are retried soon: the producer's
        // next transaction waits for them (CONCURRENT_TRANSACTIONS).
        let mut complete_tick = tokio::time::interval(COMPLETE_RETRY);
        complete_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = complete_tick.tick() => self.complete_prepared().await,
                _ = abort_tick.tick() => {
                    let n = self.abort_timed_out(self.clock.now_ms()).await;
                    if n > 0 {
                        tracing::info!(transactions = n, "aborted timed-out transactions");
                    }
                }
                _ = expire_tick.tick() => {
                    let n = self.expire_ids(self.clock.now_ms()).await;
                    if n > 0 {
                        tracing::info!(transactional_ids = n, "expired idle transactional ids");
                    }
                }
                _ = crate::stopped(&mut stop) => return,
            }
        }
    }
}
