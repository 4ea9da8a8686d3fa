//! Incremental fetch sessions (KIP-227): the broker remembers a consumer's partitions and
//! fetch positions so that later requests and responses carry only what changed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use indexmap::IndexMap;
use uuid::Uuid;

/// A partition as a session knows it, keyed by topic name and index.
pub(crate) type PartitionKey = (String, i32);

/// What a session remembers of one partition.
#[derive(Debug, Clone)]
pub(crate) struct SessionPartition {
    pub(crate) topic_id: Uuid,
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
    last_used: Instant,
}

/// Why a session request is refused (a top-level Fetch error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionError {
    /// FETCH_SESSION_ID_NOT_FOUND.
    NotFound,
    /// INVALID_FETCH_SESSION_EPOCH.
    InvalidEpoch,
}

/// The bounded session cache; the least recently used session is evicted when full.
pub(crate) struct FetchSessionCache {
    sessions: Mutex<HashMap<i32, Session>>,
    capacity: usize,
}

impl FetchSessionCache {
    pub(crate) fn new(capacity: usize) -> Self {
        FetchSessionCache {
            sessions: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a session holding `partitions`; returns its id (never 0).
    pub(crate) fn create(&self, partitions: IndexMap<PartitionKey, SessionPartition>) -> i32 {
        let mut sessions = self.lock();
        if sessions.len() >= self.capacity {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id)
            {
                sessions.remove(&oldest);
            }
        }
        let id = loop {
            let id = rand::random::<i32>() & i32::MAX;
            if id != 0 && !sessions.contains_key(&id) {
                break id;
            }
        };
        sessions.insert(
            id,
            Session {
                next_epoch: 1,
                partitions,
                last_used: Instant::now(),
            },
        );
        id
    }

    /// Removes a session (a client closing it with epoch -1).
    pub(crate) fn remove(&self, id: i32) {
        self.lock().remove(&id);
    }

    /// Runs `f` on the session if `epoch` is the one it expects, then advances the epoch.
    pub(crate) fn with_session<R>(
        &self,
        id: i32,
        epoch: i32,
        f: impl FnOnce(&mut Session) -> R,
    ) -> Result<R, SessionError> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(&id).ok_or(SessionError::NotFound)?;
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.last_used = Instant::now();
        Ok(f(session))
    }

    /// Records what a response told the client, if the session still exists.
    pub(crate) fn update(&self, id: i32, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self.lock().get_mut(&id) {
            f(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_must_follow_and_unknown_ids_fail() {
        let cache = FetchSessionCache::new(2);
        let id = cache.create(IndexMap::new());
        assert!(cache.with_session(id, 1, |_| ()).is_ok());
        assert_eq!(
            cache.with_session(id, 1, |_| ()),
            Err(SessionError::InvalidEpoch)
        );
        assert!(cache.with_session(id, 2, |_| ()).is_ok());
        assert_eq!(
            cache.with_session(id ^ 1, 1, |_| ()),
            Err(SessionError::NotFound)
        );
        cache.remove(id);
        assert_eq!(
            cache.with_session(id, 3, |_| ()),
            Err(SessionError::NotFound)
        );
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let cache = FetchSessionCache::new(2);
        let a = cache.create(IndexMap::new());
        let b = cache.create(IndexMap::new());
        assert!(cache.with_session(a, 1, |_| ()).is_ok());
        let _c = cache.create(IndexMap::new());
        assert_eq!(
            cache.with_session(b, 1, |_| ()),
            Err(SessionError::NotFound)
        );
        assert!(cache.with_session(a, 2, |_| ()).is_ok());
    }
}
