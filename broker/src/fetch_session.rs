//! Incremental fetch sessions (KIP-227): the broker remembers a consumer's partitions and
//! fetch positions so that later requests and responses carry only what changed. The cache
//! and its eviction follow Kafka's `FetchSessionCacheShard` as one shard: Kafka splits its
//! slots over 8 shards only to spread lock contention.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use uuid::Uuid;

/// Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`: a session unused this long is stale
/// and evicted first; one created less than this long ago may only be evicted by a
/// privileged (follower) session, and only when it is not privileged itself.
pub(crate) const EVICTION_AGE: Duration = Duration::from_millis(120_000);

/// A partition as a session knows it: by topic id in a session of Fetch v13+, by topic
/// name below (Kafka's `CachedPartition` equality).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TopicKey {
    Name(String),
    Id(Uuid),
}

/// A topic and a partition index, as a session keys its partitions.
pub(crate) type PartitionKey = (TopicKey, i32);

/// What a session remembers of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPartition {
    pub(crate) fetch_offset: i64,
    pub(crate) max_bytes: i32,
    /// High watermark and log start offset last sent, to tell whether anything changed.
    pub(crate) last_high_watermark: i64,
    pub(crate) last_log_start_offset: i64,
}

/// One fetch session.
#[derive(Debug)]
pub(crate) struct Session {
    /// The epoch the next request must carry.
    pub(crate) next_epoch: i32,
    pub(crate) partitions: IndexMap<PartitionKey, SessionPartition>,
    /// Created by a follower fetch (replica id >= 0).
    privileged: bool,
    /// Created by Fetch v13+, which names topics by id.
    uses_topic_ids: bool,
    created: Instant,
    last_used: Instant,
    /// The size the eviction order knows the session by.
    cached_size: usize,
}

/// Why a session request is refused (a top-level Fetch error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionError {
    /// FETCH_SESSION_ID_NOT_FOUND.
    NotFound,
    /// INVALID_FETCH_SESSION_EPOCH.
    InvalidEpoch,
    /// FETCH_SESSION_TOPIC_ID_ERROR: a v13+ request to a session of names or the reverse.
    TopicIdMismatch,
}

/// Kafka's `EvictableKey`: the less valuable session sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EvictableKey {
    privileged: bool,
    size: usize,
    id: i32,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<i32, Session>,
    last_used: BTreeSet<(Instant, i32)>,
    evictable_by_all: BTreeSet<EvictableKey>,
    evictable_by_privileged: BTreeSet<EvictableKey>,
}

impl Sessions {
    fn remove(&mut self, id: i32) -> bool {
        let Some(s) = self.by_id.remove(&id) else {
            return false;
        };
        self.last_used.remove(&(s.last_used, id));
        let key = EvictableKey {
            privileged: s.privileged,
            size: s.cached_size,
            id,
        };
        self.evictable_by_all.remove(&key);
        self.evictable_by_privileged.remove(&key);
        true
    }

    /// Kafka's `touch`: marks the session used and files it under its current size.
    fn touch(&mut self, id: i32, now: Instant) {
        let Some(s) = self.by_id.get_mut(&id) else {
            return;
        };
        self.last_used.remove(&(s.last_used, id));
        s.last_used = now;
        self.last_used.insert((now, id));
        let old = EvictableKey {
            privileged: s.privileged,
            size: s.cached_size,
            id,
        };
        self.evictable_by_all.remove(&old);
        self.evictable_by_privileged.remove(&old);
        s.cached_size = s.partitions.len();
        let key = EvictableKey {
            privileged: s.privileged,
            size: s.cached_size,
            id,
        };
        let old_enough = now.saturating_duration_since(s.created) > EVICTION_AGE;
        if !s.privileged || old_enough {
            self.evictable_by_privileged.insert(key);
        }
        if old_enough {
            self.evictable_by_all.insert(key);
        }
    }

