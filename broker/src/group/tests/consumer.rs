//! The KIP-848 consumer protocol: joining by heartbeat, assignment, revocation before
//! reassignment, session expiry, fenced member epochs.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::Fixture;
use crate::group::assignor::Assignment;
use crate::group::consumer::{ConsumerHeartbeatResult, HeartbeatError, MemberState};
use crate::group::{ConsumerHeartbeat, GroupCoordinator};
use sluice_config::GroupConfig;

const GROUP: &str = "cg";
const SESSION_MS: u64 = 45_000;

fn heartbeat(member_id: &str, epoch: i32, owned: Option<Assignment>) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
        subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_string()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        version: 1,
    }
}

fn beat(f: &Fixture, hb: ConsumerHeartbeat) -> Result<ConsumerHeartbeatResult, HeartbeatError> {
    f.coordinator.consumer_heartbeat(hb)
}

fn partitions(topic: Uuid, ps: &[i32]) -> Assignment {
    BTreeMap::from([(topic, ps.iter().copied().collect::<BTreeSet<i32>>())])
}

fn member_state(f: &Fixture, member_id: &str) -> (i32, MemberState) {
    f.group(GROUP, |g| {
        let m = &g.consumer.as_ref().expect("consumer group").members[member_id];
        (m.member_epoch, m.state)
    })
}

fn group_epoch(f: &Fixture) -> i32 {
    f.group(GROUP, |g| g.consumer.as_ref().map_or(-1, |c| c.group_epoch))
}

#[test]
fn a_heartbeat_with_epoch_zero_joins_and_gets_every_partition() {
    let f = Fixture::new();
    let t = f.topics.add("t", 2);
    let r = beat(&f, heartbeat("m1", 0, None)).unwrap();
    assert_eq!(r.member_id, "m1");
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.assignment, Some(partitions(t, &[0, 1])));
    assert_eq!(group_epoch(&f), 1);
    assert_eq!(member_state(&f, "m1"), (1, MemberState::Stable));

    // Nothing changed: no assignment is sent again.
    let r = beat(&f, heartbeat("m1", 1, None)).unwrap();
    assert_eq!((r.member_epoch, r.assignment), (1, None));
}

