//! Fetch: read whole batches from each partition, long-poll until `min_bytes` arrive or
//! `max_wait_ms` passes (woken by appends, never by polling), and keep fetch sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::ResponseError;
use sluice_storage::{Isolation, Partition};
use uuid::Uuid;

use super::topic_name;
use crate::acl::{Operation, Resource};
use crate::api::reply::{Answer, Body, FrameHeader, PartitionRecords, QuotaUse, Reply};
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::fetch_session::{PartitionKey, SessionError, SessionPartition, TopicKey};
use crate::response::Response;
use crate::session::Session;

mod frame;
mod long_poll;
mod read;
mod read_replica;
mod remote;
mod replica;

use read::{read_all, ReadResult};
use read_replica::consumer_read;

/// Longest wait a client may ask for; Kafka's clients stay far below it.
pub(super) const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// One partition to read.
#[derive(Clone)]
struct Target {
    /// The topic's name; empty for an unknown topic id.
    name: String,
    index: i32,
    topic_id: Uuid,
    fetch_offset: i64,
    max_bytes: i32,
    partition: Option<Arc<Partition>>,
    /// Error for a partition that cannot be read at all.
    error: Option<i16>,
    /// In an incremental session: what the client was last told.
    last_sent: Option<(i64, i64)>,
    /// The replica the consumer should read from instead (KIP-392): nothing is read.
    preferred_read_replica: Option<i32>,
    /// A follower serves a consumer that named no leader epoch: an offset above its log
    /// end is answered without records rather than OFFSET_OUT_OF_RANGE, as Kafka does
    /// (the consumer may have come early, before this replica caught up).
    empty_beyond_log_end: bool,
}

enum Mode {
    Sessionless,
    /// A full fetch: a session is created for the answer if the cache makes room.
    Full,
    Incremental(i32),
}

impl Target {
    /// The partition as a session keys it: by id from v13, by name below.
    fn session_key(&self, by_id: bool) -> PartitionKey {
        let topic = if by_id {
            TopicKey::Id(self.topic_id)
        } else {
            TopicKey::Name(self.name.clone())
        };
        (topic, self.index)
    }
}

impl Answer for FetchResponse {
    fn error_codes(&self, note: &mut dyn FnMut(i16)) {
        note(self.error_code);
        self.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| note(p.error_code));
    }

    fn set_throttle_ms(&mut self, ms: i32, version: i16) {
        if version >= 1 {
            self.throttle_time_ms = ms;
        }
    }

    fn encode_frame(
        self,
        records: Vec<PartitionRecords>,
        header: FrameHeader,
    ) -> anyhow::Result<Response> {
        frame::encode(&self, &records, header.version, header.correlation_id)
    }
}

