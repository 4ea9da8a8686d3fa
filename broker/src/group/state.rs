//! A classic group and its members, as Kafka's GroupMetadata and MemberMetadata model
//! them: state, generation, selected protocol, leader, and the members' opaque metadata.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use sluice_storage::{CommittedOffset, GroupOffsets, GroupRecord, MemberRecord};
use tokio::sync::oneshot;

/// The states of a classic group, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// What a JoinGroup call gets back.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinResult {
    pub(crate) error: Option<ResponseError>,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader: String,
    pub(crate) member_id: String,
    pub(crate) members: Vec<JoinedMember>,
    pub(crate) skip_assignment: bool,
}

impl JoinResult {
    pub(crate) fn error(member_id: &str, error: ResponseError) -> Self {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            member_id: member_id.to_string(),
            ..JoinResult::default()
        }
    }
}

/// One member's metadata as the leader receives it.
#[derive(Debug, Clone)]
pub(crate) struct JoinedMember {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) metadata: Bytes,
}

/// What a SyncGroup call gets back.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncResult {
    pub(crate) error: Option<ResponseError>,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) assignment: Bytes,
}

impl SyncResult {
    pub(crate) fn error(error: ResponseError) -> Self {
        SyncResult {
            error: Some(error),
            ..SyncResult::default()
        }
    }
}

/// A member of a classic group.
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    /// Protocol names with the member's metadata for each, in its order of preference.
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) assignment: Bytes,
    pub(crate) awaiting_join: Option<oneshot::Sender<JoinResult>>,
    pub(crate) awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    /// When the member is considered gone unless it heartbeats, joins or syncs first.
    pub(crate) session_deadline: Instant,
    /// Joined during the current rebalance for the first time (Kafka's `isNew`).
    pub(crate) is_new: bool,
    /// Has to send SyncGroup for the current generation before the sync deadline.
    pub(crate) pending_sync: bool,
}

impl Member {
    pub(crate) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Same protocols with the same metadata, in the same order.
    pub(crate) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub(crate) fn complete_join(&mut self, result: JoinResult) {
        if let Some(tx) = self.awaiting_join.take() {
            let _ = tx.send(result);
        }
    }

    pub(crate) fn complete_sync(&mut self, result: SyncResult) {
        if let Some(tx) = self.awaiting_sync.take() {
            let _ = tx.send(result);
        }
    }
}

/// A group: its membership (for classic groups) and its committed offsets.
pub(crate) struct Group {
    pub(crate) group_id: String,
    pub(crate) state: GroupState,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) generation_id: i32,
    pub(crate) leader: Option<String>,
    pub(crate) members: IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394), with their expiry.
    pub(crate) pending_members: HashMap<String, Instant>,
    /// `group.instance.id` → member id of static members (KIP-345).
    pub(crate) static_members: HashMap<String, String>,
    /// When the join phase ends even if not every member has rejoined.
    pub(crate) join_deadline: Option<Instant>,
    /// In the delayed first rebalance of an empty group: the time still allowed.
    pub(crate) initial_delay_remaining_ms: Option<i64>,
    pub(crate) new_member_added: bool,
    /// When members that owe a SyncGroup are removed.
    pub(crate) sync_deadline: Option<Instant>,
    /// When the group last changed state (ms since the epoch).
    pub(crate) state_timestamp: i64,
    pub(crate) offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Set when the group uses the KIP-848 consumer protocol instead of the classic one.
    pub(crate) consumer: Option<super::consumer::ConsumerGroupState>,
    /// The consumer-protocol records last written for the group.
    pub(crate) consumer_records: super::consumer_records::ConsumerRecords,
    /// The group epoch, assignment epoch and member count of `consumer_records`.
    pub(crate) consumer_shape: Option<(i32, i32, usize)>,
    /// Set when the group is a share group (KIP-932).
    pub(crate) share: Option<super::share::ShareGroupState>,
}

