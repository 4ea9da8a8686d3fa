//! The KIP-848 consumer protocol: ConsumerGroupHeartbeat and ConsumerGroupDescribe.

use kafka_protocol::messages::*;

use super::{durable, may_group, not_coordinator, s, GROUP_AUTH_FAILED, TOPIC_AUTH_FAILED};
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::api::topic_name;
use crate::broker::Broker;
use crate::group::ConsumerHeartbeat;
use crate::session::Session;

answer!(ConsumerGroupHeartbeatResponse: [error_code]);
answer!(ConsumerGroupDescribeResponse: [groups => error_code]);

/// Partitions by topic id, for the consumer protocol's messages.
type TopicPartitionSets = std::collections::BTreeMap<uuid::Uuid, std::collections::BTreeSet<i32>>;

/// ConsumerGroupHeartbeat (KIP-848).
pub(crate) async fn consumer_group_heartbeat(
    broker: &Broker,
    session: &Session,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
) -> Reply<ConsumerGroupHeartbeatResponse> {
    use kafka_protocol::messages::consumer_group_heartbeat_response::{
        Assignment, TopicPartitions,
    };
    if !may_group(broker, session, Operation::Read, &req.group_id) {
        let mut res = ConsumerGroupHeartbeatResponse::default();
        res.error_code = GROUP_AUTH_FAILED;
        return Reply::new(res);
    }
    if let Some(e) = not_coordinator(broker, &req.group_id) {
        let mut res = ConsumerGroupHeartbeatResponse::default();
        res.error_code = e.code();
        return Reply::new(res);
    }
    // KIP-848: subscribing to a topic needs Describe on it.
    let hidden = req
        .subscribed_topic_names
        .iter()
        .flatten()
        .find(|t| !session.may(broker, Operation::Describe, Resource::Topic, t.as_str()));
    if let Some(t) = hidden {
        let mut res = ConsumerGroupHeartbeatResponse::default();
        res.error_code = TOPIC_AUTH_FAILED;
        res.error_message = Some(s(&format!(
            "not authorized to describe topic {}",
            t.as_str()
        )));
        return Reply::new(res);
    }
    let owned: Option<TopicPartitionSets> = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .filter(|tp| !tp.partitions.is_empty())
            .map(|tp| (tp.topic_id, tp.partitions.iter().cloned().collect()))
            .collect()
    });
    let hb = ConsumerHeartbeat {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|i| i.to_string()),
        rack_id: req.rack_id.as_ref().map(|r| r.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|r| r.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|a| a.to_string()),
        owned,
        client_id: session.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", session.peer.ip()),
        version,
    };
    let group_id = hb.group_id.clone();
    let mut res = ConsumerGroupHeartbeatResponse::default();
    // The member's new epoch and assignment are answered once written, as Kafka does: a
    // coordinator that takes over knows what the member was told.
    let result = match broker.groups.consumer_heartbeat(hb) {
        Ok(r) => durable(broker, &group_id)
            .await
            .map(|()| r)
            .map_err(|e| (e, String::new())),
        Err(e) => Err(e),
    };
    match result {
        Err((e, message)) => {
            res.error_code = e.code();
            res.error_message = (!message.is_empty()).then(|| s(&message));
        }
        Ok(r) => {
            res.member_id = Some(s(&r.member_id));
            res.member_epoch = r.member_epoch;
            res.heartbeat_interval_ms = broker.groups.consumer_heartbeat_interval_ms();
            res.assignment = r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic_id, parts)| {
                            TopicPartitions::default()
                                .with_topic_id(topic_id)
                                .with_partitions(parts.into_iter().collect())
                        })
                        .collect(),
                )
            });
        }
    }
    Reply::new(res)
}

/// ConsumerGroupDescribe (KIP-848).
pub(crate) async fn consumer_group_describe(
    broker: &Broker,
    session: &Session,
    req: ConsumerGroupDescribeRequest,
    _version: i16,
) -> Reply<ConsumerGroupDescribeResponse> {
    use kafka_protocol::messages::consumer_group_describe_response::{
        Assignment, DescribedGroup, Member, TopicPartitions,
    };
    let to_assignment = |a: TopicPartitionSets| {
        Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(topic_id, parts)| {
                    let name = broker
                        .storage
                        .topic_by_id(topic_id)
                        .map(|t| t.record.name.clone())
                        .unwrap_or_default();
                    TopicPartitions::default()
                        .with_topic_id(topic_id)
                        .with_topic_name(topic_name(&name))
                        .with_partitions(parts.into_iter().collect())
                })
                .collect(),
        )
    };
    let groups = req
        .group_ids
        .iter()
        .map(|id| {
            let g = DescribedGroup::default().with_group_id(id.clone());
            if !may_group(broker, session, Operation::Describe, id) {
                return g.with_error_code(GROUP_AUTH_FAILED);
            }
            if let Some(e) = not_coordinator(broker, id) {
                return g.with_error_code(e.code());
            }
            match broker.groups.describe_consumer_group(id) {
                Err((e, message)) => g
                    .with_error_code(e.code())
                    .with_error_message(Some(s(&message))),
                Ok(d) => g
                    .with_group_state(s(d.state))
                    .with_group_epoch(d.group_epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(s(&d.assignor))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(s(&m.member_id))
                                    .with_instance_id(m.instance_id.map(|i| s(&i)))
                                    .with_rack_id(m.rack_id.map(|r| s(&r)))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(s(&m.client_id))
                                    .with_client_host(s(&m.client_host))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .iter()
                                            .map(|n| topic_name(n))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_topic_regex.map(|r| s(&r)),
                                    )
                                    .with_assignment(to_assignment(m.assignment))
                                    .with_target_assignment(to_assignment(m.target_assignment))
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    Reply::new(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