/// Answers Fetch.
pub(crate) async fn handle(
    broker: &Broker,
    session: &Session,
    req: FetchRequest,
    version: i16,
) -> Reply<FetchResponse> {
    if let Some(cluster) = &broker.cluster {
        let replica_id = replica_id(&req, version);
        if replica_id >= 0 {
            return replica::handle(broker, session, &cluster.replicas, req, replica_id).await;
        }
    }
    let by_id = version >= 13;
    let requested = request_targets(broker, session, &req, by_id, version);
    // Fetch v4-v6 has no session fields: Kafka reads it as sessionless.
    let (id, epoch) = if version >= 7 {
        (req.session_id, req.session_epoch)
    } else {
        (0, -1)
    };
    // Kafka's FetchManager.newContext: epoch 0 or -1 is a full fetch, which first closes
    // any session it names (a client resetting its session after a rebalance sends its old
    // id with epoch 0); any other epoch is incremental, even with session id 0.
    let (mode, targets) = if epoch == 0 || epoch == -1 {
        if id != 0 && broker.fetch_sessions.remove(id) {
            tracing::debug!(session = id, "fetch session closed by a full fetch");
        }
        let mode = if epoch == 0 {
            Mode::Full
        } else {
            Mode::Sessionless
        };
        (mode, requested)
    } else {
        match incremental_targets(
            broker,
            session,
            &req,
            (id, epoch),
            by_id,
            version,
            &requested,
        ) {
            Ok(Some(t)) => (Mode::Incremental(id), t),
            // The request removed the session's last partition: closed, answered sessionless.
            Ok(None) => (Mode::Sessionless, requested),
            Err(e) => {
                let error = match e {
                    SessionError::NotFound => ResponseError::FetchSessionIdNotFound,
                    SessionError::InvalidEpoch => ResponseError::InvalidFetchSessionEpoch,
                    SessionError::TopicIdMismatch => ResponseError::FetchSessionTopicIdError,
                };
                return Reply::new(top_level_error(code(error))).quota(QuotaUse::ResponseBytes);
            }
        }
    };

    let read_committed = req.isolation_level == 1;
    let isolation = if read_committed {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = tokio::time::Instant::now() + max_wait;
    let max_bytes = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let min_bytes = req.min_bytes.max(0) as usize;
    let waiters: Vec<_> = targets
        .iter()
        .filter_map(|t| t.partition.as_ref().map(|p| p.subscribe()))
        .collect();
    let (results, waited) = long_poll::long_poll(
        deadline,
        waiters,
        || read_all(&targets, max_bytes, isolation),
        |results| {
            let bytes: usize = results.iter().map(ReadResult::len).sum();
            // An answer naming another replica goes at once, as Kafka's does.
            bytes >= min_bytes.max(1)
                || results
                    .iter()
                    .any(|r| r.error_code != NONE || r.remote.is_some())
                || targets.iter().any(|t| t.preferred_read_replica.is_some())
        },
    )
    .await;
    let results = remote::read_remote(broker, results, read_committed).await;

    let mut response = FetchResponse::default();
    response.error_code = NONE;
    let incremental = matches!(mode, Mode::Incremental(_));
    response.session_id = match mode {
        Mode::Sessionless => 0,
        Mode::Incremental(id) => id,
        // Created now, from what this answer tells the client, as Kafka's FullFetchContext
        // does; 0 when the cache is full and nothing in it may be evicted.
        Mode::Full => {
            let cached = targets
                .iter()
                .zip(&results)
                .map(|(t, pd)| {
                    let (hw, lso) = last_sent(pd);
                    let sp = SessionPartition {
                        fetch_offset: t.fetch_offset,
                        max_bytes: t.max_bytes,
                        last_high_watermark: hw,
                        last_log_start_offset: lso,
                    };
                    (t.session_key(by_id), sp)
                })
                .collect();
            broker
                .fetch_sessions
                .create(Instant::now(), is_follower(&req, version), by_id, cached)
        }
    };
    let mut sent: Vec<(PartitionKey, i64, i64)> = Vec::new();
    let mut records = Vec::new();
    let mut bytes_out: Vec<(String, usize)> = Vec::new();
    for (t, pd) in targets.iter().zip(results) {
        if incremental {
            let unchanged = pd.len() == 0
                && pd.error_code == NONE
                && t.preferred_read_replica.is_none()
                && t.last_sent == Some((pd.high_watermark, pd.log_start_offset));
            if unchanged {
                continue;
            }
            let (hw, lso) = last_sent(&pd);
            sent.push((t.session_key(by_id), hw, lso));
        }
        let mut data = PartitionData::default();
        data.partition_index = t.index;
        data.error_code = pd.error_code;
        data.high_watermark = pd.high_watermark;
        data.last_stable_offset = pd.last_stable_offset;
        if version >= 5 {
            data.log_start_offset = pd.log_start_offset;
        }
        if version >= 11 {
            data.preferred_read_replica =
                kafka_protocol::messages::BrokerId(t.preferred_read_replica.unwrap_or(-1));
        }
        // Null for read_uncommitted; for read_committed the aborted transactions with
        // records in the returned batches, so the client can drop them.
        data.aborted_transactions = read_committed.then(|| {
            pd.aborted
                .iter()
                .map(|a| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(a.producer_id))
                        .with_first_offset(a.first_offset)
                })
                .collect()
        });
        // Empty records as Kafka sends them, or null ones where a region stands in.
        let region = pd.records.filter(|r| !r.is_empty());
        data.records = region.is_none().then(Bytes::new);
        if let Some(remote) = pd.remote_records.filter(|r| !r.is_empty()) {
            match bytes_out.last_mut() {
                Some((name, bytes)) if *name == t.name => *bytes += remote.len(),
                _ => bytes_out.push((t.name.clone(), remote.len())),
            }
            data.records = Some(remote);
        }
        let new_topic = !response
            .responses
            .last()
            .is_some_and(|last| same_topic(last, t, by_id));
        if new_topic {
            let mut tr = FetchableTopicResponse::default();
            // Topics are named up to v12 and identified by id from v13.
            if by_id {
                tr.topic_id = t.topic_id;
            } else {
                tr.topic = topic_name(&t.name);
            }
            response.responses.push(tr);
        }
        let topic_index = response.responses.len().saturating_sub(1);
        let Some(topic) = response.responses.last_mut() else {
            continue;
        };
        if let Some(region) = region {
            // Only topics that send records are named, so an empty long poll allocates nothing.
            match bytes_out.last_mut() {
                Some((name, bytes)) if *name == t.name => *bytes += region.len(),
                _ => bytes_out.push((t.name.clone(), region.len())),
            }
            records.push(PartitionRecords {
                topic: topic_index,
                partition: topic.partitions.len(),
                region,
            });
        }
        topic.partitions.push(data);
    }
    if let Mode::Incremental(id) = mode {
        broker.fetch_sessions.update(id, |s| {
            for (key, hw, lso) in sent {
                if let Some(p) = s.partitions.get_mut(&key) {
                    p.last_high_watermark = hw;
                    p.last_log_start_offset = lso;
                }
            }
        });
    }
    Reply {
        body: Body::Records(records),
        bytes_out,
        ..Reply::new(response)
            .quota(QuotaUse::ResponseBytes)
            .waited(waited)
    }
}

