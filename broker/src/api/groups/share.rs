//! Share groups' membership (KIP-932): ShareGroupHeartbeat.

use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};

use super::{durable, may_group, not_coordinator, s, GROUP_AUTH_FAILED, TOPIC_AUTH_FAILED};
use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::group::ShareHeartbeat;
use crate::session::Session;

answer!(ShareGroupHeartbeatResponse: [error_code]);

/// ShareGroupHeartbeat: join, heartbeat or leave a share group; the member's assignment.
pub(crate) async fn share_group_heartbeat(
    broker: &Broker,
    session: &Session,
    req: ShareGroupHeartbeatRequest,
    _version: i16,
) -> Reply<ShareGroupHeartbeatResponse> {
    let mut res = ShareGroupHeartbeatResponse::default();
    if !may_group(broker, session, Operation::Read, &req.group_id) {
        res.error_code = GROUP_AUTH_FAILED;
        return Reply::new(res);
    }
    if let Some(e) = not_coordinator(broker, &req.group_id) {
        res.error_code = e.code();
        return Reply::new(res);
    }
    let hidden = req
        .subscribed_topic_names
        .iter()
        .flatten()
        .find(|t| !session.may(broker, Operation::Describe, Resource::Topic, t.as_str()));
    if let Some(t) = hidden {
        res.error_code = TOPIC_AUTH_FAILED;
        res.error_message = Some(s(&format!(
            "not authorized to describe topic {}",
            t.as_str()
        )));
        return Reply::new(res);
    }
    let hb = ShareHeartbeat {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        rack_id: req.rack_id.as_ref().map(|r| r.to_string()),
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        client_id: session.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", session.peer.ip()),
    };
    let group_id = hb.group_id.clone();
    // A new group, or a new group epoch, is answered once its record is written.
    let result = match broker.groups.share_heartbeat(hb) {
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
            res.heartbeat_interval_ms = broker.groups.share_heartbeat_interval_ms();
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
