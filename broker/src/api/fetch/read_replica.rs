//! Which replica serves a consumer's fetch (KIP-392): this broker's, or, on a leader with
//! the rack-aware replica selector, an in-sync replica in the consumer's rack, which the
//! answer names as the preferred read replica.

use crate::broker::Broker;

/// Where a consumer in `rack` (empty: none given) reads `topic`'s `partition`, for a fetch
/// at `version` naming `current_leader_epoch`: the error this broker refuses it with
/// (NOT_LEADER_OR_FOLLOWER, an epoch error), or the replica it should read from instead,
/// which the answer names as preferred read replica with no records; neither when this
/// broker serves it.
pub(super) fn consumer_read(
    broker: &Broker,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    version: i16,
    rack: &str,
) -> (Option<i16>, Option<i32>) {
    let Some(node) = &broker.cluster else {
        return (None, None);
    };
    let followers_allowed = version >= 11;
    if let Err(n) =
        node.replicas
            .check_consumer_read(topic, partition, current_leader_epoch, followers_allowed)
    {
        return (Some(n.error), None);
    }
    if !broker.config.replication.rack_aware_replica_selector
        || !followers_allowed
        || rack.is_empty()
    {
        return (None, None);
    }
    // Only a leader chooses; a follower serves what it was sent.
    let Some(isr) = node.replicas.leader_isr(topic, partition) else {
        return (None, None);
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
        return (None, None);
    }
    (
        None,
        isr.iter()
            .copied()
            .filter(|id| *id != me && in_rack(id))
            .min(),
    )
}
