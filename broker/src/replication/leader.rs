//! What a partition's leader tracks about its followers, as Kafka's `Partition` and
//! `Replica` do: each follower's log end offset and when it last caught up, the ISR, and
//! from them the high watermark and the ISR changes to propose. Pure: the caller supplies
//! the time and the leader's log end offset, and commits ISR changes through the cluster
//! metadata (a compare-and-swap on the partition epoch).

use std::collections::BTreeMap;

use sluice_cluster::PartitionState;

/// One follower as its fetches show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FollowerProgress {
    /// The follower's log end offset: the offset of its last fetch (-1 before the first).
    pub(crate) log_end_offset: i64,
    /// Last time the follower had everything the leader had at its previous fetch.
    pub(crate) last_caught_up_ms: i64,
    last_fetch_ms: i64,
    last_fetch_leader_log_end_offset: i64,
}

impl FollowerProgress {
    fn new(last_caught_up_ms: i64) -> Self {
        Self {
            log_end_offset: -1,
            last_caught_up_ms,
            last_fetch_ms: 0,
            last_fetch_leader_log_end_offset: -1,
        }
    }

    /// Kafka's `isCaughtUp`: at the leader's end, or caught up within the allowed lag.
    fn is_caught_up(&self, leader_log_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        self.log_end_offset == leader_log_end_offset
            || now_ms - self.last_caught_up_ms <= max_lag_ms
    }
}

/// An ISR change the leader wants committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IsrChange {
    /// Add a follower that caught up.
    Expand(Vec<i32>),
    /// Remove followers that fell behind for longer than `replica.lag.time.max.ms`.
    Shrink(Vec<i32>),
}

impl IsrChange {
    /// The ISR once the change is committed.
    pub(crate) fn isr(&self) -> &[i32] {
        match self {
            IsrChange::Expand(isr) | IsrChange::Shrink(isr) => isr,
        }
    }
}

/// The leader's state of one partition for one leader epoch.
#[derive(Debug, Clone)]
pub(crate) struct LeaderState {
    /// This broker.
    pub(crate) node_id: i32,
    /// The epoch this broker leads in.
    pub(crate) leader_epoch: i32,
    /// The partition epoch the ISR below was committed at.
    pub(crate) partition_epoch: i64,
    /// The committed ISR, the leader included.
    pub(crate) isr: Vec<i32>,
    /// An ISR change sent and not yet committed; no other is proposed meanwhile.
    pending: Option<IsrChange>,
    followers: BTreeMap<i32, FollowerProgress>,
    /// The log end offset when this epoch began: a follower joins the ISR only once it
    /// has reached it, so that it holds every batch of earlier epochs the leader kept.
    epoch_start_offset: i64,
    /// Set once the metadata named another leader or leader epoch (see
    /// [`LeaderState::refused`]).
    deposed: bool,
}

