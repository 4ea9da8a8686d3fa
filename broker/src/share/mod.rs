//! Share groups' records on this broker (KIP-932): the share-partitions of the partitions
//! it leads, the members' share sessions, acquisition locks and their expiry. As in Kafka,
//! the leader of a partition serves ShareFetch and ShareAcknowledge for it without asking
//! the group coordinator: a record is acknowledged only by the member that acquired it.
//!
//! A share-partition starts when a group first fetches the partition here, at the high
//! watermark (`share.auto.offset.reset` latest, Kafka's default). Its state lives in
//! memory.

pub(crate) mod partition;
pub(crate) mod sessions;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use sluice_config::ShareConfig;
use sluice_protocol::batch::read_header;
use sluice_storage::{Isolation, Partition, ReadError};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::clock::Clock;
use partition::{AckError, AckType, AcquiredRange, Limits, LogBatch, SharePartition};
use sessions::{SharePartitionKey, ShareSessions};

/// What one partition of a ShareFetch gets.
#[derive(Debug, Default)]
pub(crate) struct Acquired {
    pub(crate) ranges: Vec<AcquiredRange>,
    /// Whole batches of the log covering the ranges.
    pub(crate) records: Bytes,
}

/// Share-partitions by group, topic id and partition.
type SharePartitions = HashMap<(String, Uuid, i32), Arc<Mutex<SharePartition>>>;

/// The share-partitions and share sessions of this broker.
pub(crate) struct ShareManager {
    partitions: Mutex<SharePartitions>,
    sessions: Mutex<ShareSessions>,
    /// Woken when records become available again (acks, releases, expired locks), for
    /// fetches waiting for records.
    changed: Notify,
    /// Woken when a lock earlier than the timer's next wake-up may have been taken.
    timer: Notify,
    config: ShareConfig,
    clock: Arc<dyn Clock>,
}

impl ShareManager {
    /// A manager with `config`'s limits and time from `clock`.
    pub(crate) fn new(config: ShareConfig, clock: Arc<dyn Clock>) -> Self {
        ShareManager {
            partitions: Mutex::new(HashMap::new()),
            sessions: Mutex::new(ShareSessions::new(config.max_share_sessions)),
            changed: Notify::new(),
            timer: Notify::new(),
            config,
            clock,
        }
    }

    /// `group.share.record.lock.duration.ms`, as ShareFetch answers it.
    pub(crate) fn lock_duration_ms(&self) -> i32 {
        self.config.record_lock_duration_ms
    }

    fn sessions(&self) -> MutexGuard<'_, ShareSessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn partitions(&self) -> MutexGuard<'_, SharePartitions> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn existing(&self, group: &str, key: SharePartitionKey) -> Option<Arc<Mutex<SharePartition>>> {
        self.partitions()
            .get(&(group.to_string(), key.0, key.1))
            .cloned()
    }

    /// Opens, moves on or closes the member's share session for a request of `epoch`;
    /// the session's partitions (those it had, for a close).
    pub(crate) fn session(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        connection: u64,
        added: Vec<SharePartitionKey>,
        forgotten: &[SharePartitionKey],
    ) -> Result<BTreeSet<SharePartitionKey>, ResponseError> {
        let mut sessions = self.sessions();
        match epoch {
            sessions::OPEN_EPOCH => sessions.open(group, member, connection, added),
            sessions::CLOSE_EPOCH => sessions.close(group, member),
            e if e > 0 => sessions.next(group, member, e, added, forgotten),
            _ => Err(ResponseError::InvalidShareSessionEpoch),
        }
    }

    /// Releases what `member` holds on `partitions` (its session ended).
    pub(crate) fn release(
        &self,
        group: &str,
        member: &str,
        partitions: &BTreeSet<SharePartitionKey>,
    ) {
        let mut released = 0;
        for key in partitions {
            if let Some(sp) = self.existing(group, *key) {
                released += lock(&sp).release_member(member);
            }
        }
        if released > 0 {
            tracing::debug!(
                group,
                member,
                released,
                "released a share session's records"
            );
            self.changed.notify_waiters();
        }
    }

    /// Forgets a deleted group's share-partitions on this broker.
    pub(crate) fn forget_group(&self, group: &str) {
        self.partitions().retain(|(g, _, _), _| g != group);
    }

    /// Ends the share sessions of a closed connection and releases their records.
    pub(crate) fn connection_closed(&self, connection: u64) {
        let ended = self.sessions().connection_closed(connection);
        for (group, member, partitions) in ended {
            self.release(&group, &member, &partitions);
        }
    }

    /// Applies one member's acknowledgements of a partition, all or none. A partition
    /// the group never fetched here is UNKNOWN_TOPIC_OR_PARTITION.
    pub(crate) fn acknowledge(
        &self,
        group: &str,
        member: &str,
        key: SharePartitionKey,
        batches: &[(i64, i64, Vec<i8>)],
    ) -> Result<(), ResponseError> {
        let mut typed = Vec::with_capacity(batches.len());
        for (first, last, types) in batches {
            let types: Option<Vec<AckType>> =
                types.iter().map(|t| AckType::from_code(*t)).collect();
            let types = types
                .filter(|t| !t.is_empty())
                .ok_or(ResponseError::InvalidRequest)?;
            typed.push((*first, *last, types));
        }
        let sp = self
            .existing(group, key)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        let done = lock(&sp).acknowledge(member, &typed);
        match done {
            Ok(()) => {
                self.changed.notify_waiters();
                Ok(())
            }
            Err(AckError::InvalidRecordState) => Err(ResponseError::InvalidRecordState),
            Err(AckError::InvalidRequest) => Err(ResponseError::InvalidRequest),
        }
    }