    /// Kafka's `tryEvict`: the stalest session if unused past [`EVICTION_AGE`], else the
    /// least valuable evictable one if the newcomer is worth at least as much.
    fn try_evict(&mut self, newcomer: EvictableKey, now: Instant) -> bool {
        let Some(&(last_used, oldest)) = self.last_used.first() else {
            return false;
        };
        if now.saturating_duration_since(last_used) > EVICTION_AGE {
            tracing::debug!(session = oldest, "evicting stale fetch session");
            return self.remove(oldest);
        }
        let map = if newcomer.privileged {
            &self.evictable_by_privileged
        } else {
            &self.evictable_by_all
        };
        match map.first() {
            Some(&victim) if newcomer >= victim => {
                tracing::debug!(
                    session = victim.id,
                    "evicting a less valuable fetch session"
                );
                self.remove(victim.id)
            }
            _ => false,
        }
    }
}

/// The bounded session cache (`max.incremental.fetch.session.cache.slots` entries).
pub(crate) struct FetchSessionCache {
    sessions: Mutex<Sessions>,
    capacity: usize,
}

impl FetchSessionCache {
    /// A cache of at most `capacity` sessions; 0 turns sessions off.
    pub(crate) fn new(capacity: usize) -> Self {
        FetchSessionCache {
            sessions: Mutex::new(Sessions::default()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a session holding `partitions` if there is room or a session may be
    /// evicted for it; returns its id, or 0 (no session) as Kafka's `maybeCreateSession`.
    pub(crate) fn create(
        &self,
        now: Instant,
        privileged: bool,
        uses_topic_ids: bool,
        partitions: IndexMap<PartitionKey, SessionPartition>,
    ) -> i32 {
        let mut sessions = self.lock();
        let newcomer = EvictableKey {
            privileged,
            size: partitions.len(),
            id: 0,
        };
        if sessions.by_id.len() >= self.capacity && !sessions.try_evict(newcomer, now) {
            tracing::debug!(privileged, size = newcomer.size, "no fetch session created");
            return 0;
        }
        let id = loop {
            let id = rand::random::<i32>() & i32::MAX;
            if id != 0 && !sessions.by_id.contains_key(&id) {
                break id;
            }
        };
        sessions.by_id.insert(
            id,
            Session {
                next_epoch: 1,
                partitions,
                privileged,
                uses_topic_ids,
                created: now,
                last_used: now,
                cached_size: 0,
            },
        );
        sessions.touch(id, now);
        id
    }

    /// Removes a session; true if it existed.
    pub(crate) fn remove(&self, id: i32) -> bool {
        self.lock().remove(id)
    }

    /// Kafka's incremental branch of `FetchManager.newContext`: checks the epoch and the
    /// request's topic naming, lets `update` change the partitions, then either closes a
    /// session left empty (`Ok(None)`: answer sessionless) or advances its epoch and returns
    /// its partitions.
    pub(crate) fn incremental(
        &self,
        id: i32,
        epoch: i32,
        uses_topic_ids: bool,
        now: Instant,
        update: impl FnOnce(&mut IndexMap<PartitionKey, SessionPartition>),
    ) -> Result<Option<IndexMap<PartitionKey, SessionPartition>>, SessionError> {
        let mut sessions = self.lock();
        let session = sessions.by_id.get_mut(&id).ok_or(SessionError::NotFound)?;
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(SessionError::TopicIdMismatch);
        }
        update(&mut session.partitions);
        if session.partitions.is_empty() {
            sessions.remove(id);
            return Ok(None);
        }
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        let partitions = session.partitions.clone();
        sessions.touch(id, now);
        Ok(Some(partitions))
    }

    /// Records what a response told the client, if the session still exists.
    pub(crate) fn update(&self, id: i32, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self.lock().by_id.get_mut(&id) {
            f(s);
        }
    }

    /// How many sessions the cache holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(n: usize) -> IndexMap<PartitionKey, SessionPartition> {
        (0..n)
            .map(|i| {
                (
                    (TopicKey::Name("t".into()), i as i32),
                    SessionPartition {
                        fetch_offset: 0,
                        max_bytes: 1,
                        last_high_watermark: -1,
                        last_log_start_offset: -1,
                    },
                )
            })
            .collect()
    }

    fn bump(cache: &FetchSessionCache, id: i32, epoch: i32, now: Instant) -> bool {
        cache.incremental(id, epoch, false, now, |_| ()).is_ok()
    }

    #[test]
    fn epochs_must_follow_and_unknown_ids_fail() {
        let now = Instant::now();
        let cache = FetchSessionCache::new(2);
        let id = cache.create(now, false, false, partitions(1));
        assert!(bump(&cache, id, 1, now));
        assert_eq!(
            cache.incremental(id, 1, false, now, |_| ()),
            Err(SessionError::InvalidEpoch)
        );
        assert!(bump(&cache, id, 2, now));
        assert_eq!(
            cache.incremental(id, 3, true, now, |_| ()),
            Err(SessionError::TopicIdMismatch)
        );
        assert_eq!(
            cache.incremental(id ^ 1, 3, false, now, |_| ()),
            Err(SessionError::NotFound)
        );
        assert!(cache.remove(id));
        assert_eq!(
            cache.incremental(id, 3, false, now, |_| ()),
            Err(SessionError::NotFound)
        );
    }

    #[test]
    fn a_session_left_empty_is_closed() {
        let now = Instant::now();
        let cache = FetchSessionCache::new(2);
        let id = cache.create(now, false, false, partitions(2));
        let left = cache.incremental(id, 1, false, now, |p| p.clear());
        assert_eq!(left.map(|p| p.is_some()), Ok(false));
        assert_eq!(cache.len(), 0);
        assert_eq!(
            cache.incremental(id, 2, false, now, |_| ()),
            Err(SessionError::NotFound)
        );
    }

    #[test]
    fn fresh_consumer_sessions_are_not_evicted_by_consumers() {
        let now = Instant::now();
        let cache = FetchSessionCache::new(2);
        let a = cache.create(now, false, false, partitions(1));
        let b = cache.create(now, false, false, partitions(1));
        assert_eq!(cache.create(now, false, false, partitions(5)), 0);
        assert!(bump(&cache, a, 1, now) && bump(&cache, b, 1, now));
    }

    #[test]
    fn a_follower_evicts_the_smallest_consumer_session() {
        let now = Instant::now();
        let cache = FetchSessionCache::new(2);
        let big = cache.create(now, false, false, partitions(3));
        let small = cache.create(now, false, false, partitions(1));
        let follower = cache.create(now, true, false, partitions(1));
        assert_ne!(follower, 0);
        assert!(!bump(&cache, small, 1, now));
        assert!(bump(&cache, big, 1, now));
        // Fresh privileged sessions are evictable by no one.
        let second = cache.create(now, true, false, partitions(9));
        assert_ne!(second, 0);
        assert!(!bump(&cache, big, 2, now));
        assert_eq!(cache.create(now, true, false, partitions(9)), 0);
        assert!(bump(&cache, follower, 1, now));
    }

    #[test]
    fn stale_sessions_go_first() {
        let t0 = Instant::now();
        let cache = FetchSessionCache::new(2);
        let stale = cache.create(t0, true, false, partitions(9));
        let later = t0 + Duration::from_secs(100);
        let used = cache.create(later, true, false, partitions(9));
        let now = t0 + EVICTION_AGE + Duration::from_millis(1);
        let fresh = cache.create(now, false, false, partitions(1));
        assert_ne!(fresh, 0);
        assert!(!bump(&cache, stale, 1, now));
        assert!(bump(&cache, used, 1, now));
    }

    #[test]
    fn old_sessions_are_evicted_by_larger_consumers_only() {
        let t0 = Instant::now();
        let cache = FetchSessionCache::new(1);
        let old = cache.create(t0, false, false, partitions(3));
        // Used recently (not stale) but created long ago: evictable by all.
        let now = t0 + EVICTION_AGE + Duration::from_secs(1);
        assert!(bump(&cache, old, 1, now));
        // The newcomer's id counts as 0, so an equal size is not enough.
        assert_eq!(cache.create(now, false, false, partitions(3)), 0);
        let bigger = cache.create(now, false, false, partitions(4));
        assert_ne!(bigger, 0);
        assert!(!bump(&cache, old, 2, now));
    }

    #[test]
    fn no_slots_means_no_sessions() {
        let cache = FetchSessionCache::new(0);
        assert_eq!(cache.create(Instant::now(), true, false, partitions(1)), 0);
    }
}
