//! Share groups' membership (KIP-932): joining by heartbeat, every member assigned every
//! partition of its topics, epochs, fencing, leaving and session expiry.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::Fixture;
use crate::group::assignor::Assignment;
use crate::group::share::ShareHeartbeatResult;
use crate::group::{GroupCoordinator, ShareHeartbeat};

const GROUP: &str = "sg";

fn heartbeat(member_id: &str, epoch: i32, topics: Option<&[&str]>) -> ShareHeartbeat {
    ShareHeartbeat {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        member_epoch: epoch,
        rack_id: None,
        subscribed_topic_names: topics.map(|t| t.iter().map(|s| s.to_string()).collect()),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn beat(f: &Fixture, hb: ShareHeartbeat) -> Result<ShareHeartbeatResult, ResponseError> {
    f.coordinator.share_heartbeat(hb).map_err(|(e, _)| e)
}

fn partitions(topic: Uuid, ps: &[i32]) -> Assignment {
    BTreeMap::from([(topic, ps.iter().copied().collect::<BTreeSet<i32>>())])
}

#[test]
fn partitions_are_spread_over_members_and_shared_when_they_are_fewer() {
    let f = Fixture::new();
    let t = f.topics.add("t", 3);
    let a = beat(&f, heartbeat("a", 0, Some(&["t"]))).unwrap();
    assert_eq!((a.member_id.as_str(), a.member_epoch), ("a", 1));
    assert_eq!(a.assignment, Some(partitions(t, &[0, 1, 2])));
    let b = beat(&f, heartbeat("b", 0, Some(&["t"]))).unwrap();
    assert_eq!(b.member_epoch, 2);
    assert_eq!(b.assignment, Some(partitions(t, &[1])));
    // A heartbeat of the previous epoch is taken; the member learns its new epoch and
    // what it now reads.
    let a = beat(&f, heartbeat("a", 1, None)).unwrap();
    assert_eq!(
        (a.member_epoch, a.assignment),
        (2, Some(partitions(t, &[0, 2])))
    );
    // At its epoch, nothing new: no assignment.
    let a = beat(&f, heartbeat("a", 2, None)).unwrap();
    assert_eq!((a.member_epoch, a.assignment), (2, None));
    // Partitions added to the topic: a new epoch and assignment.
    f.topics.add("t", 4);
    let a = beat(&f, heartbeat("a", 2, None)).unwrap();
    assert_eq!(
        (a.member_epoch, a.assignment),
        (3, Some(partitions(t, &[0, 2])))
    );
    let b = beat(&f, heartbeat("b", 2, None)).unwrap();
    assert_eq!(
        (b.member_epoch, b.assignment),
        (3, Some(partitions(t, &[1, 3])))
    );
    // Neither the current nor the previous epoch: fenced.
    let e = beat(&f, heartbeat("b", 7, None)).unwrap_err();
    assert_eq!(e, ResponseError::FencedMemberEpoch);
    // A known member rejoining with epoch 0 is taken back.
    let b = beat(&f, heartbeat("b", 0, Some(&["t"]))).unwrap();
    assert_eq!(b.member_epoch, 3);
}

#[test]
fn more_members_than_partitions_share_each_partition() {
    use crate::group::share::share_assignment;
    let t = Uuid::from_u128(1);
    let u = Uuid::from_u128(2);
    let topics = BTreeMap::from([
        ("t".to_string(), Some((t, 1))),
        ("u".to_string(), Some((u, 4))),
    ]);
    let subs = |names: &[&str], topics: &[&str]| -> Vec<(String, Vec<String>)> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    };
    // Three members, one partition: all three read it.
    let got = share_assignment(&subs(&["a", "b", "c"], &["t"]), &topics);
    for m in ["a", "b", "c"] {
        assert_eq!(got[m], partitions(t, &[0]));
    }
    // Two members, four partitions of u and one of t: u's partitions two each, and t's
    // one partition (fewer partitions than members) to both.
    let got = share_assignment(&subs(&["a", "b"], &["t", "u"]), &topics);
    assert_eq!(got["a"][&t], got["b"][&t]);
    assert_eq!(got["a"][&t], [0].into_iter().collect());
    assert_eq!((got["a"][&u].len(), got["b"][&u].len()), (2, 2));
    let mut u_parts: Vec<i32> = got.values().flat_map(|a| a[&u].iter().copied()).collect();
    u_parts.sort();
    assert_eq!(u_parts, vec![0, 1, 2, 3]);
    // Five members, two partitions: each partition to three of them.
    let two = BTreeMap::from([("t".to_string(), Some((t, 2)))]);
    let got = share_assignment(&subs(&["a", "b", "c", "d", "e"], &["t"]), &two);
    let holders = |p: i32| got.values().filter(|a| a[&t].contains(&p)).count();
    assert_eq!((holders(0), holders(1)), (3, 3));
    assert!(got.values().all(|a| !a[&t].is_empty()));
}

#[test]
fn leaving_and_expiring_and_the_errors_before_a_group_exists() {
    let f = Fixture::new();
    f.topics.add("t", 1);
    assert_eq!(
        beat(&f, heartbeat("a", 1, None)).unwrap_err(),
        ResponseError::GroupIdNotFound
    );
    assert_eq!(
        beat(&f, heartbeat("a", 0, None)).unwrap_err(),
        ResponseError::InvalidRequest,
        "a join must name the topics"
    );
    assert_eq!(
        beat(&f, heartbeat("", 0, Some(&["t"]))).unwrap_err(),
        ResponseError::InvalidRequest
    );
    beat(&f, heartbeat("a", 0, Some(&["t"]))).unwrap();
    beat(&f, heartbeat("b", 0, Some(&["t"]))).unwrap();
    assert_eq!(
        beat(&f, heartbeat("c", 1, None)).unwrap_err(),
        ResponseError::UnknownMemberId
    );
    let left = beat(&f, heartbeat("a", -1, None)).unwrap();
    assert_eq!(left.member_epoch, -1);
    assert_eq!(
        beat(&f, heartbeat("a", -1, None)).unwrap_err(),
        ResponseError::UnknownMemberId
    );
    // b stays silent past its session: it is removed, and the group is empty.
    f.advance_ms(45_001);
    assert_eq!(
        beat(&f, heartbeat("b", 2, None)).unwrap_err(),
        ResponseError::UnknownMemberId
    );
    let listed = f.coordinator.list_groups(&[], &["share".to_string()]);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].state, listed[0].group_type), ("Empty", "share"));
}

