//! Share groups' membership (KIP-932): ShareGroupHeartbeat with member epochs and a
//! broker-side assignment. Members of a share group read partitions cooperatively, so
//! there is nothing to revoke: a member goes straight to its target assignment, which
//! Kafka's simple share assignor decides ([`share_assignment`]); the partition leaders
//! hand each record to one member at a time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer::HeartbeatError;
use super::state::{Group, GroupState};
use super::GroupCoordinator;

/// Kafka's simple share assignor: every partition of a subscribed topic goes to at least
/// one member subscribed to it; when a topic has fewer partitions than such members, each
/// of its partitions goes to ceil(members / partitions) of them (members share it, and
/// its leader hands each record to one at a time). Partitions go to the least loaded
/// members first, so that members' counts differ by at most one in a group whose members
/// subscribe alike.
pub(crate) fn share_assignment(
    subscriptions: &[(String, Vec<String>)],
    topics: &BTreeMap<String, Option<(Uuid, i32)>>,
) -> HashMap<String, Assignment> {
    let mut load: BTreeMap<&str, usize> =
        subscriptions.iter().map(|(m, _)| (m.as_str(), 0)).collect();
    let mut out: HashMap<String, Assignment> = HashMap::new();
    for (topic, found) in topics {
        let Some((id, count)) = found else {
            continue;
        };
        let mut members: Vec<&str> = subscriptions
            .iter()
            .filter(|(_, t)| t.contains(topic))
            .map(|(m, _)| m.as_str())
            .collect();
        if members.is_empty() || *count <= 0 {
            continue;
        }
        members.sort();
        let partitions = *count as usize;
        let sharing = members.len().div_ceil(partitions).max(1);
        for p in 0..partitions {
            // The `sharing` least loaded members, ties by id.
            let mut order = members.clone();
            order.sort_by_key(|m| (load.get(m).copied().unwrap_or(0), *m));
            for m in order.into_iter().take(sharing) {
                *load.entry(m).or_default() += 1;
                out.entry(m.to_string())
                    .or_default()
                    .entry(*id)
                    .or_default()
                    .insert(p as i32);
            }
        }
    }
    out
}

/// Epoch a member sends to join.
const JOIN_EPOCH: i32 = 0;
/// Epoch a member sends to leave.
const LEAVE_EPOCH: i32 = -1;

/// One member of a share group.
pub(crate) struct ShareMember {
    pub(crate) member_id: String,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) member_epoch: i32,
    pub(crate) previous_member_epoch: i32,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) assigned: Assignment,
    pub(crate) session_deadline: Instant,
}

/// A share group's membership.
#[derive(Default)]
pub(crate) struct ShareGroupState {
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: IndexMap<String, ShareMember>,
    /// The group epoch its record in `__consumer_offsets` holds (None: not written).
    pub(crate) written_epoch: Option<i32>,
}

impl ShareGroupState {
    /// A share group as its record left it: no members (they join again).
    pub(crate) fn loaded(epoch: i32) -> Self {
        ShareGroupState {
            group_epoch: epoch,
            assignment_epoch: epoch,
            members: IndexMap::new(),
            written_epoch: Some(epoch),
        }
    }

    /// KIP-932's group states, as ListGroups and ShareGroupDescribe report them.
    pub(crate) fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }
}

/// A ShareGroupHeartbeat request.
pub(crate) struct ShareHeartbeat {
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    pub(crate) rack_id: Option<String>,
    pub(crate) subscribed_topic_names: Option<Vec<String>>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
}

/// What a ShareGroupHeartbeat gets back.
#[derive(Debug)]
pub(crate) struct ShareHeartbeatResult {
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    /// Sent when it changed, on a join, and when the request named the subscription.
    pub(crate) assignment: Option<Assignment>,
}

fn invalid(message: &str) -> HeartbeatError {
    (ResponseError::InvalidRequest, message.to_string())
}

/// Kafka's request checks, before the group is looked at.
fn validate(req: &ShareHeartbeat) -> Result<(), HeartbeatError> {
    if req.group_id.is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if req.member_id.is_empty() {
        return Err(invalid("MemberId can't be empty."));
    }
    if req.rack_id.as_deref() == Some("") {
        return Err(invalid("RackId can't be empty."));
    }
    if req.member_epoch < LEAVE_EPOCH {
        return Err(invalid("MemberEpoch is invalid."));
    }
    if req.member_epoch == JOIN_EPOCH
        && req
            .subscribed_topic_names
            .as_ref()
            .is_none_or(|t| t.is_empty())
    {
        return Err(invalid(
            "SubscribedTopicNames must be set in first request.",
        ));
    }
    Ok(())
}

