//! Replica fetchers: one task per leader this broker follows, sending Fetch requests with
//! this broker's replica id over one connection and appending what comes back as it is
//! (Kafka's ReplicaFetcherThread). A diverging epoch in the answer truncates the log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_cli::{Connection, Security, Timeouts};
use sluice_cluster::ClusterView;
use sluice_storage::{now_ms, Partition, Storage};
use tokio::sync::watch;

use super::manager::TopicPartition;
use super::throttle::{self, ReplicationQuota, FOLLOWER_REPLICAS, UNLIMITED};
use super::truncation::{truncation, EpochEndOffset};

/// Fetch v12: topics by name, the diverging epoch in answers, replica id in the body.
const FETCH_VERSION: i16 = 12;
/// ListOffsets v8: the first to know earliest-local (KIP-405).
const LIST_OFFSETS_VERSION: i16 = 8;
/// ListOffsets' earliest-local timestamp.
const EARLIEST_LOCAL: i64 = -4;

/// How followers fetch, from the broker's properties.
#[derive(Debug, Clone)]
pub(crate) struct FetcherSettings {
    /// This broker's id, sent as the replica id.
    pub(crate) node_id: i32,
    /// The inter-broker listener: the leaders' endpoint to connect to.
    pub(crate) listener: String,
    /// The inter-broker listener's TLS and SASL settings, as a client.
    pub(crate) security: Arc<Security>,
    /// `replica.fetch.wait.max.ms`.
    pub(crate) wait_max_ms: i32,
    /// `replica.fetch.max.bytes`.
    pub(crate) max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub(crate) response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub(crate) backoff: Duration,
    /// Where the follower's replication quota and the topics' throttled replicas are.
    pub(crate) throttle: Arc<FollowerThrottle>,
    /// The remote tier, when tiered storage is on: a follower behind the leader's local
    /// log start restores its producers from it.
    pub(crate) remote: Option<sluice_tier::RemoteReader>,
}

/// The follower side of the replication quotas: what this broker fetched for throttled
/// replicas, against `follower.replication.throttled.rate`.
pub(crate) struct FollowerThrottle {
    /// The broker's configs and the topics' throttled replicas.
    pub(crate) storage: Arc<Storage>,
    /// What was fetched for throttled replicas.
    pub(crate) quota: ReplicationQuota,
}

impl std::fmt::Debug for FollowerThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FollowerThrottle")
    }
}

impl FollowerThrottle {
    /// The partitions of `set` this follower throttles (out of the ISR and listed in
    /// their topic's `follower.replication.throttled.replicas`), and the quota if any.
    fn throttled(&self, node_id: i32, set: &FollowSet) -> (BTreeSet<TopicPartition>, u64) {
        let limit = self
            .storage
            .effective_config()
            .replication_throttle
            .follower;
        if limit >= UNLIMITED {
            return (BTreeSet::new(), limit);
        }
        let throttled = set
            .iter()
            .filter(|((topic, index), f)| {
                !f.in_sync
                    && throttle::throttled(&self.storage, FOLLOWER_REPLICAS, topic, *index, node_id)
            })
            .map(|(key, _)| key.clone())
            .collect();
        (throttled, limit)
    }
}

/// A partition a fetcher copies.
#[derive(Clone)]
pub(crate) struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// This broker is in the partition's ISR (and so never throttled).
    in_sync: bool,
}

type FollowSet = BTreeMap<TopicPartition, Followed>;

struct Fetcher {
    partitions: watch::Sender<FollowSet>,
    address: watch::Sender<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

/// The fetcher tasks, one per leader.
pub(crate) struct Fetchers {
    settings: FetcherSettings,
    running: Mutex<BTreeMap<i32, Fetcher>>,
}

impl Fetchers {
    /// No fetchers yet.
    pub(crate) fn new(settings: FetcherSettings) -> Self {
        Self {
            settings,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets what each leader's fetcher copies; fetchers of leaders no longer followed stop.
    pub(crate) fn assign(
        &self,
        view: &ClusterView,
        follow: BTreeMap<i32, Vec<(TopicPartition, Arc<Partition>, i32)>>,
    ) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|leader, f| {
            let keep = follow.contains_key(leader);
            if !keep {
                f.task.abort();
            }
            keep
        });
        for (leader, partitions) in follow {
            let node_id = self.settings.node_id;
            let set: FollowSet = partitions
                .into_iter()
                .map(|(key, partition, leader_epoch)| {
                    let in_sync = view
                        .partitions
                        .get(&key)
                        .is_some_and(|s| s.isr.contains(&node_id));
                    (
                        key,
                        Followed {
                            partition,
                            leader_epoch,
                            in_sync,
                        },
                    )
                })
                .collect();
            let address = self.address_of(view, leader);
            match running.get(&leader) {
                Some(f) if !f.task.is_finished() => {
                    f.partitions.send_replace(set);
                    f.address.send_if_modified(|a| {
                        let changed = *a != address;
                        *a = address.clone();
                        changed
                    });
                }
                _ => {
                    let (partitions, rx) = watch::channel(set);
                    let (address_tx, address_rx) = watch::channel(address);
                    let settings = self.settings.clone();
                    let task = tokio::spawn(run(settings, leader, address_rx, rx));
                    running.insert(
                        leader,
                        Fetcher {
                            partitions,
                            address: address_tx,
                            task,
                        },
                    );
                }
            }
        }
    }

