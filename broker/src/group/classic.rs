// Over 600 lines: one state machine (join, sync, heartbeat, leave, deadlines), kept whole to read beside Kafka's.
//! The classic rebalance protocol, following Apache Kafka's GroupCoordinator: JoinGroup
//! (with KIP-394's member-id round trip and KIP-345's static members), SyncGroup,
//! Heartbeat, LeaveGroup, and the session, join and sync deadlines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::state::{Group, GroupState, JoinResult, Member, SyncResult};
use super::{GroupCoordinator, Pending};

/// How long a new member's JoinGroup may wait before it is dropped (Kafka's
/// `newMemberJoinTimeoutMs`): its socket is muted, so a vanished client is not noticed.
const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// A JoinGroup request.
pub(crate) struct JoinParams {
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    /// JoinGroup v4+: a dynamic member without an id is first given one (KIP-394).
    pub(crate) require_known_member_id: bool,
    /// The request version (v9 lets a static leader skip the assignment, KIP-814).
    pub(crate) version: i16,
}

/// A SyncGroup request.
pub(crate) struct SyncParams {
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) assignments: Vec<(String, Bytes)>,
}

fn after_ms(now: Instant, ms: i64) -> Instant {
    now + Duration::from_millis(ms.max(0) as u64)
}

impl GroupCoordinator {
    /// JoinGroup: waits until the join phase completes (or answers at once).
    pub(crate) async fn join_group(&self, p: JoinParams) -> JoinResult {
        let member_id = p.member_id.clone();
        let pending = self.join_locked(p);
        self.timer.notify_one();
        match pending {
            Pending::Ready(r) => r,
            Pending::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(&member_id, ResponseError::NotCoordinator)),
        }
    }

    pub(super) fn join_locked(&self, p: JoinParams) -> Pending<JoinResult> {
        let fail = |e| Pending::Ready(JoinResult::error(&p.member_id, e));
        if p.group_id.is_empty() {
            return fail(ResponseError::InvalidGroupId);
        }
        if p.session_timeout_ms < self.config.min_session_timeout_ms
            || p.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return fail(ResponseError::InvalidSessionTimeout);
        }
        let now = self.clock.now();
        let mut groups = self.lock();
        let unknown_member = p.member_id.is_empty();
        if !groups.contains_key(&p.group_id) {
            if !unknown_member {
                return fail(ResponseError::UnknownMemberId);
            }
            groups.insert(
                p.group_id.clone(),
                Group::new(&p.group_id, self.clock.now_ms()),
            );
        }
        let Some(group) = groups.get_mut(&p.group_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if group.share.is_some() {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        if let Some(cg) = &group.consumer {
            if !cg.members.is_empty() {
                return fail(ResponseError::InconsistentGroupProtocol);
            }
            // An empty consumer-protocol group may be taken over by classic members; its
            // consumer-protocol records go.
            group.consumer = None;
            self.persist_consumer(group, None);
        }
        let known = group.members.contains_key(&p.member_id)
            || group.pending_members.contains_key(&p.member_id);
        let replaces_static = p
            .group_instance_id
            .as_ref()
            .is_some_and(|i| group.static_members.contains_key(i));
        if !known
            && !replaces_static
            && group.members.len() + group.pending_members.len()
                >= self.config.max_size.max(0) as usize
        {
            return fail(ResponseError::GroupMaxSizeReached);
        }
        if !group.supports_protocols(&p.protocol_type, &p.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        if unknown_member {
            self.join_unknown_member(group, p, now)
        } else {
            self.join_known_member(group, p, now)
        }
    }

    fn join_unknown_member(
        &self,
        group: &mut Group,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinResult> {
        let new_id = format!("{}-{}", p.client_id, Uuid::new_v4());
        if let Some(instance) = p.group_instance_id.clone() {
            if let Some(old_id) = group.static_members.get(&instance).cloned() {
                if group.members.contains_key(&old_id) {
                    return self.replace_static_member(group, &old_id, new_id, p, now);
                }
            }
            return self.add_member_and_rebalance(group, new_id, p, now);
        }
        if p.require_known_member_id {
            group.pending_members.insert(
                new_id.clone(),
                after_ms(now, i64::from(p.session_timeout_ms)),
            );
            return Pending::Ready(JoinResult::error(&new_id, ResponseError::MemberIdRequired));
        }
        self.add_member_and_rebalance(group, new_id, p, now)
    }

    fn join_known_member(
        &self,
        group: &mut Group,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinResult> {
        let id = p.member_id.clone();
        let fail = |e| Pending::Ready(JoinResult::error(&id, e));
        if group.pending_members.contains_key(&id) {
            return self.add_member_and_rebalance(group, id.clone(), p, now);
        }
        if group.is_static_member_fenced(p.group_instance_id.as_deref(), &id) {
            return fail(ResponseError::FencedInstanceId);
        }
        let instance_unknown = p
            .group_instance_id
            .as_ref()
            .is_some_and(|i| !group.static_members.contains_key(i));
        let Some(member) = group.members.get_mut(&id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if instance_unknown {
            return fail(ResponseError::UnknownMemberId);
        }
        member.session_deadline = after_ms(now, i64::from(member.session_timeout_ms));
        let unchanged = member.matches(&p.protocols);
        match group.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(group, p, now),
            GroupState::CompletingRebalance if unchanged => {
                // The member missed its JoinGroup response: give it again.
                Pending::Ready(group.join_result_for(&id, group.is_leader(&id)))
            }
            GroupState::CompletingRebalance => self.update_member_and_rebalance(group, p, now),
            GroupState::Stable if !group.is_leader(&id) && unchanged => {
                Pending::Ready(group.join_result_for(&id, false))
            }
            // The leader rejoining asks for a new assignment (e.g. topic metadata changed).
            GroupState::Stable => self.update_member_and_rebalance(group, p, now),
            GroupState::Empty => fail(ResponseError::UnknownMemberId),
        }
    }

    fn add_member_and_rebalance(
        &self,
        group: &mut Group,
        member_id: String,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if group.members.is_empty() {
            group.protocol_type = Some(p.protocol_type.clone());
        }
        if let Some(instance) = &p.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member_id.clone());
        }
        if group.leader.is_none() {
            group.leader = Some(member_id.clone());
        }
        group.pending_members.remove(&member_id);
        let rebalance_timeout_ms = if p.rebalance_timeout_ms < 0 {
            p.session_timeout_ms
        } else {
            p.rebalance_timeout_ms
        };
        group.members.insert(
            member_id.clone(),
            Member {
                member_id,
                group_instance_id: p.group_instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                rebalance_timeout_ms,
                session_timeout_ms: p.session_timeout_ms,
                protocols: p.protocols,
                assignment: Bytes::new(),
                awaiting_join: Some(tx),
                awaiting_sync: None,
                session_deadline: now + NEW_MEMBER_JOIN_TIMEOUT,
                is_new: true,
                pending_sync: false,
            },
        );
        group.new_member_added = true;
        self.maybe_prepare_rebalance(group, now);
        self.try_complete_join(group, now);
        Pending::Wait(rx)
    }

    fn update_member_and_rebalance(
        &self,
        group: &mut Group,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(member) = group.members.get_mut(&p.member_id) {
            // A second JoinGroup while the first still waits replaces it.
            member.complete_join(JoinResult::error(
                &p.member_id,
                ResponseError::RebalanceInProgress,
            ));
            member.protocols = p.protocols;
            member.session_timeout_ms = p.session_timeout_ms;
            member.rebalance_timeout_ms = if p.rebalance_timeout_ms < 0 {
                p.session_timeout_ms
            } else {
                p.rebalance_timeout_ms
            };
            member.awaiting_join = Some(tx);
        }
        self.maybe_prepare_rebalance(group, now);
        self.try_complete_join(group, now);
        Pending::Wait(rx)
    }

    /// A static member came back with a new member id (KIP-345): the old id is fenced and,
    /// if nothing about the group's protocol changes, the member gets its old assignment
    /// back without a rebalance.
    fn replace_static_member(
        &self,
        group: &mut Group,
        old_id: &str,
        new_id: String,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinResult> {
        let Some(mut member) = group.members.shift_remove(old_id) else {
            return self.add_member_and_rebalance(group, new_id, p, now);
        };
        let previous_leader = group.leader.clone().unwrap_or_default();
        member.complete_join(JoinResult::error(old_id, ResponseError::FencedInstanceId));
        member.complete_sync(SyncResult::error(ResponseError::FencedInstanceId));
        member.member_id = new_id.clone();
        member.protocols = p.protocols;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        member.session_timeout_ms = p.session_timeout_ms;
        if p.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout_ms = p.rebalance_timeout_ms;
        }
        member.session_deadline = after_ms(now, i64::from(p.session_timeout_ms));
        if let Some(instance) = &p.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), new_id.clone());
        }
        if group.is_leader(old_id) {
            group.leader = Some(new_id.clone());
        }
        let (tx, rx) = oneshot::channel();
        member.awaiting_join = Some(tx);
        group.members.insert(new_id.clone(), member);
        match group.state {
            GroupState::Stable if group.select_protocol() == group.protocol_name => {
                if let Err(e) = self.persist(group) {
                    tracing::warn!(group = %group.group_id, error = %e, "static member rejoin not persisted");
                }
                let is_leader = group.is_leader(&new_id);
                let result = if is_leader && p.version >= 9 {
                    let mut r = group.join_result_for(&new_id, true);
                    r.skip_assignment = true;
                    r
                } else {
                    // An older leader told it leads would reassign, which a stable group
                    // would not pass on: it is told the previous leader id instead.
                    let mut r = group.join_result_for(&new_id, false);
                    if is_leader {
                        r.leader = previous_leader;
                    }
                    r
                };
                if let Some(m) = group.members.get_mut(&new_id) {
                    m.awaiting_join = None;
                }
                Pending::Ready(result)
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group, now);
                Pending::Wait(rx)
            }
            GroupState::PreparingRebalance => {
                self.try_complete_join(group, now);
                Pending::Wait(rx)
            }
            GroupState::Empty => {
                self.prepare_rebalance(group, now);
                Pending::Wait(rx)
            }
        }
    }

    pub(super) fn maybe_prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(group, now);
        }
    }

    fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::CompletingRebalance {
            for m in group.members.values_mut() {
                m.assignment = Bytes::new();
                m.complete_sync(SyncResult::error(ResponseError::RebalanceInProgress));
            }
        }
        for m in group.members.values_mut() {
            m.pending_sync = false;
        }
        group.sync_deadline = None;
        let was_empty = group.state == GroupState::Empty;
        group.transition(GroupState::PreparingRebalance, self.clock.now_ms());
        let timeout = group.rebalance_timeout_ms();
        let delay = self.config.initial_rebalance_delay_ms.min(timeout);
        if was_empty && delay > 0 {
            // Kafka's delayed initial rebalance: wait for more members to arrive.
            group.initial_delay_remaining_ms = Some((timeout - delay).max(0));
            group.new_member_added = false;
            group.join_deadline = Some(after_ms(now, delay));
        } else {
            group.initial_delay_remaining_ms = None;
            group.join_deadline = Some(after_ms(now, timeout));
        }
        tracing::debug!(group = %group.group_id, generation = group.generation_id, "preparing rebalance");
    }

    pub(super) fn try_complete_join(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::PreparingRebalance
            && group.initial_delay_remaining_ms.is_none()
            && group.all_members_joined()
        {
            self.complete_join(group, now);
        }
    }

    /// The join phase's deadline passed.
    fn on_join_deadline(&self, group: &mut Group, now: Instant) {
        if let Some(remaining) = group.initial_delay_remaining_ms {
            if group.new_member_added && remaining > 0 {
                let delay = self.config.initial_rebalance_delay_ms.min(remaining);
                group.initial_delay_remaining_ms = Some(remaining - delay);
                group.new_member_added = false;
                group.join_deadline = Some(after_ms(now, delay));
                return;
            }
            group.initial_delay_remaining_ms = None;
        }
        self.complete_join(group, now);
    }

    /// Ends the join phase: members that did not rejoin leave, the next generation
    /// starts, and every waiting member gets its JoinGroup response.
    fn complete_join(&self, group: &mut Group, now: Instant) {
        group.join_deadline = None;
        group.initial_delay_remaining_ms = None;
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            remove_member_entry(group, &id);
        }
        let joined: Vec<String> = group
            .members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .map(|m| m.member_id.clone())
            .collect();
        if !group.members.is_empty() && joined.is_empty() {
            // Only static members that have not come back: wait for them or their timeout.
            group.join_deadline = Some(after_ms(now, group.rebalance_timeout_ms()));
            return;
        }
        if !group.leader.as_ref().is_some_and(|l| joined.contains(l)) {
            group.leader = joined.first().cloned();
        }
        group.generation_id += 1;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.leader = None;
            group.transition(GroupState::Empty, self.clock.now_ms());
            let _ = self.persist(group);
            tracing::info!(group = %group.group_id, generation = group.generation_id, "group is empty");
            return;
        }
        group.protocol_name = group.select_protocol();
        group.transition(GroupState::CompletingRebalance, self.clock.now_ms());
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in &ids {
            let result = group.join_result_for(id, group.is_leader(id));
            if let Some(m) = group.members.get_mut(id) {
                m.complete_join(result);
                m.session_deadline = after_ms(now, i64::from(m.session_timeout_ms));
                m.is_new = false;
                m.pending_sync = true;
            }
        }
        group.sync_deadline = Some(after_ms(now, group.rebalance_timeout_ms()));
        tracing::info!(
            group = %group.group_id,
            generation = group.generation_id,
            members = group.members.len(),
            protocol = group.protocol_name.as_deref().unwrap_or(""),
            "rebalance: join phase complete"
        );
    }

    /// SyncGroup: the leader's call carries every assignment; the others wait for it.
    pub(crate) async fn sync_group(&self, p: SyncParams) -> SyncResult {
        let pending = self.sync_locked(p);
        self.timer.notify_one();
        match pending {
            Pending::Ready(r) => r,
            Pending::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(ResponseError::NotCoordinator)),
        }
    }

    pub(super) fn sync_locked(&self, p: SyncParams) -> Pending<SyncResult> {
        let fail = |e| Pending::Ready(SyncResult::error(e));
        let now = self.clock.now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(&p.group_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if group.is_static_member_fenced(p.group_instance_id.as_deref(), &p.member_id) {
            return fail(ResponseError::FencedInstanceId);
        }
        if !group.members.contains_key(&p.member_id) {
            return fail(ResponseError::UnknownMemberId);
        }
        if p.generation_id != group.generation_id {
            return fail(ResponseError::IllegalGeneration);
        }
        if p.protocol_type
            .as_ref()
            .is_some_and(|t| group.protocol_type.as_ref() != Some(t))
            || p.protocol_name
                .as_ref()
                .is_some_and(|n| group.protocol_name.as_ref() != Some(n))
        {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        let ok = |group: &Group, assignment: Bytes| SyncResult {
            error: None,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            assignment,
        };
        match group.state {
            GroupState::Empty => fail(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let Some(member) = group.members.get_mut(&p.member_id) else {
                    return fail(ResponseError::UnknownMemberId);
                };
                member.pending_sync = false;
                member.session_deadline = after_ms(now, i64::from(member.session_timeout_ms));
                let assignment = member.assignment.clone();
                if !group.members.values().any(|m| m.pending_sync) {
                    group.sync_deadline = None;
                }
                Pending::Ready(ok(group, assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = group.members.get_mut(&p.member_id) {
                    member.awaiting_sync = Some(tx);
                    member.pending_sync = false;
                    member.session_deadline = after_ms(now, i64::from(member.session_timeout_ms));
                }
                if group.is_leader(&p.member_id) {
                    let assignments: HashMap<String, Bytes> = p.assignments.into_iter().collect();
                    for m in group.members.values_mut() {
                        m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
                    }
                    group.transition(GroupState::Stable, self.clock.now_ms());
                    if let Err(_e) = self.persist(group) {
                        for m in group.members.values_mut() {
                            m.assignment = Bytes::new();
                            m.complete_sync(SyncResult::error(
                                ResponseError::CoordinatorNotAvailable,
                            ));
                        }
                        group.state = GroupState::CompletingRebalance;
                        self.prepare_rebalance(group, now);
                        return Pending::Wait(rx);
                    }
                    let results: Vec<(String, SyncResult)> = group
                        .members
                        .values()
                        .map(|m| (m.member_id.clone(), ok(group, m.assignment.clone())))
                        .collect();
                    for (id, result) in results {
                        if let Some(m) = group.members.get_mut(&id) {
                            m.complete_sync(result);
                        }
                    }
                    if !group.members.values().any(|m| m.pending_sync) {
                        group.sync_deadline = None;
                    }
                    tracing::info!(group = %group.group_id, generation = group.generation_id, "group is stable");
                }
                Pending::Wait(rx)
            }
        }
    }

    /// Heartbeat: keeps the member's session alive and tells it about rebalances.
    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Option<ResponseError> {
        let now = self.clock.now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if group.is_static_member_fenced(group_instance_id, member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
        let state = group.state;
        let generation = group.generation_id;
        let Some(member) = group.members.get_mut(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if generation_id != generation {
            return Some(ResponseError::IllegalGeneration);
        }
        match state {
            GroupState::Empty => Some(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.session_deadline = after_ms(now, i64::from(member.session_timeout_ms));
                None
            }
            GroupState::PreparingRebalance => {
                member.session_deadline = after_ms(now, i64::from(member.session_timeout_ms));
                Some(ResponseError::RebalanceInProgress)
            }
        }
    }

    /// LeaveGroup for several members; `Err` is a group-level error, otherwise one
    /// result per member in request order.
    pub(crate) fn leave_group(
        &self,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let now = self.clock.now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Ok(leaving
                .iter()
                .map(|_| Some(ResponseError::UnknownMemberId))
                .collect());
        };
        let mut results = Vec::with_capacity(leaving.len());
        for (member_id, instance) in leaving {
            let member_id = match (member_id.is_empty(), instance) {
                (true, Some(i)) => group.static_members.get(i).cloned().unwrap_or_default(),
                _ => member_id.clone(),
            };
            if group.pending_members.remove(&member_id).is_some() {
                self.try_complete_join(group, now);
                results.push(None);
            } else if instance
                .as_deref()
                .is_some_and(|i| group.static_members.get(i) != Some(&member_id))
            {
                results.push(Some(ResponseError::FencedInstanceId));
            } else if !group.members.contains_key(&member_id) {
                results.push(Some(ResponseError::UnknownMemberId));
            } else {
                tracing::info!(group = %group.group_id, member = %member_id, "member left the group");
                self.remove_member_and_update_group(group, &member_id, now);
                results.push(None);
            }
        }
        self.timer.notify_one();
        Ok(results)
    }

    fn remove_member_and_update_group(&self, group: &mut Group, member_id: &str, now: Instant) {
        remove_member_entry(group, member_id);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group, now);
                self.try_complete_join(group, now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(group, now),
            GroupState::Empty => {}
        }
    }

    /// Applies every deadline that has passed; returns the next one.
    pub(super) fn expire(&self, now: Instant) -> Option<Instant> {
        let mut groups = self.lock();
        let mut next: Option<Instant> = None;
        let mut note = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        for group in groups.values_mut() {
            if group.consumer.is_some() {
                if let Some(at) = self.expire_consumer_members(group, now) {
                    note(at);
                }
                continue;
            }
            if group.share.is_some() {
                if let Some(at) = self.expire_share_members(group, now) {
                    note(at);
                }
                continue;
            }
            let expired_pending: Vec<String> = group
                .pending_members
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired_pending {
                group.pending_members.remove(&id);
                self.try_complete_join(group, now);
            }
            if group.join_deadline.is_some_and(|at| at <= now) {
                self.on_join_deadline(group, now);
            }
            if group.sync_deadline.is_some_and(|at| at <= now) {
                group.sync_deadline = None;
                let late: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| m.pending_sync)
                    .map(|m| m.member_id.clone())
                    .collect();
                for id in late {
                    tracing::info!(group = %group.group_id, member = %id, "member did not send SyncGroup in time");
                    self.remove_member_and_update_group(group, &id, now);
                }
            }
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| session_expires(m) && m.session_deadline <= now)
                .map(|m| m.member_id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = %group.group_id, member = %id, "member session expired");
                self.remove_member_and_update_group(group, &id, now);
            }
            group.pending_members.values().for_each(|at| note(*at));
            group.join_deadline.into_iter().for_each(&mut note);
            group.sync_deadline.into_iter().for_each(&mut note);
            group
                .members
                .values()
                .filter(|m| session_expires(m))
                .for_each(|m| note(m.session_deadline));
        }
        next
    }
}

/// Members waiting in JoinGroup or SyncGroup cannot heartbeat; only new members stuck in
/// a join phase (and members that wait for nothing) run out of session.
fn session_expires(m: &Member) -> bool {
    (m.awaiting_join.is_none() && m.awaiting_sync.is_none())
        || (m.is_new && m.awaiting_join.is_some())
}

/// Removes a member, answering anything it waits on with UNKNOWN_MEMBER_ID.
fn remove_member_entry(group: &mut Group, member_id: &str) {
    if let Some(mut m) = group.members.shift_remove(member_id) {
        m.complete_join(JoinResult::error(member_id, ResponseError::UnknownMemberId));
        m.complete_sync(SyncResult::error(ResponseError::UnknownMemberId));
        if let Some(instance) = &m.group_instance_id {
            if group.static_members.get(instance) == Some(&m.member_id) {
                group.static_members.remove(instance);
            }
        }
    }
    if group.is_leader(member_id) {
        group.leader = group.members.keys().next().cloned();
    }
}
