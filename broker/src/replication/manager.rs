//! The replicas this broker holds and the role of each (Kafka's ReplicaManager): leaders
//! track their followers and move the high watermark, followers are fetched by the
//! fetchers, and every role follows the cluster metadata's partition states.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::ResponseError;
use sluice_cluster::{ClusterMetadata, ClusterView, Liveness, PartitionState};
use sluice_storage::{now_ms, Partition, Storage};
use tokio::sync::watch;
use uuid::Uuid;

use super::epochs::{check_epoch, diverging, FollowerFetch};
use super::fetcher::Fetchers;
use super::leader::LeaderState;

/// A topic name and partition index.
pub(crate) type TopicPartition = (String, i32);

/// What this broker is for one partition.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// It leads: produce and consume here.
    Leader(LeaderState),
    /// It copies from `leader`.
    Follower {
        /// The leader's node id.
        leader: i32,
        /// The leader epoch this broker follows in.
        leader_epoch: i32,
    },
    /// It holds the data but neither leads nor follows (no leader, or fenced).
    Offline {
        /// The last known leader epoch.
        leader_epoch: i32,
    },
}

/// One local replica.
pub(crate) struct Replica {
    /// The log.
    pub(crate) partition: Arc<Partition>,
    role: Mutex<Role>,
}

impl Replica {
    pub(super) fn role(&self) -> std::sync::MutexGuard<'_, Role> {
        // Roles are replaced whole, so a panic elsewhere cannot leave one half-changed.
        self.role.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a request for a partition cannot be served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotHere {
    /// The Kafka error code.
    pub(crate) error: i16,
    /// The current leader as far as this broker knows (-1: none), for KIP-951.
    pub(crate) leader: i32,
    /// Its leader epoch (-1: unknown).
    pub(crate) leader_epoch: i32,
}

/// Settings of replication, from the broker's properties.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicationSettings {
    /// `replica.lag.time.max.ms`.
    pub(crate) lag_time_max_ms: i64,
}

/// The replicas of this broker and their roles.
pub(crate) struct ReplicaManager {
    pub(super) node_id: i32,
    pub(super) settings: ReplicationSettings,
    pub(super) storage: Arc<Storage>,
    pub(super) meta: Arc<dyn ClusterMetadata>,
    pub(super) replicas: RwLock<HashMap<TopicPartition, Arc<Replica>>>,
    liveness: watch::Receiver<Liveness>,
    fetchers: Fetchers,
    /// Topic ids seen in the cluster view: only these are deleted when the view drops
    /// them, so a view that never named a local topic cannot delete its data.
    pub(super) seen_topics: Mutex<HashSet<Uuid>>,
    /// The partitions this broker leads, with their leader epochs, as of the last view.
    leading: watch::Sender<Arc<Leadership>>,
    /// The brokers live in the latest view: only these join an ISR.
    live: RwLock<HashSet<i32>>,
    pub(super) me: std::sync::Weak<ReplicaManager>,
    /// ISR changes committed as leader, for the metrics.
    pub(super) isr_changes: super::isr::IsrCounts,
    /// What this broker sent as leader for throttled replicas.
    pub(crate) leader_quota: super::throttle::ReplicationQuota,
}

/// Partitions led by this broker and the leader epoch of each.
pub(crate) type Leadership = BTreeMap<TopicPartition, i32>;

