//! Replication quotas, as Kafka's: `leader.replication.throttled.rate` caps the bytes a
//! leader sends for the replicas its topics list in `leader.replication.throttled.replicas`,
//! and `follower.replication.throttled.rate` the bytes a follower fetches for those in
//! `follower.replication.throttled.replicas` (`partition:broker` pairs naming this broker,
//! or `*`). Only a follower out of the ISR is throttled: one in sync must keep up with
//! producers. While the measured rate is above the quota, a throttled partition is left
//! out of the fetch (the leader answers it without records; the follower does not ask).
//!
//! The rate is Kafka's: the bytes of the last 11 one-second windows over the time they
//! span, counted as at least 10 s, so a quota lets a burst of ten seconds' worth through
//! before it holds.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_storage::Storage;

/// Kafka's `replication.quota.window.num`.
const WINDOWS: usize = 11;
/// Kafka's `replication.quota.window.size.seconds`.
const WINDOW: Duration = Duration::from_secs(1);

/// No quota: Kafka's `Long.MAX_VALUE`.
pub(crate) const UNLIMITED: u64 = i64::MAX as u64;

/// The topic config that lists the replicas a leader throttles.
pub(crate) const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic config that lists the replicas a follower throttles.
pub(crate) const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// The measured replication rate of one side (leader or follower) of this broker.
#[derive(Default)]
pub(crate) struct ReplicationQuota {
    /// Window start and bytes, oldest first.
    windows: Mutex<VecDeque<(Instant, u64)>>,
}

impl ReplicationQuota {
    /// Whether the rate measured now is above `limit` bytes/s.
    pub(crate) fn exceeded(&self, limit: u64) -> bool {
        self.exceeded_at(limit, Instant::now())
    }

    /// Counts bytes replicated for throttled partitions.
    pub(crate) fn record(&self, bytes: u64) {
        self.record_at(bytes, Instant::now());
    }

    fn exceeded_at(&self, limit: u64, now: Instant) -> bool {
        if limit >= UNLIMITED {
            return false;
        }
        let mut windows = self.lock();
        expire(&mut windows, now);
        let Some((oldest, _)) = windows.front() else {
            return false;
        };
        let bytes: u64 = windows.iter().map(|(_, b)| b).sum();
        let span = now
            .saturating_duration_since(*oldest)
            .max(WINDOW * (WINDOWS as u32 - 1));
        bytes as f64 / span.as_secs_f64() > limit as f64
    }

    fn record_at(&self, bytes: u64, now: Instant) {
        if bytes == 0 {
            return;
        }
        let mut windows = self.lock();
        expire(&mut windows, now);
        match windows.back_mut() {
            Some((start, b)) if now.saturating_duration_since(*start) < WINDOW => *b += bytes,
            _ => windows.push_back((now, bytes)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, u64)>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drops windows older than the measured span.
fn expire(windows: &mut VecDeque<(Instant, u64)>, now: Instant) {
    while windows
        .front()
        .is_some_and(|(start, _)| now.saturating_duration_since(*start) >= WINDOW * WINDOWS as u32)
    {
        windows.pop_front();
    }
}

/// Whether a topic's `config` (one of the `*.replication.throttled.replicas`) names
/// `partition` on `broker`.
pub(crate) fn lists(config: &str, partition: i32, broker: i32) -> bool {
    let config = config.trim();
    if config == "*" {
        return true;
    }
    config.split(',').any(|item| {
        let mut parts = item.trim().split(':');
        let p = parts.next().and_then(|p| p.trim().parse::<i32>().ok());
        let b = parts.next().and_then(|b| b.trim().parse::<i32>().ok());
        p == Some(partition) && b == Some(broker)
    })
}

/// Whether `storage`'s topic lists `partition` on `broker` in the topic config `name`.
pub(crate) fn throttled(
    storage: &Storage,
    name: &str,
    topic: &str,
    partition: i32,
    broker: i32,
) -> bool {
    storage
        .topic(topic)
        .and_then(|t| {
            t.record
                .configs
                .get(name)
                .map(|v| lists(v, partition, broker))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_lists_name_partitions_on_brokers_or_everything() {
        assert!(lists("*", 3, 1));
        assert!(lists(" 0:1 , 1:2,2:3", 1, 2));
        assert!(!lists("0:1,1:2", 1, 1));
        assert!(!lists("", 0, 1));
        assert!(!lists("junk", 0, 1));
    }

    #[test]
    fn a_quota_holds_once_ten_seconds_of_its_rate_went_through() {
        let q = ReplicationQuota::default();
        let t0 = Instant::now();
        let limit = 1_000;
        assert!(!q.exceeded_at(limit, t0));
        // 9,000 bytes in the first second: under 10 s at 1,000 bytes/s.
        q.record_at(9_000, t0);
        assert!(!q.exceeded_at(limit, t0 + Duration::from_millis(500)));
        q.record_at(2_000, t0 + Duration::from_millis(600));
        assert!(q.exceeded_at(limit, t0 + Duration::from_millis(700)));
        // Nothing more: the rate falls as the span grows, and the windows expire.
        assert!(!q.exceeded_at(limit, t0 + Duration::from_secs(11)));
        assert!(!q.exceeded_at(limit, t0 + Duration::from_secs(12)));
        assert!(!q.exceeded_at(UNLIMITED, t0));
    }
}
