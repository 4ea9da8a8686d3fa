// Over 600 lines: the heartbeat, its validation and reconciliation are one protocol, kept whole to read beside KIP-848.
//! The consumer rebalance protocol of KIP-848: ConsumerGroupHeartbeat with broker-side
//! assignment, member epochs, and reconciliation that revokes before it assigns, so no
//! partition is ever owned by two members at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::assignor::{self, Assignment, AssignorMember};
use super::state::{Group, GroupState};
use super::GroupCoordinator;

/// Epoch a member sends to join.
const JOIN_EPOCH: i32 = 0;
/// Epoch a member sends to leave.
const LEAVE_EPOCH: i32 = -1;
/// Epoch a static member sends to leave for a while and come back (KIP-848).
const STATIC_LEAVE_EPOCH: i32 = -2;

/// Where a member is in reconciling towards its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    Stable,
    /// Must give up partitions first (it keeps its epoch until it has).
    UnrevokedPartitions,
    /// At the target epoch, waiting for partitions other members still hold.
    UnreleasedPartitions,
}

/// One member of a consumer group.
pub(crate) struct ConsumerMember {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) member_epoch: i32,
    pub(crate) previous_member_epoch: i32,
    pub(crate) state: MemberState,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) subscribed_topic_names: Vec<String>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) server_assignor: Option<String>,
    /// What the member has been told it owns.
    pub(crate) assigned: Assignment,
    /// What it was told to give up and has not yet confirmed giving up.
    pub(crate) pending_revocation: Assignment,
    pub(crate) session_deadline: Instant,
    /// A member that does not revoke by then is removed.
    pub(crate) revocation_deadline: Option<Instant>,
    /// A static member that left with epoch -2 and may come back.
    pub(crate) left_temporarily: bool,
}

/// A group that uses the consumer protocol.
#[derive(Default)]
pub(crate) struct ConsumerGroupState {
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: IndexMap<String, ConsumerMember>,
    /// Target assignment of each member for `assignment_epoch`.
    pub(crate) target: HashMap<String, Assignment>,
    /// Partition counts of the subscribed topics the target was computed from.
    pub(crate) subscription_metadata: BTreeMap<Uuid, i32>,
    /// Names of the topics in `subscription_metadata`.
    pub(crate) resolved_topic_names: BTreeSet<String>,
    pub(crate) static_members: HashMap<String, String>,
}

impl ConsumerGroupState {
    /// KIP-848's group states, as ListGroups and ConsumerGroupDescribe report them.
    pub(crate) fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Topic names the members subscribe to, by name or through a regex.
    pub(crate) fn subscribed_topic_names(&self) -> std::collections::HashSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .chain(self.resolved_topic_names.iter().cloned())
            .collect()
    }

    fn owned_by_others(&self, member_id: &str) -> BTreeSet<(Uuid, i32)> {
        self.members
            .values()
            .filter(|m| m.member_id != member_id)
            .flat_map(|m| {
                flatten(&m.assigned)
                    .into_iter()
                    .chain(flatten(&m.pending_revocation))
            })
            .collect()
    }
}

fn flatten(a: &Assignment) -> BTreeSet<(Uuid, i32)> {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        .collect()
}

fn unflatten(set: impl IntoIterator<Item = (Uuid, i32)>) -> Assignment {
    let mut a = Assignment::new();
    for (t, p) in set {
        a.entry(t).or_default().insert(p);
    }
    a
}

/// A ConsumerGroupHeartbeat request.
pub(crate) struct ConsumerHeartbeat {
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) subscribed_topic_names: Option<Vec<String>>,
    pub(crate) subscribed_topic_regex: Option<String>,
    pub(crate) server_assignor: Option<String>,
    /// Partitions the member owns now; `None` when unchanged since the last heartbeat.
    pub(crate) owned: Option<Assignment>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) version: i16,
}