impl GroupCoordinator {
    /// ShareGroupHeartbeat: joins, heartbeats and leaves a share group, and gets the
    /// member's assignment.
    pub(crate) fn share_heartbeat(
        &self,
        req: ShareHeartbeat,
    ) -> Result<ShareHeartbeatResult, HeartbeatError> {
        validate(&req)?;
        let now = self.clock.now();
        let mut groups = self.lock();
        if !groups.contains_key(&req.group_id) {
            if req.member_epoch != JOIN_EPOCH {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Share group {} not found.", req.group_id),
                ));
            }
            groups.insert(
                req.group_id.clone(),
                Group::new(&req.group_id, self.clock.now_ms()),
            );
        }
        let Some(group) = groups.get_mut(&req.group_id) else {
            return Err((ResponseError::CoordinatorNotAvailable, String::new()));
        };
        if group.share.is_none() {
            let empty_classic = group.consumer.is_none()
                && group.state == GroupState::Empty
                && group.members.is_empty()
                && group.offsets.is_empty();
            if !empty_classic {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {} is not a share group.", req.group_id),
                ));
            }
            group.share = Some(ShareGroupState::default());
            group.protocol_type = Some("share".into());
        }
        let result = self.share_heartbeat_in(group, req, now);
        if result.is_ok() {
            self.persist_share_group(group);
        }
        self.timer.notify_one();
        result
    }

    /// Writes the share group's record when its epoch changed since the last write; the
    /// caller waits for it to be durable before answering.
    pub(super) fn persist_share_group(&self, group: &mut Group) {
        let Some(sg) = group.share.as_mut() else {
            return;
        };
        if sg.written_epoch == Some(sg.group_epoch) {
            return;
        }
        let record = (
            super::share_records::key(&group.group_id),
            Some(super::share_records::value(sg.group_epoch)),
        );
        match self.store.store_records(&group.group_id, vec![record]) {
            Ok(()) => sg.written_epoch = Some(sg.group_epoch),
            Err(e) => {
                tracing::error!(group = %group.group_id, error = %e, "storing a share group failed")
            }
        }
    }

    /// `group.share.heartbeat.interval.ms`, as ShareGroupHeartbeat tells members.
    pub(crate) fn share_heartbeat_interval_ms(&self) -> i32 {
        self.share_config.heartbeat_interval_ms
    }

    fn share_session_timeout(&self) -> Duration {
        Duration::from_millis(self.share_config.session_timeout_ms.max(1) as u64)
    }

    fn share_heartbeat_in(
        &self,
        group: &mut Group,
        req: ShareHeartbeat,
        now: Instant,
    ) -> Result<ShareHeartbeatResult, HeartbeatError> {
        let group_id = group.group_id.clone();
        let Some(sg) = group.share.as_mut() else {
            return Err((ResponseError::GroupIdNotFound, String::new()));
        };
        let unknown = || {
            (
                ResponseError::UnknownMemberId,
                format!(
                    "Member {} is not a member of share group {group_id}.",
                    req.member_id
                ),
            )
        };
        if req.member_epoch == LEAVE_EPOCH {
            if sg.members.shift_remove(&req.member_id).is_none() {
                return Err(unknown());
            }
            tracing::info!(group = %group_id, member = %req.member_id, "member left the share group");
            sg.group_epoch += 1;
            self.refresh_share_target(sg);
            return Ok(ShareHeartbeatResult {
                member_id: req.member_id,
                member_epoch: LEAVE_EPOCH,
                assignment: None,
            });
        }
        let joining = req.member_epoch == JOIN_EPOCH;
        if !sg.members.contains_key(&req.member_id) {
            if !joining {
                return Err(unknown());
            }
            if sg.members.len() >= self.share_config.max_size.max(0) as usize {
                return Err((
                    ResponseError::GroupMaxSizeReached,
                    format!(
                        "The share group has reached its maximum size of {}.",
                        self.share_config.max_size
                    ),
                ));
            }
            sg.members.insert(
                req.member_id.clone(),
                ShareMember {
                    member_id: req.member_id.clone(),
                    rack_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    member_epoch: 0,
                    previous_member_epoch: 0,
                    subscribed_topic_names: Vec::new(),
                    assigned: Assignment::new(),
                    session_deadline: now,
                },
            );
            tracing::info!(group = %group_id, member = %req.member_id, "member joined the share group");
        }
        let Some(m) = sg.members.get_mut(&req.member_id) else {
            return Err(unknown());
        };
        // A member that lost an answer may send the epoch before; a rejoin (epoch 0) of a
        // known member is taken as it is, as librdkafka rejoins with the same id.
        if !joining
            && req.member_epoch != m.member_epoch
            && req.member_epoch != m.previous_member_epoch
        {
            return Err((
                ResponseError::FencedMemberEpoch,
                format!(
                    "The share group member has a epoch {} which is not the current epoch {}.",
                    req.member_epoch, m.member_epoch
                ),
            ));
        }
        m.session_deadline = now + self.share_session_timeout();
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id;
        }
        let mut changed = false;
        if let Some(mut topics) = req.subscribed_topic_names.clone() {
            topics.sort();
            topics.dedup();
            if topics != m.subscribed_topic_names {
                m.subscribed_topic_names = topics;
                changed = true;
            }
        }
        if changed {
            sg.group_epoch += 1;
        }
        let before = sg
            .members
            .get(&req.member_id)
            .map(|m| m.assigned.clone())
            .unwrap_or_default();
        self.refresh_share_target(sg);
        let Some(m) = sg.members.get(&req.member_id) else {
            return Err(unknown());
        };
        // A member that has not seen its epoch yet has not seen its assignment either.
        let send = joining
            || req.subscribed_topic_names.is_some()
            || m.assigned != before
            || req.member_epoch != m.member_epoch;
        Ok(ShareHeartbeatResult {
            member_id: m.member_id.clone(),
            member_epoch: m.member_epoch,
            assignment: send.then(|| m.assigned.clone()),
        })
    }

    /// Recomputes the assignment of every member (every partition of its subscribed
    /// topics, as the topics are now); members whose assignment changes, and every member
    /// after a group epoch bump, move to the group epoch.
    fn refresh_share_target(&self, sg: &mut ShareGroupState) {
        let topics: BTreeMap<String, Option<(Uuid, i32)>> = sg
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .map(|t| {
                let found = self.topics.topic_partitions(&t);
                (t, found)
            })
            .collect();
        let subscriptions: Vec<(String, Vec<String>)> = sg
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.subscribed_topic_names.clone()))
            .collect();
        let mut targets = share_assignment(&subscriptions, &topics);
        let mut bumped = false;
        for m in sg.members.values_mut() {
            let target = targets.remove(&m.member_id).unwrap_or_default();
            // A change of the topics themselves (partitions added, a topic created or
            // deleted) bumps the group epoch, unless a membership change already did.
            if target != m.assigned && !bumped && sg.group_epoch == sg.assignment_epoch {
                sg.group_epoch += 1;
                bumped = true;
            }
            m.assigned = target;
        }
        if sg.assignment_epoch != sg.group_epoch {
            sg.assignment_epoch = sg.group_epoch;
        }
        for m in sg.members.values_mut() {
            if m.member_epoch != sg.assignment_epoch {
                m.previous_member_epoch = m.member_epoch;
                m.member_epoch = sg.assignment_epoch;
            }
        }
    }

    /// Removes share members whose session ran out; returns the next session deadline.
    pub(super) fn expire_share_members(&self, group: &mut Group, now: Instant) -> Option<Instant> {
        let sg = group.share.as_mut()?;
        let expired: Vec<String> = sg
            .members
            .values()
            .filter(|m| m.session_deadline <= now)
            .map(|m| m.member_id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(group = %group.group_id, member = %id, "share member's session expired");
                sg.members.shift_remove(id);
            }
            sg.group_epoch += 1;
            self.refresh_share_target(sg);
        }
        let next = sg.members.values().map(|m| m.session_deadline).min();
        self.persist_share_group(group);
        next
    }
}