fn same_topic(tr: &FetchableTopicResponse, t: &Target, by_id: bool) -> bool {
    if by_id {
        tr.topic_id == t.topic_id
    } else {
        tr.topic.as_str() == t.name
    }
}

/// What a session remembers as sent for a partition: an error is remembered as high
/// watermark -1, so the partition is sent again once the error goes away (Kafka's
/// `CachedPartition.maybeUpdateResponseData`).
fn last_sent(pd: &ReadResult) -> (i64, i64) {
    let hw = if pd.error_code == NONE {
        pd.high_watermark
    } else {
        -1
    };
    (hw, pd.log_start_offset)
}

/// Kafka's `FetchRequest.isFromFollower`: a replica id of 0 or more; its sessions are
/// privileged in the cache.
fn is_follower(req: &FetchRequest, version: i16) -> bool {
    replica_id(req, version) >= 0
}

/// The fetching replica's id (-1 for a consumer): in the body up to v14, in the replica
/// state from v15.
fn replica_id(req: &FetchRequest, version: i16) -> i32 {
    if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    }
}

fn top_level_error(error_code: i16) -> FetchResponse {
    let mut r = FetchResponse::default();
    r.error_code = error_code;
    r
}

fn session_partition(t: &Target) -> SessionPartition {
    SessionPartition {
        fetch_offset: t.fetch_offset,
        max_bytes: t.max_bytes,
        last_high_watermark: -1,
        last_log_start_offset: -1,
    }
}

/// The partitions named in the request, resolved against storage.
fn request_targets(
    broker: &Broker,
    session: &Session,
    req: &FetchRequest,
    by_id: bool,
    version: i16,
) -> Vec<Target> {
    let mut out = Vec::new();
    for topic in &req.topics {
        let (name, found) = if by_id {
            match broker.storage.topic_by_id(topic.topic_id) {
                Some(t) => (t.record.name.clone(), Some(t)),
                None => (String::new(), None),
            }
        } else {
            let name = topic.topic.to_string();
            let found = broker.storage.topic(&name);
            (name, found)
        };
        let allowed = session.may(broker, Operation::Read, Resource::Topic, &name);
        let missing = if !allowed {
            code(ResponseError::TopicAuthorizationFailed)
        } else if by_id {
            code(ResponseError::UnknownTopicId)
        } else {
            code(ResponseError::UnknownTopicOrPartition)
        };
        for p in &topic.partitions {
            let partition = found.as_ref().filter(|_| allowed).and_then(|t| {
                t.partitions
                    .get(usize::try_from(p.partition).ok()?)
                    .cloned()
            });
            let read = partition
                .as_ref()
                .map(|_| {
                    consumer_read(
                        broker,
                        &name,
                        p.partition,
                        p.current_leader_epoch,
                        version,
                        &req.rack_id,
                    )
                })
                .unwrap_or_default();
            let not_here = read.refused;
            let (partition, missing) = match not_here {
                Some(error) => (None, error),
                None => (partition, missing),
            };
            out.push(Target {
                name: name.clone(),
                index: p.partition,
                topic_id: found
                    .as_ref()
                    .map(|t| t.record.id)
                    .unwrap_or(topic.topic_id),
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                error: partition.is_none().then_some(missing),
                partition,
                last_sent: None,
                preferred_read_replica: read.preferred,
                empty_beyond_log_end: read.by_follower && p.current_leader_epoch < 0,
            });
        }
    }
    out
}