/// What a ConsumerGroupHeartbeat gets back.
#[derive(Debug)]
pub(crate) struct ConsumerHeartbeatResult {
    pub(crate) member_id: String,
    pub(crate) member_epoch: i32,
    /// Sent when it changed, or when the member reported something else.
    pub(crate) assignment: Option<Assignment>,
}

/// An error with the message Kafka would send along.
pub(crate) type HeartbeatError = (ResponseError, String);

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat: joins, leaves, reports owned partitions, and gets the
    /// member's next assignment.
    pub(crate) fn consumer_heartbeat(
        &self,
        mut req: ConsumerHeartbeat,
    ) -> Result<ConsumerHeartbeatResult, HeartbeatError> {
        validate(&req)?;
        let now = self.clock.now();
        let mut groups = self.lock();
        let exists = groups.contains_key(&req.group_id);
        if !exists {
            if req.member_epoch != JOIN_EPOCH {
                return Err((
                    ResponseError::UnknownMemberId,
                    format!("Group {} does not exist.", req.group_id),
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
        if group.consumer.is_none() {
            if group.state != GroupState::Empty
                || !group.members.is_empty()
                || group.share.is_some()
            {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {} is not a consumer group.", req.group_id),
                ));
            }
            // An empty classic group (perhaps only offsets) becomes a consumer group.
            group.consumer = Some(ConsumerGroupState::default());
            group.protocol_type = Some("consumer".into());
        }
        if req.member_id.is_empty() {
            // Version 0: the coordinator names the member.
            req.member_id = Uuid::new_v4().to_string();
        }
        let member_id = req.member_id.clone();
        let result = self.consumer_heartbeat_in(group, req, now);
        self.persist_consumer(group, Some(&member_id));
        self.timer.notify_one();
        result
    }

    /// `group.consumer.session.timeout.ms`.
    pub(super) fn consumer_session_timeout(&self) -> Duration {
        Duration::from_millis(self.config.consumer_session_timeout_ms.max(1) as u64)
    }

    /// `group.consumer.heartbeat.interval.ms`, as ConsumerGroupHeartbeat tells members.
    pub(crate) fn consumer_heartbeat_interval_ms(&self) -> i32 {
        self.config.consumer_heartbeat_interval_ms
    }

    fn consumer_heartbeat_in(
        &self,
        group: &mut Group,
        req: ConsumerHeartbeat,
        now: Instant,
    ) -> Result<ConsumerHeartbeatResult, HeartbeatError> {
        let Some(cg) = group.consumer.as_mut() else {
            return Err((ResponseError::GroupIdNotFound, String::new()));
        };
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            let id = match (&req.instance_id, cg.members.contains_key(&req.member_id)) {
                (_, true) => req.member_id.clone(),
                (Some(i), false) => cg.static_members.get(i).cloned().unwrap_or_default(),
                (None, false) => req.member_id.clone(),
            };
            if !cg.members.contains_key(&id) {
                return Err((
                    ResponseError::UnknownMemberId,
                    format!(
                        "Member {} is not a member of group {}.",
                        req.member_id, group.group_id
                    ),
                ));
            }
            if req.member_epoch == STATIC_LEAVE_EPOCH && req.instance_id.is_some() {
                if let Some(m) = cg.members.get_mut(&id) {
                    // Keeps its partitions until it returns or its session runs out.
                    m.left_temporarily = true;
                    m.session_deadline = now + self.consumer_session_timeout();
                }
            } else {
                remove_consumer_member(cg, &id);
                tracing::info!(group = %group.group_id, member = %id, "member left the consumer group");
                self.refresh_target(group, true);
            }
            return Ok(ConsumerHeartbeatResult {
                member_id: req.member_id,
                member_epoch: req.member_epoch,
                assignment: None,
            });
        }

        let mut member_changed = false;
        if req.member_epoch == JOIN_EPOCH {
            member_changed = join_member(
                cg,
                &req,
                now + self.consumer_session_timeout(),
                &group.group_id,
            )?;
        } else {
            let Some(m) = cg.members.get(&req.member_id) else {
                return Err((
                    ResponseError::UnknownMemberId,
                    format!(
                        "Member {} is not a member of group {}.",
                        req.member_id, group.group_id
                    ),
                ));
            };
            if req.instance_id.is_some() && m.instance_id != req.instance_id {
                return Err((
                    ResponseError::FencedInstanceId,
                    "The instance id does not belong to this member.".into(),
                ));
            }
            let owned_subset = req
                .owned
                .as_ref()
                .is_none_or(|o| flatten(o).is_subset(&flatten(&m.assigned)));
            if req.member_epoch > m.member_epoch
                || (req.member_epoch < m.member_epoch
                    && (req.member_epoch != m.previous_member_epoch || !owned_subset))
            {
                return Err((
                    ResponseError::FencedMemberEpoch,
                    format!(
                        "The consumer group member has epoch {} but the coordinator expects {}; it must abandon its partitions and rejoin.",
                        req.member_epoch, m.member_epoch
                    ),
                ));
            }
        }
        let Some(m) = cg.members.get_mut(&req.member_id) else {
            return Err((ResponseError::UnknownMemberId, String::new()));
        };
        m.session_deadline = now + self.consumer_session_timeout();
        m.left_temporarily = false;
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort_unstable();
            names.dedup();
            if names != m.subscribed_topic_names {
                m.subscribed_topic_names = names;
                member_changed = true;
            }
        }
        if req.subscribed_topic_regex.is_some()
            && req.subscribed_topic_regex != m.subscribed_topic_regex
        {
            m.subscribed_topic_regex = req.subscribed_topic_regex.clone().filter(|r| !r.is_empty());
            member_changed = true;
        }
        if req.server_assignor.is_some() && req.server_assignor != m.server_assignor {
            m.server_assignor = req.server_assignor.clone();
            member_changed = true;
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        if req.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        let member_id = req.member_id.clone();
        self.refresh_target(group, member_changed);
        let Some(cg) = group.consumer.as_mut() else {
            return Err((ResponseError::GroupIdNotFound, String::new()));
        };
        let before = cg
            .members
            .get(&member_id)
            .map(|m| (m.member_epoch, m.assigned.clone()));
        reconcile(cg, &member_id, req.owned.as_ref(), now);
        let Some(m) = cg.members.get(&member_id) else {
            return Err((ResponseError::UnknownMemberId, String::new()));
        };
        let changed = before.as_ref() != Some(&(m.member_epoch, m.assigned.clone()));
        let reported_differs = req.owned.as_ref().is_some_and(|o| *o != m.assigned);
        let send = changed || reported_differs || req.member_epoch == JOIN_EPOCH;
        Ok(ConsumerHeartbeatResult {
            member_id,
            member_epoch: m.member_epoch,
            assignment: send.then(|| m.assigned.clone()),
        })
    }

    /// The subscribed topics that exist, with their partition counts.
    pub(super) fn subscription_metadata(&self, cg: &ConsumerGroupState) -> BTreeMap<Uuid, i32> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let regexes: Vec<regex::Regex> = cg
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.as_deref())
            .filter_map(|r| regex::Regex::new(&format!("^(?:{r})$")).ok())
            .collect();
        for m in cg.members.values() {
            names.extend(m.subscribed_topic_names.iter().cloned());
        }
        if !regexes.is_empty() {
            for t in self.topics.list_topic_names() {
                if regexes.iter().any(|r| r.is_match(&t)) {
                    names.insert(t);
                }
            }
        }
        names
            .iter()
            .filter_map(|n| self.topics.topic_partitions(n))
            .collect()
    }

    /// Bumps the group epoch when membership, subscriptions or the subscribed topics
    /// changed, and computes the new target assignment.
    fn refresh_target(&self, group: &mut Group, membership_changed: bool) {
        let Some(cg) = group.consumer.as_mut() else {
            return;
        };
        let metadata = self.subscription_metadata(cg);
        if !membership_changed && metadata == cg.subscription_metadata {
            return;
        }
        cg.group_epoch += 1;
        cg.subscription_metadata = metadata;
        let topic_names: HashMap<Uuid, String> = cg
            .subscription_metadata
            .keys()
            .filter_map(|id| self.topics.topic_name_by_id(*id).map(|name| (*id, name)))
            .collect();
        cg.resolved_topic_names = topic_names.values().cloned().collect();
        let members: Vec<AssignorMember<'_>> = cg
            .members
            .values()
            .map(|m| {
                let regex = m
                    .subscribed_topic_regex
                    .as_deref()
                    .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
                AssignorMember {
                    member_id: &m.member_id,
                    topics: topic_names
                        .iter()
                        .filter(|(_, name)| {
                            m.subscribed_topic_names.contains(name)
                                || regex.as_ref().is_some_and(|r| r.is_match(name))
                        })
                        .map(|(id, _)| *id)
                        .collect(),
                    previous: cg.target.get(&m.member_id),
                }
            })
            .collect();
        let assignor_name = cg
            .members
            .values()
            .find_map(|m| m.server_assignor.clone())
            .unwrap_or_else(|| assignor::ASSIGNORS[0].to_string());
        let target = assignor::assign(&assignor_name, &members, &cg.subscription_metadata);
        cg.target = target.into_iter().collect();
        cg.assignment_epoch = cg.group_epoch;
        tracing::info!(
            group = %group.group_id,
            group_epoch = cg.group_epoch,
            members = cg.members.len(),
            assignor = %assignor_name,
            "consumer group: new target assignment"
        );
    }

    /// Consumer-group deadlines: sessions and revocations; returns the next deadline.
    pub(super) fn expire_consumer_members(
        &self,
        group: &mut Group,
        now: Instant,
    ) -> Option<Instant> {
        let cg = group.consumer.as_mut()?;
        let expired: Vec<String> = cg
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %group.group_id, member = %id, "consumer group member expired");
            remove_consumer_member(cg, id);
        }
        if !expired.is_empty() {
            self.refresh_target(group, true);
            self.persist_consumer(group, None);
        }
        let cg = group.consumer.as_ref()?;
        cg.members
            .values()
            .flat_map(|m| std::iter::once(m.session_deadline).chain(m.revocation_deadline))
            .min()
    }

    /// Validates an offset commit or fetch of a consumer-group member (KIP-848): the
    /// member must exist and send its current epoch.
    pub(super) fn check_consumer_member_epoch(
        cg: &ConsumerGroupState,
        member_id: &str,
        member_epoch: i32,
    ) -> Option<ResponseError> {
        if member_epoch < 0 && member_id.is_empty() {
            return if cg.members.is_empty() {
                None
            } else {
                Some(ResponseError::UnknownMemberId)
            };
        }
        match cg.members.get(member_id) {
            None => Some(ResponseError::UnknownMemberId),
            Some(m) if m.member_epoch != member_epoch => Some(ResponseError::StaleMemberEpoch),
            Some(_) => None,
        }
    }
}