/// A share group as ShareGroupDescribe reports it.
pub(crate) struct DescribedShareGroup {
    pub(crate) state: &'static str,
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: Vec<DescribedShareMember>,
}

/// One member in a ShareGroupDescribe answer.
pub(crate) struct DescribedShareMember {
    pub(crate) member_id: String,
    pub(crate) rack_id: Option<String>,
    pub(crate) member_epoch: i32,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) assignment: Assignment,
}

impl GroupCoordinator {
    /// A share group's members and epochs; GROUP_ID_NOT_FOUND for no group or another kind.
    pub(crate) fn describe_share_group(
        &self,
        group_id: &str,
    ) -> Result<DescribedShareGroup, ResponseError> {
        let groups = self.lock();
        let sg = groups
            .get(group_id)
            .and_then(|g| g.share.as_ref())
            .ok_or(ResponseError::GroupIdNotFound)?;
        Ok(DescribedShareGroup {
            state: sg.state_name(),
            group_epoch: sg.group_epoch,
            assignment_epoch: sg.assignment_epoch,
            members: sg
                .members
                .values()
                .map(|m| DescribedShareMember {
                    member_id: m.member_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    assignment: m.assigned.clone(),
                })
                .collect(),
        })
    }

    /// The topics a share group's members subscribe to (none for no such group).
    pub(crate) fn share_group_topics(&self, group_id: &str) -> Vec<String> {
        let groups = self.lock();
        let mut topics: Vec<String> = groups
            .get(group_id)
            .and_then(|g| g.share.as_ref())
            .map(|sg| {
                sg.members
                    .values()
                    .flat_map(|m| m.subscribed_topic_names.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Before a share group's offsets change: the group must be a share group without
    /// members. With `create`, a missing group becomes an empty share group (as
    /// AlterShareGroupOffsets makes it); without, it is GROUP_ID_NOT_FOUND.
    pub(crate) fn check_share_group_empty(
        &self,
        group_id: &str,
        create: bool,
    ) -> Result<(), ResponseError> {
        let mut groups = self.lock();
        if !groups.contains_key(group_id) {
            if !create {
                return Err(ResponseError::GroupIdNotFound);
            }
            let mut g = Group::new(group_id, self.clock.now_ms());
            g.share = Some(ShareGroupState::default());
            g.protocol_type = Some("share".into());
            self.persist_share_group(&mut g);
            groups.insert(group_id.to_string(), g);
        }
        let Some(sg) = groups.get(group_id).and_then(|g| g.share.as_ref()) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        if !sg.members.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        Ok(())
    }
}