#[test]
fn a_group_id_is_one_kind_of_group() {
    let f = Fixture::new();
    f.topics.add("t", 1);
    beat(&f, heartbeat("a", 0, Some(&["t"]))).unwrap();
    let consumer = crate::group::ConsumerHeartbeat {
        group_id: GROUP.into(),
        member_id: "c".into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        version: 1,
    };
    let e = f.coordinator.consumer_heartbeat(consumer).unwrap_err();
    assert_eq!(e.0, ResponseError::GroupIdNotFound);
}

#[test]
fn a_share_group_and_its_epoch_outlive_a_new_coordinator() {
    let f = Fixture::new();
    f.topics.add("t", 1);
    beat(&f, heartbeat("a", 0, Some(&["t"]))).unwrap();
    beat(&f, heartbeat("a", -1, None)).unwrap();
    let epoch = f
        .coordinator
        .describe_share_group(GROUP)
        .unwrap()
        .group_epoch;
    assert_eq!(epoch, 2);
    let next = GroupCoordinator::new(
        f.store.clone(),
        f.topics.clone(),
        f.clock.clone(),
        sluice_config::GroupConfig::default(),
    );
    assert!(next.load_partition(next.partition_of(GROUP)));
    let d = next.describe_share_group(GROUP).unwrap();
    assert_eq!((d.state, d.group_epoch, d.members.len()), ("Empty", 2, 0));
    // A member joins the loaded group at the next epoch.
    let r = next
        .share_heartbeat(heartbeat("b", 0, Some(&["t"])))
        .unwrap();
    assert_eq!(r.member_epoch, 3);
    // Deleting it removes its record: a coordinator after that does not know it.
    next.share_heartbeat(heartbeat("b", -1, None)).unwrap();
    assert_eq!(next.delete_group(GROUP), None);
    let last = GroupCoordinator::new(
        f.store.clone(),
        f.topics.clone(),
        f.clock.clone(),
        sluice_config::GroupConfig::default(),
    );
    assert!(last.load_partition(last.partition_of(GROUP)));
    assert_eq!(
        last.describe_share_group(GROUP).err(),
        Some(ResponseError::GroupIdNotFound)
    );
}
