//! Kafka's leader epoch checks on what a replica is asked: a request's current leader
//! epoch against this leader's (fencing), and a follower's last fetched epoch against this
//! log (divergence, KIP-320).

use kafka_protocol::ResponseError;
use sluice_storage::Partition;

use super::manager::NotHere;

/// What a follower's Fetch says of one partition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FollowerFetch {
    /// The follower's node id.
    pub(crate) replica_id: i32,
    /// Its log end offset.
    pub(crate) fetch_offset: i64,
    /// The epoch of the last batch it holds (-1: none).
    pub(crate) last_fetched_epoch: i32,
    /// The leader epoch it follows in (-1: unchecked).
    pub(crate) current_leader_epoch: i32,
}

/// Kafka's divergence check: the follower's last fetched epoch ends earlier in this log
/// than its fetch offset, or this log never had it. Returns the largest epoch of this log
/// not above the follower's and where that epoch ends.
pub(crate) fn diverging(p: &Partition, fetch: FollowerFetch) -> Option<(i32, i64)> {
    if fetch.last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end_offset) = p.end_offset_for_epoch(fetch.last_fetched_epoch);
    if epoch >= fetch.last_fetched_epoch && end_offset >= fetch.fetch_offset {
        return None;
    }
    Some((epoch, end_offset))
}

/// Kafka's leader epoch check: an older epoch is fenced, a newer one not yet known here.
pub(crate) fn check_epoch(requested: i32, current: i32, leader: i32) -> Result<(), NotHere> {
    let error = match requested {
        -1 => return Ok(()),
        e if e < current => ResponseError::FencedLeaderEpoch,
        e if e > current => ResponseError::UnknownLeaderEpoch,
        _ => return Ok(()),
    };
    Err(NotHere {
        error: error.code(),
        leader,
        leader_epoch: current,
    })
}
