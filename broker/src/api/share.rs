//! ShareFetch and ShareAcknowledge (KIP-932): a share group member's records of the
//! partitions this broker leads, acquired under a time lock, and its acknowledgements.
//! Acknowledgements ride on ShareFetch too; both requests move the member's share session
//! on by one epoch, and epoch -1 closes it, releasing what the member still holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::Partition;
use uuid::Uuid;

use crate::acl::{Operation, Resource};
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::NONE;
use crate::group_configs::ShareGroupSettings;
use crate::internal_topics::{self, SHARE_GROUP_STATE_TOPIC};
use crate::session::Session;
use crate::share::sessions::{SharePartitionKey, CLOSE_EPOCH, OPEN_EPOCH};
use crate::share::{Acquired, FetchBudget, LedPartition};

answer!(ShareFetchResponse: [error_code], [responses => partitions => error_code]);
answer!(ShareAcknowledgeResponse: [error_code], [responses => partitions => error_code]);

/// The longest a ShareFetch waits for records, whatever it asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// Acknowledgement batches of one partition: (first offset, last offset, types).
type AckBatches = Vec<(i64, i64, Vec<i8>)>;

/// The partition a share request names, if this broker may serve it to this client, with
/// the leader epoch it leads it in (-1 on a single node).
fn resolve(
    broker: &Broker,
    session: &Session,
    (topic_id, index): SharePartitionKey,
) -> Result<(Arc<Partition>, i32), ResponseError> {
    let topic = broker
        .storage
        .topic_by_id(topic_id)
        .ok_or(ResponseError::UnknownTopicId)?;
    let name = topic.record.name.as_str();
    if !session.may(broker, Operation::Read, Resource::Topic, name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    let partition = usize::try_from(index)
        .ok()
        .and_then(|i| topic.partitions.get(i).cloned())
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    let leader_epoch = match &broker.cluster {
        Some(node) => node
            .replicas
            .check_leader(name, index, -1)
            .map_err(|_| ResponseError::NotLeaderOrFollower)?,
        None => -1,
    };
    Ok((partition, leader_epoch))
}

/// Makes sure `__share_group_state` exists (created on first use, as Kafka does), so that
/// share-partitions can start; false while it cannot be yet.
async fn share_state_ready(broker: &Broker) -> bool {
    let topic = SHARE_GROUP_STATE_TOPIC;
    let Some(node) = &broker.cluster else {
        return internal_topics::ensure(broker, topic).is_ok();
    };
    if node.topic_exists(topic) {
        return true;
    }
    if let Some(why) = internal_topics::too_few_brokers(broker, topic) {
        tracing::info!("{why}");
        return false;
    }
    let (partitions, rf, configs) = internal_topics::placement(broker, topic);
    if let Ok(assignment) = node.place(partitions, rf, None) {
        let _ = node.create_topic(topic, assignment, configs).await;
    }
    node.topic_exists(topic)
}

/// Errors of a share-partition whose state cannot be read yet (its share coordinator is
/// moving or loading): the fetch waits, as Kafka's does for a partition being loaded.
fn still_starting(code: i16) -> bool {
    [
        ResponseError::CoordinatorNotAvailable,
        ResponseError::CoordinatorLoadInProgress,
        ResponseError::NotCoordinator,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// The group and member a share request names, which must both be set, and the client
/// may read the group as.
fn member_of(
    broker: &Broker,
    session: &Session,
    group: Option<&str>,
    member: Option<&str>,
) -> Result<(String, String), ResponseError> {
    let (group, member) = match (group, member) {
        (Some(g), Some(m)) if !g.is_empty() && !m.is_empty() => (g.to_string(), m.to_string()),
        _ => return Err(ResponseError::InvalidRequest),
    };
    if !session.may(broker, Operation::Read, Resource::Group, &group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    Ok((group, member))
}

/// Applies each partition's acknowledgements; the error code of each.
async fn acknowledge_all(
    broker: &Broker,
    session: &Session,
    group: &str,
    member: &str,
    acks: &BTreeMap<SharePartitionKey, AckBatches>,
) -> BTreeMap<SharePartitionKey, i16> {
    let mut codes = BTreeMap::new();
    for (key, batches) in acks {
        let code = match resolve(broker, session, *key) {
            Err(e) => e.code(),
            Ok((_, leader_epoch)) => match broker
                .shares
                .acknowledge(group, member, *key, leader_epoch, batches)
                .await
            {
                Ok(()) => NONE,
                Err(e) => e.code(),
            },
        };
        codes.insert(*key, code);
    }
    codes
}

/// ShareFetch: opens, moves on or closes the member's share session, applies the
/// acknowledgements it carries, and acquires records of the session's partitions,
/// waiting up to MaxWaitMs for some.
pub(crate) async fn share_fetch(
    broker: &Broker,
    session: &Session,
    req: ShareFetchRequest,
    _version: i16,
) -> Reply<ShareFetchResponse> {
    let fail = |e: ResponseError| {
        let mut res = ShareFetchResponse::default();
        res.error_code = e.code();
        Reply::new(res)
    };
    let (group, member) = match member_of(
        broker,
        session,
        req.group_id.as_deref().map(|g| g.as_str()),
        req.member_id.as_deref(),
    ) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let mut listed = Vec::new();
    let mut acks: BTreeMap<SharePartitionKey, AckBatches> = BTreeMap::new();
    // A client may name a topic in more than one entry: they add up.
    for t in &req.topics {
        for p in &t.partitions {
            let key = (t.topic_id, p.partition_index);
            listed.push(key);
            if !p.acknowledgement_batches.is_empty() {
                acks.entry(key).or_default().extend(
                    p.acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
                );
            }
        }
    }
    let epoch = req.share_session_epoch;
    if epoch == OPEN_EPOCH && !acks.is_empty() {
        return fail(ResponseError::InvalidRequest);
    }
    let forgotten: Vec<SharePartitionKey> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, *p)))
        .collect();
    let parts = match broker.shares.session(
        &group,
        &member,
        epoch,
        session.connection,
        listed,
        &forgotten,
    ) {
        Ok(parts) => parts,
        Err(e) => return fail(e),
    };
    let ack_codes = acknowledge_all(broker, session, &group, &member, &acks).await;
    let settings = broker.group_configs.share_settings(&group);
    let mut results: BTreeMap<SharePartitionKey, Result<Acquired, i16>> = BTreeMap::new();
    if epoch == CLOSE_EPOCH {
        broker.shares.release(&group, &member, &parts).await;
    } else if req.max_records > 0 && req.max_bytes > 0 && share_state_ready(broker).await {
        let fetch = Fetch {
            group: &group,
            member: &member,
            settings: &settings,
        };
        results = acquire_waiting(broker, session, fetch, &parts, &req).await;
    }

    let mut by_topic: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    let keys: std::collections::BTreeSet<SharePartitionKey> =
        results.keys().chain(ack_codes.keys()).copied().collect();
    for key in keys {
        let mut p = PartitionData::default()
            .with_partition_index(key.1)
            .with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(-1)
                    .with_leader_epoch(-1),
            )
            // librdkafka drops a whole answer with null records.
            .with_records(Some(Bytes::new()));
        p.acknowledge_error_code = ack_codes.get(&key).copied().unwrap_or(NONE);
        match results.remove(&key) {
            Some(Ok(acquired)) => {
                if acquired.ranges.is_empty() && !ack_codes.contains_key(&key) {
                    continue;
                }
                p.acquired_records = acquired
                    .ranges
                    .iter()
                    .map(|r| {
                        AcquiredRecords::default()
                            .with_first_offset(r.first_offset)
                            .with_last_offset(r.last_offset)
                            .with_delivery_count(r.delivery_count)
                    })
                    .collect();
                p.records = Some(acquired.records);
            }
            Some(Err(code)) => p.error_code = code,
            None => {}
        }
        by_topic.entry(key.0).or_default().push(p);
    }
    let mut res = ShareFetchResponse::default();
    res.acquisition_lock_timeout_ms = settings
        .lock_duration_ms
        .unwrap_or_else(|| broker.shares.lock_duration_ms());
    res.responses = by_topic
        .into_iter()
        .map(|(topic_id, partitions)| {
            ShareFetchableTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    Reply::new(res)
}

/// Who fetches, and how the group reads.
struct Fetch<'a> {
    group: &'a str,
    member: &'a str,
    settings: &'a ShareGroupSettings,
}

/// Acquires records of every session partition; while none is acquired and nothing
/// failed, waits for records (produced, released or expired) until MaxWaitMs.
async fn acquire_waiting(
    broker: &Broker,
    session: &Session,
    Fetch {
        group,
        member,
        settings,
    }: Fetch<'_>,
    parts: &std::collections::BTreeSet<SharePartitionKey>,
    req: &ShareFetchRequest,
) -> BTreeMap<SharePartitionKey, Result<Acquired, i16>> {
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = tokio::time::Instant::now() + max_wait;
    let per_partition_bytes = (req.max_bytes.max(1) as usize / parts.len().max(1)).max(1);
    loop {
        let changed = broker.shares.changes();
        let mut results = BTreeMap::new();
        let mut remaining = req.max_records.max(0) as usize;
        let mut waiters = Vec::new();
        for key in parts {
            let acquired = match resolve(broker, session, *key) {
                Err(e) => Err(e.code()),
                Ok((partition, _)) if remaining == 0 => {
                    waiters.push(partition.subscribe());
                    Ok(Acquired::default())
                }
                Ok((partition, leader_epoch)) => {
                    waiters.push(partition.subscribe());
                    match broker
                        .shares
                        .acquire(
                            group,
                            member,
                            LedPartition {
                                key: *key,
                                partition: &partition,
                                leader_epoch,
                            },
                            settings,
                            FetchBudget {
                                records: remaining,
                                bytes: per_partition_bytes,
                            },
                            broker.tier.as_ref().map(|t| &t.reader),
                        )
                        .await
                    {
                        Err(code) if still_starting(code) => Ok(Acquired::default()),
                        acquired => acquired,
                    }
                }
            };
            if let Ok(a) = &acquired {
                let n: i64 = a
                    .ranges
                    .iter()
                    .map(|r| r.last_offset - r.first_offset + 1)
                    .sum();
                remaining = remaining.saturating_sub(n as usize);
            }
            results.insert(*key, acquired);
        }
        let any = results
            .values()
            .any(|r| r.as_ref().map_or(true, |a| !a.ranges.is_empty()));
        if any || parts.is_empty() || tokio::time::Instant::now() >= deadline {
            return results;
        }
        broker.shares.wait_changed(changed, deadline, waiters).await;
    }
}

/// ShareAcknowledge: the member's acknowledgements in its share session; epoch -1 also
/// closes the session and releases what the member still holds.
pub(crate) async fn share_acknowledge(
    broker: &Broker,
    session: &Session,
    req: ShareAcknowledgeRequest,
    _version: i16,
) -> Reply<ShareAcknowledgeResponse> {
    let fail = |e: ResponseError| {
        let mut res = ShareAcknowledgeResponse::default();
        res.error_code = e.code();
        Reply::new(res)
    };
    let (group, member) = match member_of(
        broker,
        session,
        req.group_id.as_deref().map(|g| g.as_str()),
        req.member_id.as_deref(),
    ) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let epoch = req.share_session_epoch;
    // An acknowledgement never opens a session.
    if epoch == OPEN_EPOCH {
        return fail(ResponseError::InvalidShareSessionEpoch);
    }
    let parts =
        match broker
            .shares
            .session(&group, &member, epoch, session.connection, Vec::new(), &[])
        {
            Ok(parts) => parts,
            Err(e) => return fail(e),
        };
    let mut acks: BTreeMap<SharePartitionKey, AckBatches> = BTreeMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            acks.entry((t.topic_id, p.partition_index))
                .or_default()
                .extend(
                    p.acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
                );
        }
    }
    let codes = acknowledge_all(broker, session, &group, &member, &acks).await;
    tracing::debug!(group, member, epoch, acks = ?acks, codes = ?codes, "share acknowledgements");
    if epoch == CLOSE_EPOCH {
        broker.shares.release(&group, &member, &parts).await;
    }
    let mut by_topic: BTreeMap<Uuid, Vec<AckPartitionData>> = BTreeMap::new();
    for ((topic_id, index), code) in codes {
        let mut p = AckPartitionData::default()
            .with_partition_index(index)
            .with_current_leader(
                kafka_protocol::messages::share_acknowledge_response::LeaderIdAndEpoch::default()
                    .with_leader_id(-1)
                    .with_leader_epoch(-1),
            );
        p.error_code = code;
        if code != NONE {
            p.error_message =
                ResponseError::try_from_code(code).map(|e| StrBytes::from_string(e.to_string()));
        }
        by_topic.entry(topic_id).or_default().push(p);
    }
    let mut res = ShareAcknowledgeResponse::default();
    res.responses = by_topic
        .into_iter()
        .map(|(topic_id, partitions)| {
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    Reply::new(res)
}
