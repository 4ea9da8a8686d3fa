//! Moves the coordinators with leadership: when this broker becomes leader of a partition
//! of `__consumer_offsets`, `__transaction_state` or `__share_group_state` (or leads it in
//! a new leader epoch) the group, transaction or share coordinator loads that partition; when it stops leading it, the
//! coordinator gives it up. A transaction coordinator then finishes the transactions its
//! predecessor prepared. A single node leads every partition from the start
//! ([`load_sole`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_storage::{Storage, COORDINATOR_EPOCH};
use tokio::sync::watch;

use crate::group::GroupCoordinator;
use crate::internal_topics::{
    GROUP_METADATA_TOPIC, SHARE_GROUP_STATE_TOPIC, TRANSACTION_STATE_TOPIC,
};
use crate::replication::manager::Leadership;
use crate::share::coordinator::ShareCoordinator;
use crate::txn::TxnCoordinator;

/// A coordinator whose state follows the leadership of its internal topic.
trait Coordinator: Send + Sync + 'static {
    /// Its internal topic.
    const TOPIC: &'static str;
    /// Loads a partition led in `leader_epoch` (blocking); false when it failed.
    fn load(&self, partition: i32, leader_epoch: i32) -> bool;
    /// Gives a partition up.
    fn unload(&self, partition: i32);
    /// After a load: work the new coordinator owes its predecessor's clients.
    fn after_load(self: &Arc<Self>) {}
}

impl Coordinator for GroupCoordinator {
    const TOPIC: &'static str = GROUP_METADATA_TOPIC;

    fn load(&self, partition: i32, _leader_epoch: i32) -> bool {
        self.load_partition(partition)
    }

    fn unload(&self, partition: i32) {
        self.unload_partition(partition)
    }
}

impl Coordinator for TxnCoordinator {
    const TOPIC: &'static str = TRANSACTION_STATE_TOPIC;

    fn load(&self, partition: i32, leader_epoch: i32) -> bool {
        self.load_partition(partition, leader_epoch)
    }

    fn unload(&self, partition: i32) {
        self.unload_partition(partition)
    }

    fn after_load(self: &Arc<Self>) {
        // Markers may wait on other brokers: not in the loader's way.
        let txns = self.clone();
        tokio::spawn(async move { txns.complete_prepared().await });
    }
}

impl Coordinator for ShareCoordinator {
    const TOPIC: &'static str = SHARE_GROUP_STATE_TOPIC;

    fn load(&self, partition: i32, _leader_epoch: i32) -> bool {
        self.load_partition(partition)
    }

    fn unload(&self, partition: i32) {
        self.unload_partition(partition)
    }
}

/// The coordinators whose state is in the internal topics.
pub(crate) struct Coordinators<'a> {
    /// On `__consumer_offsets`.
    pub(crate) groups: &'a GroupCoordinator,
    /// On `__transaction_state`.
    pub(crate) txns: &'a TxnCoordinator,
    /// On `__share_group_state`.
    pub(crate) shares: &'a ShareCoordinator,
}

/// On a single node: loads every partition of `topic` (an internal topic) into its
/// coordinator. Blocking: reads the partitions. A partition that fails to load is logged
/// by its coordinator and answers NOT_COORDINATOR.
pub(crate) fn load_sole(storage: &Storage, c: &Coordinators<'_>, topic: &str) {
    let count = storage
        .topic(topic)
        .map_or(0, |t| t.partitions.len() as i32);
    for p in 0..count {
        match topic {
            GROUP_METADATA_TOPIC => Coordinator::load(c.groups, p, COORDINATOR_EPOCH),
            SHARE_GROUP_STATE_TOPIC => Coordinator::load(c.shares, p, COORDINATOR_EPOCH),
            _ => Coordinator::load(c.txns, p, COORDINATOR_EPOCH),
        };
    }
}

/// Follows `leadership` for the three coordinators until `stop`.
pub(crate) async fn follow_leadership(
    groups: Arc<GroupCoordinator>,
    txns: Arc<TxnCoordinator>,
    shares: Arc<ShareCoordinator>,
    leadership: watch::Receiver<Arc<Leadership>>,
    stop: watch::Receiver<bool>,
) {
    tokio::join!(
        follow(groups, leadership.clone(), stop.clone()),
        follow(txns, leadership.clone(), stop.clone()),
        follow(shares, leadership, stop),
    );
}

/// Follows `leadership` for one coordinator until `stop`.
async fn follow<C: Coordinator>(
    coordinator: Arc<C>,
    mut leadership: watch::Receiver<Arc<Leadership>>,
    mut stop: watch::Receiver<bool>,
) {
    // Partition → the leader epoch its state was loaded in.
    let mut loaded: BTreeMap<i32, i32> = BTreeMap::new();
    loop {
        let led: BTreeMap<i32, i32> = leadership
            .borrow_and_update()
            .iter()
            .filter(|((topic, _), _)| topic == C::TOPIC)
            .map(|((_, p), epoch)| (*p, *epoch))
            .collect();
        let gone: Vec<i32> = loaded
            .iter()
            .filter(|(p, epoch)| led.get(p) != Some(epoch))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            loaded.remove(&p);
            coordinator.unload(p);
        }
        let mut any = false;
        for (p, epoch) in led {
            if loaded.contains_key(&p) {
                continue;
            }
            let c = coordinator.clone();
            match tokio::task::spawn_blocking(move || c.load(p, epoch)).await {
                Ok(true) => {
                    loaded.insert(p, epoch);
                    any = true;
                }
                // Logged by the coordinator; tried again at the next leadership change.
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(topic = C::TOPIC, partition = p, error = %e, "loading a coordinator partition panicked")
                }
            }
        }
        if any {
            coordinator.after_load();
        }
        tokio::select! {
            changed = leadership.changed() => if changed.is_err() { break },
            _ = crate::stopped(&mut stop) => break,
        }
    }
    for p in loaded.into_keys() {
        coordinator.unload(p);
    }
}
