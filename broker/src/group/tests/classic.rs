//! The classic protocol: join, sync, rebalance timeout, static member replacement,
//! session expiry.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::{ready, waiting, Fixture};
use crate::group::state::{GroupState, JoinResult, SyncResult};
use crate::group::{JoinParams, SyncParams};

const GROUP: &str = "g";
const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn join(member_id: &str, instance: Option<&str>) -> JoinParams {
    JoinParams {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_string),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"subscription"))],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: false,
        version: 9,
    }
}

fn sync(
    member_id: &str,
    instance: Option<&str>,
    generation_id: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncParams {
    SyncParams {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_string),
        generation_id,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from_static(a)))
            .collect(),
    }
}

/// The JoinGroup answer a waiting member has been sent.
fn joined(rx: &mut tokio::sync::oneshot::Receiver<JoinResult>) -> JoinResult {
    rx.try_recv().expect("the join phase completed")
}

fn synced(rx: &mut tokio::sync::oneshot::Receiver<SyncResult>) -> SyncResult {
    rx.try_recv().expect("the sync phase completed")
}

/// One dynamic member, joined and synced: generation 1, Stable. Returns its member id.
fn stable_single_member(f: &Fixture) -> String {
    let mut rx = waiting(f.coordinator.join_locked(join("", None)));
    let r = joined(&mut rx);
    let id = r.member_id.clone();
    let mut rx = waiting(
        f.coordinator
            .sync_locked(sync(&id, None, 1, &[(id.as_str(), b"a1")])),
    );
    assert_eq!(synced(&mut rx).error, None);
    id
}