impl ReplicaManager {
    /// A manager with no replicas yet; [`ReplicaManager::apply`] gives them roles.
    pub(crate) fn new(
        node_id: i32,
        settings: ReplicationSettings,
        storage: Arc<Storage>,
        meta: Arc<dyn ClusterMetadata>,
        liveness: watch::Receiver<Liveness>,
        fetchers: Fetchers,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| ReplicaManager {
            node_id,
            settings,
            storage,
            meta,
            replicas: RwLock::new(HashMap::new()),
            liveness,
            fetchers,
            seen_topics: Mutex::new(HashSet::new()),
            leading: watch::channel(Arc::new(Leadership::new())).0,
            live: RwLock::new(HashSet::new()),
            me: me.clone(),
            isr_changes: Default::default(),
            leader_quota: Default::default(),
        })
    }

    pub(super) fn replica(&self, topic: &str, partition: i32) -> Option<Arc<Replica>> {
        self.replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    pub(super) fn fenced(&self) -> bool {
        *self.liveness.borrow() == Liveness::Fenced
    }

    /// Stops the fetchers (shutdown); nothing is led any more.
    pub(crate) fn stop(&self) {
        self.fetchers.stop();
        self.leading.send_replace(Arc::new(Leadership::new()));
    }

    /// This broker's id.
    pub(crate) fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The partitions this broker leads, updated after every view is applied.
    pub(crate) fn leadership(&self) -> watch::Receiver<Arc<Leadership>> {
        self.leading.subscribe()
    }

    /// Whether this broker may serve a client's produce or fetch for the partition now:
    /// it leads it, is not fenced, and `current_leader_epoch` (-1: unchecked) matches.
    /// Returns the epoch it leads in.
    pub(crate) fn check_leader(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<i32, NotHere> {
        let not_leader = |leader, leader_epoch| NotHere {
            error: ResponseError::NotLeaderOrFollower.code(),
            leader,
            leader_epoch,
        };
        let Some(replica) = self.replica(topic, partition) else {
            return Err(not_leader(-1, -1));
        };
        let role = replica.role();
        match &*role {
            Role::Leader(l) if self.fenced() => Err(not_leader(-1, l.leader_epoch)),
            Role::Leader(l) => check_epoch(current_leader_epoch, l.leader_epoch, self.node_id)
                .map(|()| l.leader_epoch),
            Role::Follower {
                leader,
                leader_epoch,
            } => Err(not_leader(*leader, *leader_epoch)),
            Role::Offline { leader_epoch } => Err(not_leader(-1, *leader_epoch)),
        }
    }

    /// `min.insync.replicas` for an `acks=all` produce: NOT_ENOUGH_REPLICAS when the ISR
    /// is smaller.
    pub(crate) fn check_min_isr(
        &self,
        topic: &str,
        partition: i32,
        min_isr: i32,
    ) -> Result<(), i16> {
        let Some(replica) = self.replica(topic, partition) else {
            return Ok(());
        };
        let role = replica.role();
        match &*role {
            Role::Leader(l) if (l.isr.len() as i32) < min_isr => {
                Err(ResponseError::NotEnoughReplicas.code())
            }
            _ => Ok(()),
        }
    }

    /// After the leader appended: with an ISR of one the high watermark moves at once.
    pub(crate) fn appended(&self, topic: &str, partition: i32) {
        if let Some(replica) = self.replica(topic, partition) {
            self.advance_high_watermark(&replica);
        }
    }

    /// Waits until the high watermark passes `last_offset` (`acks=all`). Errors: the
    /// leadership moved (NOT_LEADER_OR_FOLLOWER), the ISR fell below `min_isr` after the
    /// append (NOT_ENOUGH_REPLICAS_AFTER_APPEND), or the time ran out (REQUEST_TIMED_OUT).
    pub(crate) async fn wait_replicated(
        &self,
        topic: &str,
        partition: i32,
        last_offset: i64,
        min_isr: i32,
        timeout: Duration,
    ) -> Result<(), i16> {
        let Some(replica) = self.replica(topic, partition) else {
            return Err(ResponseError::NotLeaderOrFollower.code());
        };
        let epoch = match &*replica.role() {
            Role::Leader(l) => l.leader_epoch,
            _ => return Err(ResponseError::NotLeaderOrFollower.code()),
        };
        let mut hw = replica.partition.subscribe();
        let mut liveness = self.liveness.clone();
        let wait = async {
            loop {
                if *hw.borrow_and_update() > last_offset {
                    let role = replica.role();
                    return match &*role {
                        Role::Leader(l) if (l.isr.len() as i32) < min_isr => {
                            Err(ResponseError::NotEnoughReplicasAfterAppend.code())
                        }
                        _ => Ok(()),
                    };
                }
                let still_leader =
                    matches!(&*replica.role(), Role::Leader(l) if l.leader_epoch == epoch);
                if !still_leader || *liveness.borrow_and_update() == Liveness::Fenced {
                    return Err(ResponseError::NotLeaderOrFollower.code());
                }
                tokio::select! {
                    changed = hw.changed() => if changed.is_err() {
                        return Err(ResponseError::NotLeaderOrFollower.code());
                    },
                    _ = liveness.changed() => {}
                    // Leadership changes do not move the high watermark: look again.
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(ResponseError::RequestTimedOut.code()),
        }
    }

    /// A follower fetched `fetch_offset`, the last batch it holds being of
    /// `last_fetched_epoch` (Kafka's `Partition.fetchRecords` for a follower). When its log
    /// diverged from this leader's, the answer is the epoch and end offset it must
    /// truncate to, and nothing is recorded: its fetch offset is no position in this log,
    /// and counting it could take the follower into the ISR, and the high watermark past
    /// records it lacks. Otherwise its progress is recorded (`updateFollowerFetchState`),
    /// the high watermark may move, and the ISR may grow, by brokers live in the view only
    /// (KIP-841: the controller would take a broker without a session out again).
    pub(crate) fn follower_fetched(
        &self,
        topic: &str,
        partition: i32,
        fetch: FollowerFetch,
    ) -> Result<Option<(i32, i64)>, NotHere> {
        self.check_leader(topic, partition, fetch.current_leader_epoch)?;
        let Some(replica) = self.replica(topic, partition) else {
            return Err(NotHere {
                error: ResponseError::NotLeaderOrFollower.code(),
                leader: -1,
                leader_epoch: -1,
            });
        };
        if let Some(diverged) = diverging(&replica.partition, fetch) {
            return Ok(Some(diverged));
        }
        let now = now_ms();
        let leo = replica.partition.log_end_offset();
        let live = self
            .live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&fetch.replica_id);
        let change = {
            let mut role = replica.role();
            let Role::Leader(l) = &mut *role else {
                return Ok(None);
            };
            if !l.record_fetch(fetch.replica_id, fetch.fetch_offset, leo, now) {
                // Kafka answers a fetch from a broker that is not a replica so.
                return Err(NotHere {
                    error: ResponseError::NotLeaderOrFollower.code(),
                    leader: self.node_id,
                    leader_epoch: l.leader_epoch,
                });
            }
            let hw = replica.partition.high_watermark();
            let change = if live {
                l.expansion(fetch.replica_id, hw)
            } else {
                None
            };
            if let Some(c) = &change {
                l.propose(c.clone());
            }
            change.map(|c| (c, l.clone()))
        };
        self.advance_high_watermark(&replica);
        if let Some((change, state)) = change {
            self.commit_isr_change(topic.to_string(), partition, replica, change, state);
        }
        Ok(None)
    }

    /// Moves the leader's high watermark to what its ISR allows.
    pub(super) fn advance_high_watermark(&self, replica: &Replica) {
        let leo = replica.partition.log_end_offset();
        let hw = match &*replica.role() {
            Role::Leader(l) => l.high_watermark(leo, now_ms(), self.settings.lag_time_max_ms),
            _ => return,
        };
        replica.partition.advance_high_watermark(hw);
    }

    /// The replicas a reassignment in progress adds and removes, from the view once it
    /// has reached `partition_epoch`: an ISR change keeps them as they are. (If the view
    /// is already past that epoch, the change's compare-and-swap fails anyway.)
    pub(super) async fn reassignment_of(
        &self,
        topic: &str,
        index: i32,
        partition_epoch: i64,
    ) -> (Vec<i32>, Vec<i32>) {
        let key = (topic.to_string(), index);
        let mut view = self.meta.view();
        let reached = view.wait_for(|v| {
            v.partitions
                .get(&key)
                .is_none_or(|s| s.partition_epoch >= partition_epoch)
        });
        let _ = tokio::time::timeout(Duration::from_secs(5), reached).await;
        let view = view.borrow();
        view.partitions
            .get(&key)
            .map(|s| (s.adding_replicas.clone(), s.removing_replicas.clone()))
            .unwrap_or_default()
    }

    /// Brings local topics and roles in line with the cluster view: topics assigned here
    /// are created (with the cluster's topic id) or deleted, and each replica becomes
    /// leader, follower or offline as its partition state says.
    pub(crate) fn apply(&self, view: &ClusterView) {
        if self.storage.log_dir_health().is_offline() {
            self.take_offline(view);
            return;
        }
        self.sync_topics(view);
        *self.live.write().unwrap_or_else(|p| p.into_inner()) =
            view.serving_brokers().into_iter().collect();
        let now = now_ms();
        let mut follow: BTreeMap<i32, Vec<(TopicPartition, Arc<Partition>, i32)>> = BTreeMap::new();
        let mut next: HashMap<TopicPartition, Arc<Replica>> = HashMap::new();
        let current = self
            .replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, topic) in &view.topics {
            let Some(local) = self.storage.topic(name) else {
                continue;
            };
            for (index, assigned) in topic.assignment.iter().enumerate() {
                let index = index as i32;
                if !assigned.contains(&self.node_id) {
                    continue;
                }
                let Some(partition) = local.partition(index).cloned() else {
                    continue;
                };
                let key = (name.clone(), index);
                let replica = current.get(&key).cloned().unwrap_or_else(|| {
                    partition.set_replicated(true);
                    Arc::new(Replica {
                        partition: partition.clone(),
                        role: Mutex::new(Role::Offline { leader_epoch: -1 }),
                    })
                });
                if let Some(state) = view.partitions.get(&key) {
                    if let Some(leader) =
                        self.apply_state(name, index, &replica, assigned, state, now)
                    {
                        follow.entry(leader).or_default().push((
                            key.clone(),
                            partition.clone(),
                            state.leader_epoch,
                        ));
                    }
                }
                next.insert(key, replica);
            }
        }
        let led: Leadership = next
            .iter()
            .filter_map(|(key, r)| match &*r.role() {
                Role::Leader(l) => Some((key.clone(), l.leader_epoch)),
                _ => None,
            })
            .collect();
        *self.replicas.write().unwrap_or_else(|p| p.into_inner()) = next;
        self.fetchers.assign(view, follow);
        self.leading.send_if_modified(|current| {
            let changed = **current != led;
            if changed {
                *current = Arc::new(led);
            }
            changed
        });
    }

    /// The data directory failed: every replica goes offline (no leading, no fetching), and
    /// stays so whatever the view says, until the broker restarts.
    fn take_offline(&self, view: &ClusterView) {
        for (key, replica) in self
            .replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let mut role = replica.role();
            if !matches!(*role, Role::Offline { .. }) {
                tracing::warn!(topic = %key.0, partition = key.1, "replica offline: the data directory failed");
                let leader_epoch = view.partitions.get(key).map_or(-1, |s| s.leader_epoch);
                *role = Role::Offline { leader_epoch };
            }
        }
        self.fetchers.assign(view, BTreeMap::new());
        self.leading.send_if_modified(|current| {
            let changed = !current.is_empty();
            if changed {
                *current = Arc::new(Leadership::new());
            }
            changed
        });
    }

    /// Applies one partition state to a replica; returns the leader to fetch from when
    /// this broker follows.
    fn apply_state(
        &self,
        topic: &str,
        index: i32,
        replica: &Replica,
        assigned: &[i32],
        state: &PartitionState,
        now: i64,
    ) -> Option<i32> {
        let mut role = replica.role();
        if state.leader == self.node_id {
            match &mut *role {
                Role::Leader(l) if l.leader_epoch == state.leader_epoch => {
                    // Same term: take ISR changes made by the controller (a dead broker
                    // removed) and replicas added or removed by a reassignment.
                    if l.pending().is_none() && l.partition_epoch < state.partition_epoch {
                        l.refused(state);
                    }
                    l.set_replicas(assigned);
                }
                _ => {
                    if let Err(e) = replica.partition.become_leader(state.leader_epoch) {
                        tracing::error!(topic, partition = index, error = %e, "cannot become leader");
                        *role = Role::Offline {
                            leader_epoch: state.leader_epoch,
                        };
                        return None;
                    }
                    tracing::info!(topic, partition = index, leader_epoch = state.leader_epoch, isr = ?state.isr, "leading");
                    *role = Role::Leader(LeaderState::new(
                        self.node_id,
                        state.leader_epoch,
                        state.partition_epoch,
                        assigned.to_vec(),
                        state.isr.clone(),
                        replica.partition.log_end_offset(),
                        now,
                    ));
                }
            }
            return None;
        }
        if state.leader < 0 {
            *role = Role::Offline {
                leader_epoch: state.leader_epoch,
            };
            return None;
        }
        let same = matches!(&*role, Role::Follower { leader, leader_epoch }
            if *leader == state.leader && *leader_epoch == state.leader_epoch);
        if !same {
            tracing::info!(
                topic,
                partition = index,
                leader = state.leader,
                leader_epoch = state.leader_epoch,
                "following"
            );
            *role = Role::Follower {
                leader: state.leader,
                leader_epoch: state.leader_epoch,
            };
        }
        Some(state.leader)
    }
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
