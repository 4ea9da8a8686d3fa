//! Which keys (group ids, transactional ids) a coordinator answers for: the keys whose
//! partition of the coordinator's internal topic this broker leads, once that partition's
//! state is loaded (Kafka's NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS). On a single
//! node that is every partition, loaded at start-up or when the topic is created.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use kafka_protocol::ResponseError;

use crate::internal_topics::partition_for;

/// Where a led partition's state stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Being read from the log.
    Loading,
    /// In memory: requests are answered.
    Loaded,
}

/// Whether the cluster metadata names this broker the leader of a partition.
pub(crate) type LeaderHint = Box<dyn Fn(i32) -> bool + Send + Sync>;

/// The partitions of its internal topic a coordinator owns.
pub(crate) struct Ownership {
    /// The internal topic's partition count.
    partitions: i32,
    /// `None`: every key (a unit test's coordinator, with nothing to load).
    owned: Mutex<Option<HashMap<i32, Load>>>,
    /// In a cluster: a partition this broker leads but has not started loading yet (the
    /// new leadership still on its way from the view) is COORDINATOR_LOAD_IN_PROGRESS, as
    /// in Kafka, rather than NOT_COORDINATOR for a client that was just sent here.
    leads: OnceLock<LeaderHint>,
}

impl Ownership {
    /// Owns every key.
    #[cfg(test)]
    pub(crate) fn everything(partitions: i32) -> Self {
        Ownership {
            partitions,
            owned: Mutex::new(None),
            leads: OnceLock::new(),
        }
    }

    /// Owns nothing until partitions are loaded.
    pub(crate) fn nothing(partitions: i32) -> Self {
        Ownership {
            partitions,
            owned: Mutex::new(Some(HashMap::new())),
            leads: OnceLock::new(),
        }
    }

    /// Sets where this broker's leadership is known before it reaches the coordinator.
    pub(crate) fn set_leader_hint(&self, hint: LeaderHint) {
        let _ = self.leads.set(hint);
    }

    /// The partition that holds `key`'s state.
    pub(crate) fn partition_of(&self, key: &str) -> i32 {
        partition_for(key, self.partitions)
    }

    /// Whether this coordinator answers for the key now.
    pub(crate) fn check(&self, key: &str) -> Result<(), ResponseError> {
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        let Some(owned) = &*owned else {
            return Ok(());
        };
        let partition = self.partition_of(key);
        match owned.get(&partition) {
            Some(Load::Loaded) => Ok(()),
            Some(Load::Loading) => Err(ResponseError::CoordinatorLoadInProgress),
            None if self.leads.get().is_some_and(|leads| leads(partition)) => {
                Err(ResponseError::CoordinatorLoadInProgress)
            }
            None => Err(ResponseError::NotCoordinator),
        }
    }

    /// Marks a partition as being loaded; false for an owner of every key.
    pub(crate) fn start_loading(&self, partition: i32) -> bool {
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *owned {
            Some(owned) => {
                owned.insert(partition, Load::Loading);
                true
            }
            None => false,
        }
    }

    /// Marks a partition loaded, unless it was given up meanwhile.
    pub(crate) fn loaded(&self, partition: i32) -> bool {
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        match owned.as_mut().and_then(|o| o.get_mut(&partition)) {
            Some(load) => {
                *load = Load::Loaded;
                true
            }
            None => false,
        }
    }

    /// Gives a partition up.
    pub(crate) fn release(&self, partition: i32) {
        if let Some(owned) = &mut *self.owned.lock().unwrap_or_else(|p| p.into_inner()) {
            owned.remove(&partition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_of_everything_loads_nothing() {
        let o = Ownership::everything(50);
        assert_eq!(o.check("any"), Ok(()));
        assert!(!o.start_loading(3));
    }

    #[test]
    fn a_cluster_member_answers_only_for_loaded_partitions() {
        let o = Ownership::nothing(50);
        // "my-group" lives in partition 12 (Java's String.hashCode).
        assert_eq!(o.partition_of("my-group"), 12);
        assert_eq!(o.check("my-group"), Err(ResponseError::NotCoordinator));
        assert!(o.start_loading(12));
        assert_eq!(
            o.check("my-group"),
            Err(ResponseError::CoordinatorLoadInProgress)
        );
        assert!(o.loaded(12));
        assert_eq!(o.check("my-group"), Ok(()));
        o.release(12);
        assert_eq!(o.check("my-group"), Err(ResponseError::NotCoordinator));
        // A load that finishes after the partition was given up does not own it.
        assert!(!o.loaded(12));
        assert_eq!(o.check("my-group"), Err(ResponseError::NotCoordinator));
    }

    #[test]
    fn a_leader_not_loading_yet_is_loading_soon() {
        let o = Ownership::nothing(50);
        o.set_leader_hint(Box::new(|p| p == 12));
        assert_eq!(
            o.check("my-group"),
            Err(ResponseError::CoordinatorLoadInProgress)
        );
        // "a" is in partition 47, which another broker leads.
        assert_eq!(o.check("a"), Err(ResponseError::NotCoordinator));
    }
}
