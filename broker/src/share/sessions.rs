//! Share sessions (KIP-932): per group member on this broker, the partitions its
//! ShareFetch requests cover and the epoch the next request must carry. Epoch 0 opens a
//! session, -1 closes it; every other request must carry exactly the next epoch.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::ResponseError;
use uuid::Uuid;

/// A topic partition as share requests name it.
pub(crate) type SharePartitionKey = (Uuid, i32);

/// Epoch that opens a session.
pub(crate) const OPEN_EPOCH: i32 = 0;
/// Epoch that closes a session.
pub(crate) const CLOSE_EPOCH: i32 = -1;

/// One member's session.
#[derive(Debug)]
pub(crate) struct ShareSession {
    /// The epoch the next request must carry.
    pub(crate) next_epoch: i32,
    pub(crate) partitions: BTreeSet<SharePartitionKey>,
    /// The connection that opened it: the session ends with it.
    pub(crate) connection: u64,
}

/// The share sessions of this broker, by (group, member).
#[derive(Debug, Default)]
pub(crate) struct ShareSessions {
    sessions: HashMap<(String, String), ShareSession>,
    max_sessions: usize,
}

impl ShareSessions {
    /// At most `max_sessions` sessions (`group.share.max.share.sessions`).
    pub(crate) fn new(max_sessions: usize) -> Self {
        ShareSessions {
            sessions: HashMap::new(),
            max_sessions,
        }
    }

    /// Opens the member's session on `connection` with `partitions`, replacing any it had
    /// (whose records stay the member's, as in Kafka).
    pub(crate) fn open(
        &mut self,
        group: &str,
        member: &str,
        connection: u64,
        partitions: impl IntoIterator<Item = SharePartitionKey>,
    ) -> Result<BTreeSet<SharePartitionKey>, ResponseError> {
        let key = (group.to_string(), member.to_string());
        if !self.sessions.contains_key(&key) && self.sessions.len() >= self.max_sessions {
            return Err(ResponseError::ShareSessionLimitReached);
        }
        let partitions: BTreeSet<_> = partitions.into_iter().collect();
        self.sessions.insert(
            key,
            ShareSession {
                next_epoch: 1,
                partitions: partitions.clone(),
                connection,
            },
        );
        Ok(partitions)
    }

    /// Takes a request of `epoch` (above 0) in the member's session: adds `added`, drops
    /// `forgotten`, moves the epoch on; returns the session's partitions.
    pub(crate) fn next(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        added: impl IntoIterator<Item = SharePartitionKey>,
        forgotten: &[SharePartitionKey],
    ) -> Result<BTreeSet<SharePartitionKey>, ResponseError> {
        let session = self
            .sessions
            .get_mut(&(group.to_string(), member.to_string()))
            .ok_or(ResponseError::ShareSessionNotFound)?;
        if session.next_epoch != epoch {
            return Err(ResponseError::InvalidShareSessionEpoch);
        }
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.partitions.extend(added);
        for f in forgotten {
            session.partitions.remove(f);
        }
        Ok(session.partitions.clone())
    }

    /// Ends the member's session; its partitions, or SHARE_SESSION_NOT_FOUND.
    pub(crate) fn close(
        &mut self,
        group: &str,
        member: &str,
    ) -> Result<BTreeSet<SharePartitionKey>, ResponseError> {
        self.sessions
            .remove(&(group.to_string(), member.to_string()))
            .map(|s| s.partitions)
            .ok_or(ResponseError::ShareSessionNotFound)
    }

    /// Ends the sessions opened on `connection`: (group, member, partitions) of each.
    pub(crate) fn connection_closed(
        &mut self,
        connection: u64,
    ) -> Vec<(String, String, BTreeSet<SharePartitionKey>)> {
        let keys: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let s = self.sessions.remove(&k)?;
                Some((k.0, k.1, s.partitions))
            })
            .collect()
    }

    /// Whether any session of `group` covers the partition.
    pub(crate) fn uses(&self, group: &str, key: SharePartitionKey) -> bool {
        self.sessions
            .iter()
            .any(|((g, _), s)| g == group && s.partitions.contains(&key))
    }

    /// How many sessions are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_takes_each_epoch_once_in_order() {
        let t = Uuid::from_u128(7);
        let mut s = ShareSessions::new(10);
        assert_eq!(
            s.next("g", "m", 1, [], &[]),
            Err(ResponseError::ShareSessionNotFound)
        );
        s.open("g", "m", 1, [(t, 0)]).unwrap();
        assert_eq!(
            s.next("g", "m", 2, [], &[]),
            Err(ResponseError::InvalidShareSessionEpoch)
        );
        let parts = s.next("g", "m", 1, [(t, 1)], &[(t, 0)]).unwrap();
        assert_eq!(parts.into_iter().collect::<Vec<_>>(), vec![(t, 1)]);
        assert_eq!(
            s.next("g", "m", 1, [], &[]),
            Err(ResponseError::InvalidShareSessionEpoch)
        );
        s.next("g", "m", 2, [], &[]).unwrap();
        assert_eq!(s.close("g", "m").unwrap().len(), 1);
        assert_eq!(s.close("g", "m"), Err(ResponseError::ShareSessionNotFound));
    }

    #[test]
    fn sessions_are_bounded_and_end_with_their_connection() {
        let t = Uuid::from_u128(7);
        let mut s = ShareSessions::new(2);
        s.open("g", "a", 1, [(t, 0)]).unwrap();
        s.open("g", "b", 2, [(t, 0)]).unwrap();
        assert_eq!(
            s.open("g", "c", 3, []),
            Err(ResponseError::ShareSessionLimitReached)
        );
        // Reopening an existing session is not a new one.
        s.open("g", "a", 1, [(t, 1)]).unwrap();
        let ended = s.connection_closed(1);
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].0.as_str(), ended[0].1.as_str()), ("g", "a"));
        assert_eq!(s.len(), 1);
    }
}