fn validate(req: &ConsumerHeartbeat) -> Result<(), HeartbeatError> {
    let invalid = |msg: &str| Err((ResponseError::InvalidRequest, msg.to_string()));
    if req.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if req.version >= 1 && req.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if req.member_epoch == JOIN_EPOCH {
        if req.rebalance_timeout_ms < 0 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        if req.owned.as_ref().is_some_and(|o| !o.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining.");
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return invalid(
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            );
        }
    } else if req.member_epoch < STATIC_LEAVE_EPOCH {
        return invalid("MemberEpoch is invalid.");
    }
    if let Some(a) = &req.server_assignor {
        if !assignor::ASSIGNORS.contains(&a.as_str()) {
            return Err((
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    assignor::ASSIGNORS.join(", ")
                ),
            ));
        }
    }
    if let Some(r) = &req.subscribed_topic_regex {
        if regex::Regex::new(r).is_err() {
            return Err((
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex `{r}` is not a valid regular expression."),
            ));
        }
    }
    Ok(())
}

/// Epoch 0: a new member, a member rejoining with its id, or a static member replacing
/// its previous incarnation. Returns whether the group's membership changed.
fn join_member(
    cg: &mut ConsumerGroupState,
    req: &ConsumerHeartbeat,
    session_deadline: Instant,
    group_id: &str,
) -> Result<bool, HeartbeatError> {
    let mut inherited: Option<(String, ConsumerMember)> = None;
    if let Some(instance) = &req.instance_id {
        if let Some(old_id) = cg.static_members.get(instance).cloned() {
            if old_id != req.member_id {
                let left = cg.members.get(&old_id).is_none_or(|m| m.left_temporarily);
                if !left {
                    return Err((
                        ResponseError::UnreleasedInstanceId,
                        format!("Static member {instance} of group {group_id} is still in use by {old_id}."),
                    ));
                }
                if let Some(old) = cg.members.shift_remove(&old_id) {
                    inherited = Some((old_id, old));
                }
            }
        }
    }
    if inherited.is_none() && cg.members.contains_key(&req.member_id) {
        // A member rejoining after a fence starts over with nothing assigned.
        remove_consumer_member(cg, &req.member_id);
    }
    let member = match inherited {
        Some((old_id, mut old)) => {
            // The new incarnation takes over the old one's partitions and target.
            if let Some(t) = cg.target.remove(&old_id) {
                cg.target.insert(req.member_id.clone(), t);
            }
            old.member_id = req.member_id.clone();
            old.left_temporarily = false;
            old
        }
        None => ConsumerMember {
            member_id: req.member_id.clone(),
            instance_id: req.instance_id.clone(),
            rack_id: req.rack_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline,
            revocation_deadline: None,
            left_temporarily: false,
        },
    };
    if let Some(instance) = &req.instance_id {
        cg.static_members
            .insert(instance.clone(), req.member_id.clone());
    }
    cg.members.insert(req.member_id.clone(), member);
    Ok(true)
}