    /// The leader's address on the inter-broker listener.
    fn address_of(&self, view: &ClusterView, leader: i32) -> Option<String> {
        super::broker_client::inter_broker_address(view, leader, &self.settings.listener)
    }

    /// Stops every fetcher.
    pub(crate) fn stop(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for f in running.values() {
            f.task.abort();
        }
        running.clear();
    }
}

/// One leader's fetcher: connect, fetch, apply, until aborted.
async fn run(
    settings: FetcherSettings,
    leader: i32,
    mut address: watch::Receiver<Option<String>>,
    mut partitions: watch::Receiver<FollowSet>,
) {
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(30),
    };
    loop {
        let Some(addr) = address.borrow_and_update().clone() else {
            tracing::warn!(leader, "the leader has no reachable inter-broker listener");
            let _ = address.changed().await;
            continue;
        };
        let mut conn = match Connection::open(&addr, timeouts, &settings.security).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(leader, %addr, error = %e, "cannot reach the leader");
                tokio::time::sleep(settings.backoff).await;
                continue;
            }
        };
        tracing::info!(leader, %addr, "fetching from the leader");
        loop {
            if address.has_changed().unwrap_or(false) {
                break;
            }
            let mut set = partitions.borrow_and_update().clone();
            if set.is_empty() {
                let _ = partitions.changed().await;
                continue;
            }
            // Throttled partitions sit out while the quota is exceeded.
            let (throttled, limit) = settings.throttle.throttled(settings.node_id, &set);
            if !throttled.is_empty() && settings.throttle.quota.exceeded(limit) {
                set.retain(|key, _| !throttled.contains(key));
                if set.is_empty() {
                    tokio::time::sleep(settings.backoff).await;
                    continue;
                }
            }
            let request = fetch_request(&settings, &set);
            let wait = Duration::from_millis(settings.wait_max_ms.max(0) as u64);
            let response = match conn.send_waiting(&request, FETCH_VERSION, wait).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(leader, %addr, error = %e, "replica fetch failed");
                    tokio::time::sleep(settings.backoff).await;
                    break;
                }
            };
            if response.error_code != 0 {
                tracing::warn!(leader, error = response.error_code, "replica fetch refused");
                tokio::time::sleep(settings.backoff).await;
                continue;
            }
            let mut back_off = false;
            for topic in response.responses {
                for data in topic.partitions {
                    let key = (topic.topic.to_string(), data.partition_index);
                    let Some(followed) = set.get(&key) else {
                        continue;
                    };
                    if throttled.contains(&key) {
                        let bytes = data.records.as_ref().map_or(0, |r| r.len());
                        settings.throttle.quota.record(bytes as u64);
                    }
                    let log_start_offset = data.log_start_offset;
                    match apply(&followed.partition, data).await {
                        Ok(()) => {}
                        Err(e) if e == ResponseError::OffsetMovedToTieredStorage.code() => {
                            if let Err(e) = start_past_the_remote_tier(
                                &settings,
                                &mut conn,
                                followed,
                                log_start_offset,
                            )
                            .await
                            {
                                tracing::warn!(topic = %key.0, partition = key.1, leader, error = %e,
                                    "cannot start after the leader's remote tier yet");
                                back_off = true;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(topic = %key.0, partition = key.1, leader, error = e, "replica fetch error");
                            back_off = true;
                        }
                    }
                }
            }
            if back_off {
                tokio::time::sleep(settings.backoff).await;
            }
        }
    }
}