impl Group {
    /// A new empty group; `now_ms` is its state timestamp.
    pub(crate) fn new(group_id: &str, now_ms: i64) -> Self {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader: None,
            members: IndexMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            join_deadline: None,
            initial_delay_remaining_ms: None,
            new_member_added: false,
            sync_deadline: None,
            state_timestamp: now_ms,
            offsets: BTreeMap::new(),
            consumer: None,
            consumer_records: Default::default(),
            consumer_shape: None,
            share: None,
        }
    }

    /// Moves to `state` at `now_ms`.
    pub(crate) fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp = now_ms;
    }

    /// No members of either protocol: offsets may expire and the group may be deleted.
    pub(crate) fn is_empty(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
            && self.share.as_ref().is_none_or(|s| s.members.is_empty())
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// A static member's id is not the one registered for its instance id.
    pub(crate) fn is_static_member_fenced(
        &self,
        group_instance_id: Option<&str>,
        member_id: &str,
    ) -> bool {
        match group_instance_id.and_then(|i| self.static_members.get(i)) {
            Some(current) => current != member_id,
            None => false,
        }
    }

    /// Whether a member with these protocols may join (Kafka's `supportsProtocols`).
    pub(crate) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Protocols every member supports, voted on by each member's first choice among them.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&str> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect();
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((choice, _)) = m
                .protocols
                .iter()
                .find(|(p, _)| candidates.contains(&p.as_str()))
            {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == choice) {
                    v.1 += 1;
                }
            }
        }
        // Ties go to the protocol the first member prefers.
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(c, _)| c.to_string())
    }

    /// Every member's metadata for the selected protocol, for the leader.
    pub(crate) fn member_metadata(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    }

    /// The largest rebalance timeout of the members: how long a join phase may last.
    pub(crate) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// The result a member gets when a join phase completes or it rejoins unchanged.
    pub(crate) fn join_result_for(&self, member_id: &str, with_members: bool) -> JoinResult {
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.member_metadata()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    /// What is persisted after a generation completes.
    pub(crate) fn to_record(&self) -> GroupRecord {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupRecord {
            protocol_type: self.protocol_type.clone(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| MemberRecord {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group as stored: its generation, if it has one, and its committed
    /// offsets.
    pub(crate) fn from_stored(
        group_id: &str,
        record: Option<GroupRecord>,
        offsets: GroupOffsets,
        now: Instant,
        now_ms: i64,
    ) -> Self {
        let mut group = match record {
            Some(r) => Group::from_record(group_id, r, now),
            None => Group::new(group_id, now_ms),
        };
        for (topic, partition, committed) in offsets {
            group.offsets.insert((topic, partition), committed);
        }
        group
    }

    /// Rebuilds a group from its stored generation; members must heartbeat within their
    /// session timeout from `now`, as after a coordinator move in Kafka.
    pub(crate) fn from_record(group_id: &str, record: GroupRecord, now: Instant) -> Self {
        let mut group = Group::new(group_id, record.state_timestamp);
        group.protocol_type = record.protocol_type;
        group.generation_id = record.generation;
        group.protocol_name = record.protocol;
        group.leader = record.leader;
        group.state_timestamp = record.state_timestamp;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        for m in record.members {
            if let Some(instance) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            let member = Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocols: vec![(protocol.clone(), Bytes::from(m.subscription))],
                assignment: Bytes::from(m.assignment),
                awaiting_join: None,
                awaiting_sync: None,
                session_deadline: now
                    + std::time::Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                is_new: false,
                pending_sync: false,
            };
            group.members.insert(m.member_id, member);
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group
    }

    /// Topics the members subscribe to, when the group uses the consumer protocol and
    /// every subscription parses; `None` when that cannot be known.
    pub(crate) fn subscribed_topics(&self) -> Option<std::collections::HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.clone()?;
        let mut topics = std::collections::HashSet::new();
        for m in self.members.values() {
            for t in decode_subscription(&m.metadata_for(&protocol))? {
                topics.insert(t);
            }
        }
        Some(topics)
    }
}

/// The topics of a consumer-protocol subscription (version-prefixed).
fn decode_subscription(bytes: &Bytes) -> Option<Vec<String>> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    // Newer versions are read as the newest we know; their extra fields come last.
    let sub = ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3)).ok()?;
    Some(sub.topics.iter().map(|t| t.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from_static(b"m")))
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            session_deadline: Instant::now(),
            is_new: false,
            pending_sync: false,
        }
    }

    #[test]
    fn selects_the_common_protocol_most_members_prefer() {
        let mut g = Group::new("g", 0);
        g.protocol_type = Some("consumer".into());
        g.members
            .insert("a".into(), member("a", &["range", "roundrobin"]));
        g.members
            .insert("b".into(), member("b", &["roundrobin", "range", "sticky"]));
        g.members
            .insert("c".into(), member("c", &["sticky", "roundrobin"]));
        // Common: roundrobin only (range is missing from c).
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        g.members.shift_remove("c");
        // range and roundrobin both common, one vote each: the first member's choice wins.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
    }

    #[test]
    fn a_member_must_share_a_protocol_with_every_member() {
        let mut g = Group::new("g", 0);
        g.protocol_type = Some("consumer".into());
        g.members.insert("a".into(), member("a", &["range"]));
        let p = |n: &str| vec![(n.to_string(), Bytes::new())];
        assert!(g.supports_protocols("consumer", &p("range")));
        assert!(!g.supports_protocols("consumer", &p("sticky")));
        assert!(!g.supports_protocols("connect", &p("range")));
    }
}