/// Applies an incremental request to its session and returns every partition of it, or
/// `None` when the request left the session empty and so closed it.
fn incremental_targets(
    broker: &Broker,
    session: &Session,
    req: &FetchRequest,
    (id, epoch): (i32, i32),
    by_id: bool,
    version: i16,
    requested: &[Target],
) -> Result<Option<Vec<Target>>, SessionError> {
    let forgotten: Vec<PartitionKey> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|f| {
            let topic = if by_id {
                TopicKey::Id(f.topic_id)
            } else {
                TopicKey::Name(f.topic.to_string())
            };
            f.partitions.iter().map(move |p| (topic.clone(), *p))
        })
        .collect();
    // Kafka's FetchSession.update: the request's partitions are added or updated first,
    // then the forgotten ones removed.
    let cached =
        broker
            .fetch_sessions
            .incremental(id, epoch, by_id, Instant::now(), |partitions| {
                for t in requested {
                    match partitions.get_mut(&t.session_key(by_id)) {
                        Some(p) => {
                            p.fetch_offset = t.fetch_offset;
                            p.max_bytes = t.max_bytes;
                        }
                        None => {
                            partitions.insert(t.session_key(by_id), session_partition(t));
                        }
                    }
                }
                for key in &forgotten {
                    partitions.shift_remove(key);
                }
            })?;
    let Some(cached) = cached else {
        return Ok(None);
    };
    let out = cached
        .into_iter()
        .map(|((topic, index), sp)| {
            let found = match &topic {
                TopicKey::Id(topic_id) => broker.storage.topic_by_id(*topic_id),
                TopicKey::Name(name) => broker.storage.topic(name),
            };
            let name = match (&topic, &found) {
                (TopicKey::Name(name), _) => name.clone(),
                (TopicKey::Id(_), Some(t)) => t.record.name.clone(),
                (TopicKey::Id(_), None) => String::new(),
            };
            // Checked on every fetch: an ACL removed mid-session takes effect at once.
            let allowed = session.may(broker, Operation::Read, Resource::Topic, &name);
            let partition = found
                .as_ref()
                .filter(|_| allowed)
                .and_then(|t| t.partition(index).cloned());
            let read = partition
                .as_ref()
                .map(|_| consumer_read(broker, &name, index, -1, version, &req.rack_id))
                .unwrap_or_default();
            let not_here = read.refused;
            let partition = partition.filter(|_| not_here.is_none());
            let error = match (&partition, allowed, &topic) {
                _ if not_here.is_some() => not_here,
                (_, false, _) => Some(code(ResponseError::TopicAuthorizationFailed)),
                (None, true, TopicKey::Id(_)) if found.is_none() => {
                    Some(code(ResponseError::UnknownTopicId))
                }
                (None, true, _) => Some(code(ResponseError::UnknownTopicOrPartition)),
                (Some(_), true, _) => None,
            };
            Target {
                topic_id: match &topic {
                    TopicKey::Id(topic_id) => *topic_id,
                    TopicKey::Name(_) => found.as_ref().map_or(Uuid::nil(), |t| t.record.id),
                },
                name,
                index,
                error,
                partition,
                fetch_offset: sp.fetch_offset,
                max_bytes: sp.max_bytes,
                last_sent: Some((sp.last_high_watermark, sp.last_log_start_offset)),
                preferred_read_replica: read.preferred,
                // A session keeps no leader epoch: as a consumer that named none.
                empty_beyond_log_end: read.by_follower,
            }
        })
        .collect();
    Ok(Some(out))
}