/// The Fetch a follower sends: from each log end offset, with the last fetched epoch so
/// that the leader can report a divergence.
fn fetch_request(settings: &FetcherSettings, set: &FollowSet) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((topic, index), f) in set {
        let p = &f.partition;
        let last_fetched_epoch = p.epoch_entries().last().map_or(-1, |(e, _)| *e);
        let part = FetchPartition::default()
            .with_partition(*index)
            .with_current_leader_epoch(f.leader_epoch)
            .with_fetch_offset(p.log_end_offset())
            .with_last_fetched_epoch(last_fetched_epoch)
            .with_log_start_offset(p.log_start_offset())
            .with_partition_max_bytes(settings.max_bytes);
        match topics.last_mut() {
            Some(t) if t.topic.as_str() == topic => t.partitions.push(part),
            _ => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(settings.node_id))
        .with_max_wait_ms(settings.wait_max_ms)
        .with_min_bytes(1)
        .with_max_bytes(settings.response_max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// A follower behind the leader's local log start (OFFSET_MOVED_TO_TIERED_STORAGE), as
/// Kafka's follower builds its remote log auxiliary state: asks the leader for its local
/// log start offset (ListOffsets earliest-local), restores the producers from the remote
/// segment just below it, and restarts its local log there, the remote tier holding the
/// offsets from the log start offset up to it.
async fn start_past_the_remote_tier(
    settings: &FetcherSettings,
    conn: &mut Connection,
    followed: &Followed,
    log_start_offset: i64,
) -> anyhow::Result<()> {
    let p = &followed.partition;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(settings.node_id))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(p.topic.clone())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(p.index)
                .with_current_leader_epoch(followed.leader_epoch)
                .with_timestamp(EARLIEST_LOCAL)])]);
    let response = conn.send(&request, LIST_OFFSETS_VERSION).await?;
    let answer = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("the leader did not answer for the partition")?;
    anyhow::ensure!(
        answer.error_code == 0,
        "the leader refused earliest-local with error {}",
        answer.error_code
    );
    let local_start = answer.offset;
    anyhow::ensure!(local_start >= 0, "the leader has no local log start");
    let snapshot = if local_start > log_start_offset {
        let below = p
            .remote_segments()
            .into_iter()
            .find(|s| s.base_offset < local_start && s.end_offset >= local_start - 1)
            .context(
                "the remote segment below the leader's local log start is not known here yet",
            )?;
        let reader = settings
            .remote
            .as_ref()
            .context("tiered storage is off on this broker")?;
        Some(reader.producer_snapshot(&below).await?)
    } else {
        None
    };
    tracing::info!(topic = %p.topic, partition = p.index, local_log_start_offset = local_start,
        log_start_offset, "follower restarts its local log after the leader's remote tier");
    p.truncate_fully_and_start_at_tiered(local_start, log_start_offset, snapshot.as_deref())?;
    Ok(())
}

/// Applies one partition's answer: truncate on a divergence, append the batches, move the
/// high watermark and log start offset to the leader's. Errors are Kafka error codes.
async fn apply(p: &Partition, data: PartitionData) -> Result<(), i16> {
    if data.error_code == ResponseError::OffsetOutOfRange.code() {
        let leo = p.log_end_offset();
        if leo < data.log_start_offset {
            // Behind the leader's log start: start over from there (Kafka's
            // truncateFullyAndStartAt).
            tracing::info!(topic = %p.topic, partition = p.index, from = data.log_start_offset, "follower behind the leader's log start");
            p.truncate_fully_and_start_at(data.log_start_offset)
                .map_err(|_| ResponseError::KafkaStorageError.code())?;
            return Ok(());
        }
        return Err(data.error_code);
    }
    if data.error_code != 0 {
        return Err(data.error_code);
    }
    if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 {
        let leader = EpochEndOffset {
            epoch: data.diverging_epoch.epoch,
            end_offset: data.diverging_epoch.end_offset,
        };
        let (epoch, end_offset) = p.end_offset_for_epoch(leader.epoch);
        let follower = EpochEndOffset { epoch, end_offset };
        let cut = truncation(leader, follower, p.log_end_offset(), p.high_watermark());
        tracing::info!(topic = %p.topic, partition = p.index, offset = cut.offset, complete = cut.complete, "truncating a diverging log");
        p.truncate_to(cut.offset)
            .map_err(|_| ResponseError::KafkaStorageError.code())?;
        return Ok(());
    }
    let records = data.records.unwrap_or_default();
    if !records.is_empty() {
        match p.append_replicated(&records, now_ms()) {
            Ok(appended) => {
                if appended.flush_due {
                    p.flush_to(appended.last_offset)
                        .await
                        .map_err(|_| ResponseError::KafkaStorageError.code())?;
                }
            }
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cannot append the leader's batches");
                return Err(ResponseError::CorruptMessage.code());
            }
        }
    }
    p.advance_high_watermark(data.high_watermark.min(p.log_end_offset()));
    if data.log_start_offset > p.log_start_offset() {
        let _ = p.delete_records_before(data.log_start_offset.min(p.high_watermark()));
    }
    Ok(())
}
