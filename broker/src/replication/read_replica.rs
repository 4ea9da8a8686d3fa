//! Consumers reading from followers (KIP-392): a follower serves a consumer's fetch in its
//! leader epoch, up to its own high watermark, and a leader with the rack-aware replica
//! selector sends a consumer that names its rack to an in-sync replica there.

use super::epochs::check_epoch;
use super::manager::{NotHere, ReplicaManager, Role};

impl ReplicaManager {
    /// Whether a consumer's fetch may read this broker's replica: the leader's always; a
    /// follower's when the consumer may read from followers (Fetch v11 and later, as
    /// Kafka's `fetchOnlyFromLeader`), in the leader epoch the consumer knows. `Ok(true)`
    /// when a follower serves it.
    pub(crate) fn check_consumer_read(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
        followers_allowed: bool,
    ) -> Result<bool, NotHere> {
        match self.check_leader(topic, partition, current_leader_epoch) {
            Ok(_) => Ok(false),
            Err(not_leader) if !followers_allowed || self.fenced() => Err(not_leader),
            Err(not_leader) => {
                let Some(replica) = self.replica(topic, partition) else {
                    return Err(not_leader);
                };
                let role = replica.role();
                match &*role {
                    Role::Follower {
                        leader,
                        leader_epoch,
                    } => check_epoch(current_leader_epoch, *leader_epoch, *leader).map(|()| true),
                    _ => Err(not_leader),
                }
            }
        }
    }

    /// The in-sync replicas of a partition this broker leads.
    pub(crate) fn leader_isr(&self, topic: &str, partition: i32) -> Option<Vec<i32>> {
        let replica = self.replica(topic, partition)?;
        let role = replica.role();
        match &*role {
            Role::Leader(l) => Some(l.isr.clone()),
            _ => None,
        }
    }
}
