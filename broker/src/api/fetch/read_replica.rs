//! Which replica serves a consumer's fetch (KIP-392): this broker's, or, on a leader with
//! the rack-aware replica selector, an in-sync replica in the consumer's rack, which the
//! answer names as the preferred read replica.

use crate::broker::Broker;

/// What a consumer's fetch of one partition gets here.
pub(super) enum ConsumerRead {
    /// This broker reads it.
    Serve,
    /// Another replica should: the answer names it and carries no records.
    Redirect(i32),
    /// Refused with this error (NOT_LEADER_OR_FOLLOWER, an epoch error).
    Refuse(i16),
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
        return ConsumerRead::Serve;
    };
    let followers_allowed = version >= 11;
    if let Err(n) =
        node.replicas
            .check_consumer_read(topic, partition, current_leader_epoch, followers_allowed)
    {
        return ConsumerRead::Refuse(n.error);
    }
    if !broker.config.replication.rack_aware_replica_selector
        || !followers_allowed
        || rack.is_empty()
    {
        return ConsumerRead::Serve;
    }
    // Only a leader chooses; a follower serves what it was sent.
    let Some(isr) = node.replicas.leader_isr(topic, partition) else {
        return ConsumerRead::Serve;
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
        return ConsumerRead::Serve;
    }
    match isr.iter().filter(|id| **id != me && in_rack(id)).min() {
        Some(id) => ConsumerRead::Redirect(*id),
        None => ConsumerRead::Serve,
    }
}