#[test]
fn a_partition_moves_only_after_its_owner_revoked_it() {
    let f = Fixture::new();
    let t = f.topics.add("t", 2);
    beat(&f, heartbeat("m1", 0, None)).unwrap();

    // m2 joins: the target splits the partitions, but m1 still owns both.
    let r2 = beat(&f, heartbeat("m2", 0, None)).unwrap();
    assert_eq!(group_epoch(&f), 2);
    assert_eq!(r2.member_epoch, 2);
    assert_eq!(r2.assignment, Some(Assignment::new()));
    assert_eq!(
        member_state(&f, "m2"),
        (2, MemberState::UnreleasedPartitions)
    );

    // m1 is told to give one up and keeps its epoch until it has.
    let r1 = beat(&f, heartbeat("m1", 1, Some(partitions(t, &[0, 1])))).unwrap();
    assert_eq!(r1.member_epoch, 1);
    let kept = r1.assignment.expect("a smaller assignment");
    let kept_set = &kept[&t];
    assert_eq!(kept_set.len(), 1);
    let moving = if kept_set.contains(&0) { 1 } else { 0 };
    assert_eq!(
        member_state(&f, "m1"),
        (1, MemberState::UnrevokedPartitions)
    );

    // Until m1 confirms, m2 gets nothing.
    let r2 = beat(&f, heartbeat("m2", 2, Some(Assignment::new()))).unwrap();
    assert_eq!(r2.member_epoch, 2);
    assert_eq!(r2.assignment, None);

    // m1 reports it no longer owns the partition: it moves to epoch 2 ...
    let r1 = beat(&f, heartbeat("m1", 1, Some(kept.clone()))).unwrap();
    assert_eq!(r1.member_epoch, 2);
    assert_eq!(member_state(&f, "m1"), (2, MemberState::Stable));

    // ... and only now is the partition m2's.
    let r2 = beat(&f, heartbeat("m2", 2, Some(Assignment::new()))).unwrap();
    assert_eq!(r2.assignment, Some(partitions(t, &[moving])));
    assert_eq!(member_state(&f, "m2"), (2, MemberState::Stable));
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_and_its_partitions_reassigned() {
    let f = Fixture::new();
    let t = f.topics.add("t", 2);
    beat(&f, heartbeat("m1", 0, None)).unwrap();
    beat(&f, heartbeat("m2", 0, None)).unwrap();
    let r1 = beat(&f, heartbeat("m1", 1, Some(partitions(t, &[0, 1])))).unwrap();
    let kept = r1.assignment.unwrap();
    beat(&f, heartbeat("m1", 1, Some(kept.clone()))).unwrap();
    assert_eq!(group_epoch(&f), 2);

    f.advance_ms(SESSION_MS / 2);
    beat(&f, heartbeat("m1", 2, Some(kept))).unwrap();
    f.advance_ms(SESSION_MS / 2 - 1);
    assert_eq!(
        f.group(GROUP, |g| g.consumer.as_ref().unwrap().members.len()),
        2
    );

    f.advance_ms(1);
    assert!(f.group(GROUP, |g| !g
        .consumer
        .as_ref()
        .unwrap()
        .members
        .contains_key("m2")));
    assert_eq!(group_epoch(&f), 3);
    let r1 = beat(&f, heartbeat("m1", 2, None)).unwrap();
    assert_eq!(r1.member_epoch, 3);
    assert_eq!(r1.assignment, Some(partitions(t, &[0, 1])));
    let err = beat(&f, heartbeat("m2", 2, None)).unwrap_err();
    assert_eq!(err.0, ResponseError::UnknownMemberId);
}

#[test]
fn a_member_epoch_the_coordinator_never_gave_is_fenced() {
    let f = Fixture::new();
    f.topics.add("t", 1);
    beat(&f, heartbeat("m1", 0, None)).unwrap();
    let err = beat(&f, heartbeat("m1", 5, None)).unwrap_err();
    assert_eq!(err.0, ResponseError::FencedMemberEpoch);
    // Fencing changes nothing: the member keeps its epoch.
    assert_eq!(member_state(&f, "m1"), (1, MemberState::Stable));

    let err = beat(&f, heartbeat("nobody", 1, None)).unwrap_err();
    assert_eq!(err.0, ResponseError::UnknownMemberId);
    let err = beat(&f, heartbeat("m1", -3, None)).unwrap_err();
    assert_eq!(err.0, ResponseError::InvalidRequest);
}

#[test]
fn a_coordinator_that_loads_the_group_knows_its_members_and_their_epochs() {
    let f = Fixture::new();
    let t = f.topics.add("t", 2);
    beat(&f, heartbeat("m1", 0, None)).unwrap();
    // m2 joins at group epoch 2 and waits for partition 1, which m1 gives up.
    assert_eq!(beat(&f, heartbeat("m2", 0, None)).unwrap().member_epoch, 2);
    let r = beat(&f, heartbeat("m1", 1, Some(partitions(t, &[0, 1])))).unwrap();
    assert_eq!(
        member_state(&f, "m1"),
        (1, MemberState::UnrevokedPartitions)
    );
    assert_eq!(r.assignment, Some(partitions(t, &[0])));
    let r = beat(&f, heartbeat("m1", 1, Some(partitions(t, &[0])))).unwrap();
    assert_eq!(r.member_epoch, 2);
    let r = beat(&f, heartbeat("m2", 2, Some(BTreeMap::new()))).unwrap();
    assert_eq!(
        (r.member_epoch, r.assignment),
        (2, Some(partitions(t, &[1])))
    );
    // Group and target epochs, then three records per member.
    assert_eq!(f.store.consumer_record_count(GROUP), 2 + 3 * 2);

    // Another coordinator (the partition's next leader, or this broker after a restart)
    // loads the group from the store.
    let next = GroupCoordinator::new(
        f.store.clone(),
        f.topics.clone(),
        f.clock.clone(),
        GroupConfig::default(),
    );
    assert!(next.load_partition(next.partition_of(GROUP)));
    let r = next
        .consumer_heartbeat(heartbeat("m1", 2, Some(partitions(t, &[0]))))
        .unwrap();
    assert_eq!((r.member_epoch, r.assignment), (2, None));
    let r = next
        .consumer_heartbeat(heartbeat("m2", 2, Some(partitions(t, &[1]))))
        .unwrap();
    assert_eq!((r.member_epoch, r.assignment), (2, None));
    // An epoch it never gave is still fenced.
    let e = next
        .consumer_heartbeat(heartbeat("m1", 3, None))
        .unwrap_err();
    assert_eq!(e.0, ResponseError::FencedMemberEpoch);

    // Both leave: the records go with them, but the group's epoch records stay.
    next.consumer_heartbeat(heartbeat("m1", -1, None)).unwrap();
    next.consumer_heartbeat(heartbeat("m2", -1, None)).unwrap();
    assert_eq!(f.store.consumer_record_count(GROUP), 2);
}