impl LeaderState {
    /// Starts leading: ISR members count as caught up now, the others never were.
    pub(crate) fn new(
        node_id: i32,
        leader_epoch: i32,
        partition_epoch: i64,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        epoch_start_offset: i64,
        now_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != node_id)
            .map(|r| {
                let caught_up = if isr.contains(r) { now_ms } else { 0 };
                (*r, FollowerProgress::new(caught_up))
            })
            .collect();
        Self {
            node_id,
            leader_epoch,
            partition_epoch,
            isr,
            pending: None,
            followers,
            epoch_start_offset,
            deposed: false,
        }
    }

    /// The replicas changed within this epoch (a reassignment): new followers start as
    /// never caught up, removed ones are forgotten.
    pub(crate) fn set_replicas(&mut self, replicas: &[i32]) {
        self.followers.retain(|r, _| replicas.contains(r));
        for r in replicas.iter().filter(|r| **r != self.node_id) {
            self.followers
                .entry(*r)
                .or_insert_with(|| FollowerProgress::new(0));
        }
    }

    /// A follower's progress, if it is an assigned replica.
    #[cfg(test)]
    pub(crate) fn follower(&self, replica: i32) -> Option<&FollowerProgress> {
        self.followers.get(&replica)
    }

    /// The ISR counting a pending expansion and not yet a pending shrink (Kafka's maximal
    /// ISR): the high watermark must wait for every replica that may be in the ISR.
    pub(crate) fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        if let Some(IsrChange::Expand(wanted)) = &self.pending {
            for r in wanted {
                if !isr.contains(r) {
                    isr.push(*r);
                }
            }
        }
        isr
    }

    /// Records a follower's fetch at `fetch_offset` (Kafka's `updateFetchStateOrThrow`).
    /// Returns false when `replica` is not an assigned follower.
    pub(crate) fn record_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&replica) else {
            return false;
        };
        if fetch_offset >= leader_log_end_offset {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.last_fetch_leader_log_end_offset {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_leader_log_end_offset = leader_log_end_offset;
        f.last_fetch_ms = now_ms;
        true
    }

    /// The high watermark the replicas allow: the smallest log end offset among the
    /// maximal ISR and the followers caught up enough to be about to join it.
    pub(crate) fn high_watermark(
        &self,
        leader_log_end_offset: i64,
        now_ms: i64,
        max_lag_ms: i64,
    ) -> i64 {
        let maximal = self.maximal_isr();
        self.followers
            .iter()
            .filter(|(r, f)| {
                maximal.contains(r) || f.is_caught_up(leader_log_end_offset, now_ms, max_lag_ms)
            })
            .map(|(_, f)| f.log_end_offset)
            .fold(leader_log_end_offset, i64::min)
    }

    /// The ISR expansion to propose after `replica`'s fetch, if it is now in sync: it
    /// reached the high watermark and this epoch's start (Kafka's `isFollowerInSync`).
    pub(crate) fn expansion(&self, replica: i32, high_watermark: i64) -> Option<IsrChange> {
        if self.deposed || self.pending.is_some() || self.isr.contains(&replica) {
            return None;
        }
        let f = self.followers.get(&replica)?;
        let in_sync =
            f.log_end_offset >= high_watermark && f.log_end_offset >= self.epoch_start_offset;
        in_sync.then(|| {
            let mut isr = self.isr.clone();
            isr.push(replica);
            IsrChange::Expand(isr)
        })
    }

    /// The ISR shrink to propose: ISR followers not caught up within `max_lag_ms`.
    pub(crate) fn shrink(
        &self,
        leader_log_end_offset: i64,
        now_ms: i64,
        max_lag_ms: i64,
    ) -> Option<IsrChange> {
        if self.deposed || self.pending.is_some() {
            return None;
        }
        let lagging: Vec<i32> = self
            .isr
            .iter()
            .filter(|r| **r != self.node_id)
            .filter(|r| {
                self.followers
                    .get(r)
                    .is_none_or(|f| !f.is_caught_up(leader_log_end_offset, now_ms, max_lag_ms))
            })
            .copied()
            .collect();
        (!lagging.is_empty()).then(|| {
            IsrChange::Shrink(
                self.isr
                    .iter()
                    .filter(|r| !lagging.contains(r))
                    .copied()
                    .collect(),
            )
        })
    }

    /// Marks a change as sent; it counts for the maximal ISR until it is settled.
    pub(crate) fn propose(&mut self, change: IsrChange) {
        self.pending = Some(change);
    }

    /// The change in flight, if any.
    pub(crate) fn pending(&self) -> Option<&IsrChange> {
        self.pending.as_ref()
    }

    /// The pending change was committed at `partition_epoch`.
    pub(crate) fn committed(&mut self, partition_epoch: i64) {
        if let Some(change) = self.pending.take() {
            self.isr = change.isr().to_vec();
            self.partition_epoch = partition_epoch;
        }
    }

    /// The pending change was refused because the partition moved on: `current` is the
    /// state the metadata holds now. While it still names this broker leader in this
    /// epoch (the controller changed the ISR meanwhile), the leader takes that ISR and
    /// partition epoch and may propose again. Otherwise this broker was deposed and its
    /// view has not caught up yet: it keeps what it had and proposes nothing more, since a
    /// proposal carrying the newer partition epoch would pass the compare-and-swap and
    /// write this stale leader epoch over the new leader's state (Kafka's controller
    /// answers such an AlterPartition FENCED_LEADER_EPOCH). Returns whether it still leads.
    pub(crate) fn refused(&mut self, current: &PartitionState) -> bool {
        self.pending = None;
        if current.leader != self.node_id || current.leader_epoch != self.leader_epoch {
            self.deposed = true;
            return false;
        }
        self.isr = current.isr.clone();
        self.partition_epoch = current.partition_epoch;
        true
    }

    /// The pending change could not be sent (the metadata store failed): it is dropped,
    /// to be proposed again.
    pub(crate) fn failed(&mut self) {
        self.pending = None;
    }

    /// Whether the metadata showed another leader or leader epoch: no more ISR changes.
    #[cfg(test)]
    pub(crate) fn deposed(&self) -> bool {
        self.deposed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: i64 = 30_000;
    /// A wall-clock time: replicas outside the ISR start as caught up at 0, long ago.
    const T: i64 = 1_700_000_000_000;

    fn state(leader: i32, leader_epoch: i32, isr: &[i32], partition_epoch: i64) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch,
            isr: isr.to_vec(),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            partition_epoch,
        }
    }

    fn leader() -> LeaderState {
        // Broker 1 leads epoch 3 of replicas [1, 2, 3], all in sync, from offset 100.
        LeaderState::new(1, 3, 7, vec![1, 2, 3], vec![1, 2, 3], 100, 1_000)
    }

    #[test]
    fn high_watermark_is_the_smallest_isr_log_end_offset() {
        let mut l = leader();
        // Before any fetch the followers' ends are unknown: nothing new is committed.
        assert_eq!(l.high_watermark(150, 1_000, LAG), -1);
        assert!(l.record_fetch(2, 140, 150, 1_100));
        assert!(l.record_fetch(3, 120, 150, 1_100));
        assert_eq!(l.high_watermark(150, 1_100, LAG), 120);
        assert!(l.record_fetch(3, 150, 150, 1_200));
        assert_eq!(l.high_watermark(150, 1_200, LAG), 140);
        assert!(!l.record_fetch(9, 150, 150, 1_200), "9 is not a replica");
    }

    #[test]
    fn a_replica_added_by_a_reassignment_may_fetch_and_join_the_isr() {
        let mut l = leader();
        assert!(!l.record_fetch(4, 0, 150, 1_000), "4 is not a replica yet");
        l.set_replicas(&[1, 2, 3, 4]);
        assert!(l.record_fetch(4, 150, 150, 1_100));
        assert_eq!(
            l.expansion(4, 150),
            Some(IsrChange::Expand(vec![1, 2, 3, 4]))
        );
        // Removed again: its fetches are refused.
        l.set_replicas(&[1, 2, 3]);
        assert!(!l.record_fetch(4, 150, 150, 1_200));
    }

    #[test]
    fn a_lagging_follower_leaves_the_isr_and_stops_holding_the_high_watermark() {
        let mut l = leader();
        l.record_fetch(2, 150, 150, 1_000);
        l.record_fetch(3, 100, 150, 1_000);
        // 3 keeps fetching but never reaches the end the leader had at its previous fetch.
        let mut now = 1_000;
        for leo in [160, 170, 180] {
            now += 10_000;
            l.record_fetch(2, leo, leo, now);
            l.record_fetch(3, 101, leo, now);
        }
        assert_eq!(l.shrink(180, now, LAG), None, "30 s have not passed");
        now = 1_000 + LAG + 1;
        l.record_fetch(2, 180, 180, now);
        let change = l.shrink(180, now, LAG).unwrap();
        assert_eq!(change, IsrChange::Shrink(vec![1, 2]));
        l.propose(change);
        // Until the shrink is committed, 3 still holds the high watermark.
        assert_eq!(l.high_watermark(180, now, LAG), 101);
        l.committed(8);
        assert_eq!((l.isr.clone(), l.partition_epoch), (vec![1, 2], 8));
        assert_eq!(l.high_watermark(180, now, LAG), 180);
    }

    #[test]
    fn a_follower_that_reaches_the_end_of_each_previous_fetch_stays_caught_up() {
        let mut l = leader();
        let mut now = 1_000;
        let mut leo = 100;
        for _ in 0..10 {
            // The follower always gets what the leader had at its previous fetch; the
            // leader keeps growing, so it is never exactly at the end.
            l.record_fetch(2, leo, leo + 10, now);
            leo += 10;
            now += 10_000;
        }
        assert_eq!(l.follower(2).unwrap().last_caught_up_ms, now - 20_000);
        let shrink = l.shrink(leo, now, LAG).unwrap();
        assert_eq!(
            shrink,
            IsrChange::Shrink(vec![1, 2]),
            "only 3, which never fetched, goes"
        );
    }

    #[test]
    fn a_follower_joins_the_isr_once_it_reaches_the_high_watermark_and_the_epoch_start() {
        let mut l = LeaderState::new(1, 3, 7, vec![1, 2, 3], vec![1, 2], 100, T);
        l.record_fetch(2, 200, 200, T);
        l.record_fetch(3, 90, 200, T);
        let hw = l.high_watermark(200, T, LAG);
        assert_eq!(hw, 200, "3 is neither in the ISR nor caught up");
        assert_eq!(l.expansion(3, hw), None);
        l.record_fetch(3, 200, 200, T + 100);
        let change = l.expansion(3, hw).unwrap();
        assert_eq!(change, IsrChange::Expand(vec![1, 2, 3]));
        l.propose(change);
        assert_eq!(l.expansion(3, hw), None, "one change in flight at a time");
        assert_eq!(l.maximal_isr(), vec![1, 2, 3]);
        assert!(l.refused(&state(1, 3, &[1, 2], 9)));
        assert_eq!(
            (l.isr.clone(), l.partition_epoch, l.pending()),
            (vec![1, 2], 9, None)
        );
    }

    #[test]
    fn a_follower_below_the_epoch_start_does_not_join() {
        let mut l = LeaderState::new(1, 3, 7, vec![1, 2], vec![1], 100, T);
        // The high watermark is below the epoch start (the new leader has not yet
        // committed anything of its own epoch).
        l.record_fetch(2, 95, 120, T);
        assert_eq!(l.expansion(2, 90), None);
        l.record_fetch(2, 100, 120, T + 100);
        assert_eq!(l.expansion(2, 90), Some(IsrChange::Expand(vec![1, 2])));
    }

    #[test]
    fn a_deposed_leader_takes_no_newer_partition_epoch_and_proposes_nothing() {
        // Broker 1 was paused past its session: the controller made 2 leader in epoch 4.
        // Back, before its view catches up, 1 finds its followers lagging.
        let mut l = leader();
        let now = 1_000 + LAG + 1;
        let shrink = l.shrink(100, now, LAG).unwrap();
        assert_eq!(shrink, IsrChange::Shrink(vec![1]));
        l.propose(shrink);
        // The compare-and-swap fails on the partition epoch and shows the new state.
        assert!(!l.refused(&state(2, 4, &[2, 3], 9)));
        assert!(l.deposed());
        assert_eq!(
            (l.isr.clone(), l.partition_epoch),
            (vec![1, 2, 3], 7),
            "the new leader's partition epoch would let a proposal of 1 overwrite its state"
        );
        assert_eq!(l.shrink(100, now + LAG, LAG), None);
        l.record_fetch(2, 100, 100, now);
        assert_eq!(l.expansion(2, 100), None);
    }

    #[test]
    fn a_refusal_by_a_controller_change_in_the_same_epoch_takes_its_isr() {
        let mut l = leader();
        l.propose(IsrChange::Shrink(vec![1, 2]));
        // The controller removed 3 (its session ended) at partition epoch 8.
        assert!(l.refused(&state(1, 3, &[1, 2], 8)));
        assert!(!l.deposed());
        assert_eq!((l.isr.clone(), l.partition_epoch), (vec![1, 2], 8));
    }
}