    /// Acquires records of `partition` for `member`: records made available again first,
    /// then fresh ones from the log, up to about `max_records` and `max_bytes`.
    pub(crate) fn acquire(
        &self,
        group: &str,
        member: &str,
        key: SharePartitionKey,
        partition: &Partition,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Acquired, ReadError> {
        let sp = {
            let mut all = self.partitions();
            all.entry((group.to_string(), key.0, key.1))
                .or_insert_with(|| {
                    let start = partition.high_watermark();
                    tracing::debug!(group, partition = key.1, start, "share-partition started");
                    Arc::new(Mutex::new(SharePartition::new(start, self.limits())))
                })
                .clone()
        };
        let mut sp = lock(&sp);
        sp.skip_to_log_start(partition.log_start_offset());
        let lock_deadline = self.clock.now()
            + Duration::from_millis(self.config.record_lock_duration_ms.max(0) as u64);
        let mut ranges = sp.acquire_available(member, max_records, lock_deadline);
        let mut taken: usize = ranges
            .iter()
            .map(|r| (r.last_offset - r.first_offset + 1) as usize)
            .sum();
        let mut fresh_bytes = Bytes::new();
        if taken < max_records && sp.has_room() {
            let data = partition.read(sp.next_fresh(), max_bytes, Isolation::ReadUncommitted)?;
            let batches = log_batches(&data.records);
            let fresh = sp.acquire_fresh(member, &batches, max_records - taken, lock_deadline);
            taken += fresh
                .iter()
                .map(|r| (r.last_offset - r.first_offset + 1) as usize)
                .sum::<usize>();
            fresh_bytes = data.records;
            ranges.extend(fresh);
        }
        drop(sp);
        if taken > 0 {
            self.timer.notify_one();
        }
        let records = covering(partition, &ranges, fresh_bytes, max_bytes)?;
        Ok(Acquired { ranges, records })
    }

    fn limits(&self) -> Limits {
        Limits {
            delivery_count_limit: self.config.delivery_count_limit,
            max_in_flight: i64::from(self.config.partition_max_record_locks),
        }
    }

    /// Waits until records may have become available again, or `deadline`.
    pub(crate) async fn wait_changed(
        &self,
        deadline: tokio::time::Instant,
        mut waiters: Vec<watch::Receiver<i64>>,
    ) {
        let changed = self.changed.notified();
        let moved = async {
            if waiters.is_empty() {
                std::future::pending::<()>().await;
            }
            let _ = futures::future::select_all(waiters.iter_mut().map(|w| Box::pin(w.changed())))
                .await;
        };
        tokio::select! {
            _ = changed => {}
            _ = moved => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }

    /// Releases records whose acquisition lock expired, until `stop`.
    pub(crate) async fn run_lock_timer(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let now = self.clock.now();
            let all: Vec<_> = self.partitions().values().cloned().collect();
            let mut released = 0;
            let mut next: Option<Instant> = None;
            for sp in &all {
                let mut sp = lock(sp);
                released += sp.expire_locks(now);
                next = match (next, sp.next_deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if released > 0 {
                tracing::debug!(released, "released records whose acquisition lock expired");
                self.changed.notify_waiters();
            }
            let sleep = match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.timer.notified() => {}
                _ = crate::stopped(&mut stop) => return,
            }
        }
    }
}

fn lock(sp: &Mutex<SharePartition>) -> MutexGuard<'_, SharePartition> {
    sp.lock().unwrap_or_else(|p| p.into_inner())
}

/// The offsets of each whole batch in `records`.
fn log_batches(records: &Bytes) -> Vec<LogBatch> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Ok(h) = read_header(&records[pos..]) {
        out.push(LogBatch {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        pos += h.size();
        if pos >= records.len() {
            break;
        }
    }
    out
}

/// Whole batches of the log that hold the acquired offsets: the fresh read's, and for
/// records acquired again, the batches read back from the log.
fn covering(
    partition: &Partition,
    ranges: &[AcquiredRange],
    fresh: Bytes,
    max_bytes: usize,
) -> Result<Bytes, ReadError> {
    let mut batches: Vec<(i64, i64, Bytes)> = Vec::new();
    let add = |batches: &mut Vec<(i64, i64, Bytes)>, records: &Bytes| {
        let mut pos = 0;
        while let Ok(h) = read_header(&records[pos..]) {
            let end = (pos + h.size()).min(records.len());
            let (first, last) = (h.base_offset, h.last_offset());
            let wanted = ranges
                .iter()
                .any(|r| r.first_offset <= last && first <= r.last_offset);
            if wanted && !batches.iter().any(|(b, _, _)| *b == first) {
                batches.push((first, last, records.slice(pos..end)));
            }
            pos = end;
            if pos >= records.len() {
                break;
            }
        }
    };
    add(&mut batches, &fresh);
    for r in ranges {
        let mut offset = r.first_offset;
        while offset <= r.last_offset {
            if let Some((_, last, _)) = batches
                .iter()
                .find(|(b, l, _)| *b <= offset && offset <= *l)
            {
                offset = last + 1;
                continue;
            }
            let data = match partition.read(offset, max_bytes, Isolation::ReadUncommitted) {
                Ok(d) => d,
                // Gone with retention since it was acquired: the client acknowledges a gap.
                Err(ReadError::OutOfRange { .. }) => break,
                Err(e) => return Err(e),
            };
            if data.records.is_empty() {
                break;
            }
            let before = batches.len();
            add(&mut batches, &data.records);
            if batches.len() == before {
                break;
            }
        }
    }
    batches.sort_by_key(|(b, _, _)| *b);
    let mut out = BytesMut::new();
    for (_, _, b) in batches {
        out.extend_from_slice(&b);
    }
    Ok(out.freeze())
}