fn remove_consumer_member(cg: &mut ConsumerGroupState, member_id: &str) {
    if let Some(m) = cg.members.shift_remove(member_id) {
        if let Some(i) = &m.instance_id {
            if cg.static_members.get(i).map(String::as_str) == Some(member_id) {
                cg.static_members.remove(i);
            }
        }
    }
    cg.target.remove(member_id);
}

/// Moves a member towards its target: first it must give up what the target no longer
/// holds (keeping its epoch); then it takes the target epoch and every target partition
/// that no other member still holds.
fn reconcile(
    cg: &mut ConsumerGroupState,
    member_id: &str,
    owned: Option<&Assignment>,
    now: Instant,
) {
    let target = cg.target.get(member_id).cloned().unwrap_or_default();
    let assignment_epoch = cg.assignment_epoch;
    let others = cg.owned_by_others(member_id);
    let Some(m) = cg.members.get_mut(member_id) else {
        return;
    };
    if m.state == MemberState::UnrevokedPartitions {
        let revoked =
            owned.is_some_and(|o| flatten(o).is_disjoint(&flatten(&m.pending_revocation)));
        if !revoked {
            return;
        }
        m.pending_revocation.clear();
        m.revocation_deadline = None;
    }
    let current = flatten(&m.assigned);
    let wanted = flatten(&target);
    let revoke: BTreeSet<(Uuid, i32)> = current.difference(&wanted).cloned().collect();
    if !revoke.is_empty() {
        m.assigned = unflatten(current.intersection(&wanted).cloned());
        m.pending_revocation = unflatten(revoke);
        m.state = MemberState::UnrevokedPartitions;
        m.revocation_deadline =
            Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
        return;
    }
    let free: BTreeSet<(Uuid, i32)> = wanted.difference(&others).cloned().collect();
    let unreleased = wanted.difference(&free).next().is_some();
    m.assigned = unflatten(free);
    if m.member_epoch != assignment_epoch {
        m.previous_member_epoch = m.member_epoch;
        m.member_epoch = assignment_epoch;
    }
    m.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
}
