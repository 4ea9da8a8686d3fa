//! Which replica serves a consumer's fetch (KIP-392): this broker's, or, on a leader with
//! the rack-aware replica selector, an in-sync replica in the consumer's rack, which the
//! answer names as the preferred read replica.

use crate::broker::Broker;

/// How a consumer's fetch of one partition is served here.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ConsumerRead {
    /// The error this broker refuses it with (NOT_LEADER_OR_FOLLOWER, an epoch error).
    pub(super) refused: Option<i16>,
    /// The replica it should read from instead, named as preferred read replica in an
    /// answer without records.
    pub(super) preferred: Option<i32>,
    /// A follower serves it.
    pub(super) by_follower: bool,
}

/// Where a consumer in `rack` (empty: none given) reads `topic`'s `partition`, for a fetch
/// at `version` naming `current_leader_epoch`.
pub(super) fn consumer_read(
    broker: &Broker,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    version: i16,
    rack: &str,
) -> ConsumerRead {
    let Some(node) = &broker.cluster else {
        return ConsumerRead::default();
    };
    let followers_allowed = version >= 11;
    let by_follower = match node.replicas.check_consumer_read(
        topic,
        partition,
        current_leader_epoch,
        followers_allowed,
    ) {
        Ok(by_follower) => by_follower,
        Err(n) => {
            return ConsumerRead {
                refused: Some(n.error),
                ..Default::default()
            }
        }
    };
    let served_here = ConsumerRead {
        by_follower,
        ..Default::default()
    };
    if !broker.config.replication.rack_aware_replica_selector
        || !followers_allowed
        || rack.is_empty()
    {
        return served_here;
    }
    // Only a leader chooses; a follower serves what it was sent.
    let Some(isr) = node.replicas.leader_isr(topic, partition) else {
        return served_here;
    };
    let me = broker.config.node_id;
    let view = node.view.borrow();
    let in_rack = |id: &i32| {
        view.is_serving(*id)
            && view
                .brokers
                .get(id)
                .is_some_and(|b| b.rack.as_deref() == Some(rack))
    };
    if in_rack(&me) {
        return served_here;
    }
    ConsumerRead {
        preferred: isr
            .iter()
            .copied()
            .filter(|id| *id != me && in_rack(id))
            .min(),
        ..served_here
    }
}