#[test]
fn join_and_sync_make_a_stable_generation() {
    let f = Fixture::new();
    // KIP-394: a new member is first given an id to come back with.
    let first = ready(f.coordinator.join_locked(JoinParams {
        require_known_member_id: true,
        ..join("", None)
    }));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let id = first.member_id.clone();
    assert!(id.starts_with("client-"));

    let mut rx = waiting(f.coordinator.join_locked(join(&id, None)));
    let r = joined(&mut rx);
    assert_eq!(r.error, None);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, id);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1);
    assert_eq!(f.state(GROUP), GroupState::CompletingRebalance);

    let mut rx = waiting(
        f.coordinator
            .sync_locked(sync(&id, None, 1, &[(id.as_str(), b"a1")])),
    );
    let s = synced(&mut rx);
    assert_eq!(s.error, None);
    assert_eq!(s.assignment, Bytes::from_static(b"a1"));
    assert_eq!(f.state(GROUP), GroupState::Stable);
    let stored = f.store.group(GROUP).expect("generation stored");
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.leader.as_deref(), Some(id.as_str()));

    assert_eq!(f.coordinator.heartbeat(GROUP, &id, None, 1), None);
    assert_eq!(
        f.coordinator.heartbeat(GROUP, &id, None, 0),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        f.coordinator.heartbeat(GROUP, "stranger", None, 1),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_new_member_starts_a_rebalance_that_ends_when_everyone_rejoined() {
    let f = Fixture::new();
    let a = stable_single_member(&f);
    let mut b_rx = waiting(f.coordinator.join_locked(join("", None)));
    assert_eq!(f.state(GROUP), GroupState::PreparingRebalance);
    assert!(b_rx.try_recv().is_err(), "b waits for a to rejoin");
    assert_eq!(
        f.coordinator.heartbeat(GROUP, &a, None, 1),
        Some(ResponseError::RebalanceInProgress)
    );

    let mut a_rx = waiting(f.coordinator.join_locked(join(&a, None)));
    let ra = joined(&mut a_rx);
    let rb = joined(&mut b_rx);
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    assert_eq!(ra.members.len(), 2, "the leader gets every member");
    assert!(rb.members.is_empty(), "followers get no member list");
    assert_eq!(f.state(GROUP), GroupState::CompletingRebalance);

    // A follower's SyncGroup waits for the leader's.
    let mut b_sync = waiting(f.coordinator.sync_locked(sync(&rb.member_id, None, 2, &[])));
    assert!(b_sync.try_recv().is_err());
    let mut a_sync = waiting(f.coordinator.sync_locked(sync(
        &a,
        None,
        2,
        &[(a.as_str(), b"a2"), (rb.member_id.as_str(), b"b2")],
    )));
    assert_eq!(synced(&mut a_sync).assignment, Bytes::from_static(b"a2"));
    assert_eq!(synced(&mut b_sync).assignment, Bytes::from_static(b"b2"));
    assert_eq!(f.state(GROUP), GroupState::Stable);
    assert_eq!(f.store.group(GROUP).map(|g| g.members.len()), Some(2));
}

#[test]
fn the_rebalance_timeout_drops_members_that_did_not_rejoin() {
    let f = Fixture::new();
    let session = 45_000;
    let mut rx = waiting(f.coordinator.join_locked(JoinParams {
        session_timeout_ms: session,
        ..join("", None)
    }));
    let a = joined(&mut rx).member_id;
    waiting(
        f.coordinator
            .sync_locked(sync(&a, None, 1, &[(a.as_str(), b"a1")])),
    );
    let mut b_rx = waiting(f.coordinator.join_locked(JoinParams {
        session_timeout_ms: session,
        ..join("", None)
    }));

    f.advance_ms(REBALANCE_MS as u64 - 1);
    assert_eq!(f.state(GROUP), GroupState::PreparingRebalance);
    assert!(b_rx.try_recv().is_err());

    f.advance_ms(1);
    let rb = joined(&mut b_rx);
    assert_eq!(rb.generation_id, 2);
    assert_eq!(rb.leader, rb.member_id, "the member that rejoined leads");
    assert_eq!(rb.members.len(), 1);
    assert_eq!(f.state(GROUP), GroupState::CompletingRebalance);
    assert!(f.group(GROUP, |g| !g.members.contains_key(&a)));
    assert_eq!(
        f.coordinator.heartbeat(GROUP, &a, None, 2),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_static_member_rejoining_with_a_new_id_fences_the_old_one_without_a_rebalance() {
    let f = Fixture::new();
    let mut rx = waiting(f.coordinator.join_locked(join("", Some("instance-1"))));
    let old = joined(&mut rx).member_id;
    waiting(f.coordinator.sync_locked(sync(
        &old,
        Some("instance-1"),
        1,
        &[(old.as_str(), b"kept")],
    )));
    assert_eq!(f.state(GROUP), GroupState::Stable);

    // The same instance restarts and joins without a member id.
    let r = ready(f.coordinator.join_locked(join("", Some("instance-1"))));
    assert_eq!(r.error, None);
    let new = r.member_id.clone();
    assert_ne!(new, old);
    assert_eq!(r.generation_id, 1, "no rebalance");
    assert!(r.skip_assignment, "a v9 static leader keeps the assignment");
    assert_eq!(f.state(GROUP), GroupState::Stable);
    assert_eq!(f.generation(GROUP), 1);

    assert_eq!(
        f.coordinator.heartbeat(GROUP, &old, Some("instance-1"), 1),
        Some(ResponseError::FencedInstanceId)
    );
    let s = ready(
        f.coordinator
            .sync_locked(sync(&new, Some("instance-1"), 1, &[])),
    );
    assert_eq!(s.error, None);
    assert_eq!(s.assignment, Bytes::from_static(b"kept"));
    assert_eq!(
        f.coordinator.heartbeat(GROUP, &new, Some("instance-1"), 1),
        None
    );
}

#[test]
fn a_member_whose_session_expires_is_removed_and_the_group_moves_on() {
    let f = Fixture::new();
    let a = stable_single_member(&f);
    // Heartbeats keep the session alive; each restarts it.
    f.advance_ms(SESSION_MS as u64 - 1);
    assert_eq!(f.coordinator.heartbeat(GROUP, &a, None, 1), None);
    f.advance_ms(SESSION_MS as u64 - 1);
    assert_eq!(f.state(GROUP), GroupState::Stable);

    f.advance_ms(1);
    assert_eq!(f.state(GROUP), GroupState::Empty);
    assert_eq!(f.generation(GROUP), 2);
    assert!(f.group(GROUP, |g| g.members.is_empty()));
    let stored = f.store.group(GROUP).expect("stored");
    assert_eq!(stored.generation, 2);
    assert!(stored.members.is_empty());
    assert_eq!(
        f.coordinator.heartbeat(GROUP, &a, None, 1),
        Some(ResponseError::UnknownMemberId)
    );
}
