//! Share groups' records on this broker (KIP-932): the share-partitions of the partitions
//! it leads, the members' share sessions, acquisition locks and their expiry. As in Kafka,
//! the leader of a partition serves ShareFetch and ShareAcknowledge for it without asking
//! the group coordinator: a record is acknowledged only by the member that acquired it.
//!
//! A share-partition starts when a group first fetches the partition here: from its
//! durable state at the share coordinator ([`persister`]), or the first time at the high
//! watermark (`share.auto.offset.reset` latest, Kafka's default), which is written at once.
//! Acknowledgements are answered once their state is written; releases and expired locks
//! are written as they happen. Acquisitions are not written: after a restart or a new
//! leader, what was acquired is available again, its deliveries counted.

pub(crate) mod coordinator;
pub(crate) mod partition;
pub(crate) mod persister;
pub(crate) mod reads;
pub(crate) mod records;
pub(crate) mod sessions;

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use sluice_config::ShareConfig;
use sluice_storage::{Isolation, Partition};
use tokio::sync::futures::Notified;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::clock::Clock;
use crate::group_configs::ShareGroupSettings;
use partition::{AckError, AckType, AcquiredRange, Limits, SharePartition, ShareStats};
use persister::SharePersister;
use records::{ShareKey, ShareState};
use sessions::{SharePartitionKey, ShareSessions};

/// A partition this broker leads, as a share request names it.
#[derive(Clone, Copy)]
pub(crate) struct LedPartition<'a> {
    pub(crate) key: SharePartitionKey,
    pub(crate) partition: &'a Partition,
    /// The leader epoch it is led in (-1 on a single node).
    pub(crate) leader_epoch: i32,
}

/// The most one read of the log takes for a ShareFetch of one partition.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// How much one partition of a ShareFetch may take: about this many records (whole
/// batches) and bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchBudget {
    pub(crate) records: usize,
    pub(crate) bytes: usize,
}

/// How many records `ranges` hold.
fn records_in(ranges: &[AcquiredRange]) -> usize {
    ranges
        .iter()
        .map(|r| (r.last_offset - r.first_offset + 1) as usize)
        .sum()
}

/// What one partition of a ShareFetch gets.
#[derive(Debug, Default)]
pub(crate) struct Acquired {
    pub(crate) ranges: Vec<AcquiredRange>,
    /// Whole batches of the log covering the ranges.
    pub(crate) records: Bytes,
}

/// One share-partition here.
struct Entry {
    key: ShareKey,
    /// The partition's leader epoch when it started here (-1 on a single node): a later
    /// epoch means leadership went away meanwhile, and the state is read again.
    leader_epoch: i32,
    state: Mutex<SharePartition>,
    /// Writes of the state go one at a time, each with the state as it is when it goes.
    writes: tokio::sync::Mutex<()>,
}

/// Share-partitions by group, topic id and partition.
type SharePartitions = HashMap<(String, Uuid, i32), Arc<Entry>>;

/// The share-partitions and share sessions of this broker.
pub(crate) struct ShareManager {
    partitions: Mutex<SharePartitions>,
    sessions: Mutex<ShareSessions>,
    /// Woken when records become available again (acks, releases, expired locks), for
    /// fetches waiting for records.
    changed: Notify,
    /// Woken when a lock earlier than the timer's next wake-up may have been taken.
    timer: Notify,
    /// Share-partitions start one at a time (each reads its durable state first).
    starting: tokio::sync::Mutex<()>,
    persister: Arc<dyn SharePersister>,
    config: ShareConfig,
    clock: Arc<dyn Clock>,
    /// Record transitions of every share-partition so far, for the metrics.
    totals: Mutex<ShareStats>,
}

impl ShareManager {
    /// A manager with `config`'s limits, the durable state behind `persister`, and time
    /// from `clock`.
    pub(crate) fn new(
        config: ShareConfig,
        persister: Arc<dyn SharePersister>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ShareManager {
            partitions: Mutex::new(HashMap::new()),
            sessions: Mutex::new(ShareSessions::new(config.max_share_sessions)),
            changed: Notify::new(),
            timer: Notify::new(),
            starting: tokio::sync::Mutex::new(()),
            persister,
            config,
            clock,
            totals: Mutex::new(ShareStats::default()),
        }
    }

    /// `group.share.record.lock.duration.ms`, as ShareFetch answers it.
    pub(crate) fn lock_duration_ms(&self) -> i32 {
        self.config.record_lock_duration_ms
    }

    /// Adds a share-partition's transitions to the totals.
    fn count(&self, sp: &mut SharePartition) {
        let s = sp.take_stats();
        let mut t = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        t.delivered += s.delivered;
        t.redelivered += s.redelivered;
        t.acknowledged += s.acknowledged;
        t.archived += s.archived;
    }

    /// Record transitions so far.
    pub(crate) fn totals(&self) -> ShareStats {
        *self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records acquired and records available again, over this broker's share-partitions.
    pub(crate) fn in_flight(&self) -> (usize, usize) {
        let all: Vec<_> = self.partitions().values().cloned().collect();
        all.iter().fold((0, 0), |(a, v), e| {
            let (ea, ev) = lock(&e.state).in_flight_counts();
            (a + ea, v + ev)
        })
    }

    fn sessions(&self) -> MutexGuard<'_, ShareSessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn partitions(&self) -> MutexGuard<'_, SharePartitions> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn existing(&self, group: &str, key: SharePartitionKey) -> Option<Arc<Entry>> {
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
    pub(crate) async fn release(
        &self,
        group: &str,
        member: &str,
        partitions: &BTreeSet<SharePartitionKey>,
    ) {
        let mut released = 0;
        for key in partitions {
            let Some(entry) = self.existing(group, *key) else {
                continue;
            };
            let n = {
                let mut sp = lock(&entry.state);
                let n = sp.release_member(member);
                self.count(&mut sp);
                n
            };
            if n > 0 {
                released += n;
                self.persist_logged(&entry).await;
            }
            // No member fetches it here any more: its state is all written, and the next
            // fetch reads it back (so offsets altered meanwhile are seen).
            if !self.sessions().uses(group, *key) {
                self.partitions().remove(&(group.to_string(), key.0, key.1));
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

    /// A share-partition's durable state, from its share coordinator.
    pub(crate) async fn read_state(
        &self,
        key: &ShareKey,
    ) -> Result<Option<ShareState>, ResponseError> {
        self.persister.read(key).await
    }

    /// Starts a share-partition over at `start_offset` (-1: as `share.auto.offset.reset`
    /// says, when a member next fetches it), in a new state epoch: what was in flight is
    /// forgotten. The group has no members (the caller checks).
    pub(crate) async fn reset_state(
        &self,
        key: &ShareKey,
        start_offset: i64,
    ) -> Result<(), ResponseError> {
        self.partitions()
            .remove(&(key.group.clone(), key.topic_id, key.partition));
        let before = self.persister.read(key).await?;
        let state = ShareState {
            state_epoch: before
                .as_ref()
                .map_or(0, |s| s.state_epoch.saturating_add(1)),
            // An operator's write, not a leader's: it fences no leader.
            leader_epoch: before.as_ref().map_or(-1, |s| s.leader_epoch),
            start_offset,
            batches: Vec::new(),
        };
        self.persister.write(key, state).await
    }

    /// Forgets a deleted group's share-partitions on this broker.
    pub(crate) fn forget_group(&self, group: &str) {
        self.partitions().retain(|(g, _, _), _| g != group);
    }

    /// Ends the share sessions of a closed connection and releases their records.
    pub(crate) async fn connection_closed(&self, connection: u64) {
        let ended = self.sessions().connection_closed(connection);
        for (group, member, partitions) in ended {
            self.release(&group, &member, &partitions).await;
        }
    }

    /// Writes a share-partition's state as it is now, after the writes before it.
    async fn persist(&self, entry: &Entry) -> Result<(), ResponseError> {
        let _one_at_a_time = entry.writes.lock().await;
        let snapshot = lock(&entry.state).snapshot(entry.leader_epoch);
        self.persister.write(&entry.key, snapshot).await
    }

    /// [`ShareManager::persist`] where no client waits for the answer: a failure is
    /// logged, and the next write carries the change.
    async fn persist_logged(&self, entry: &Entry) {
        if let Err(e) = self.persist(entry).await {
            tracing::warn!(group = %entry.key.group, partition = entry.key.partition, error = ?e, "writing share-partition state failed");
        }
    }

    /// Applies one member's acknowledgements of a partition, all or none, answered once
    /// written. A partition the group never fetched here is UNKNOWN_TOPIC_OR_PARTITION.
    pub(crate) async fn acknowledge(
        &self,
        group: &str,
        member: &str,
        key: SharePartitionKey,
        leader_epoch: i32,
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
        let entry = self
            .existing(group, key)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        if entry.leader_epoch != leader_epoch {
            // Acquired in an earlier leadership: those locks are gone.
            self.partitions().remove(&(group.to_string(), key.0, key.1));
            return Err(ResponseError::InvalidRecordState);
        }
        let done = {
            let mut sp = lock(&entry.state);
            let done = sp.acknowledge(member, &typed);
            self.count(&mut sp);
            done
        };
        match done {
            Ok(()) => {
                self.changed.notify_waiters();
                self.persist(&entry).await
            }
            Err(AckError::InvalidRecordState) => Err(ResponseError::InvalidRecordState),
            Err(AckError::InvalidRequest) => Err(ResponseError::InvalidRequest),
        }
    }

    /// The group's share-partition of `partition`: from memory, or started from its
    /// durable state, or started at the high watermark and written.
    async fn entry(
        &self,
        group: &str,
        key: SharePartitionKey,
        partition: &Partition,
        earliest: bool,
        leader_epoch: i32,
    ) -> Result<Arc<Entry>, ResponseError> {
        if let Some(e) = self
            .existing(group, key)
            .filter(|e| e.leader_epoch == leader_epoch)
        {
            return Ok(e);
        }
        let _one_at_a_time = self.starting.lock().await;
        match self.existing(group, key) {
            Some(e) if e.leader_epoch == leader_epoch => return Ok(e),
            // Started in an earlier leadership of this broker: what the leaders since
            // wrote is the state now.
            Some(_) => {
                self.partitions().remove(&(group.to_string(), key.0, key.1));
            }
            None => {}
        }
        let share_key = ShareKey {
            group: group.to_string(),
            topic_id: key.0,
            partition: key.1,
        };
        let (state, fresh) = match self.persister.read(&share_key).await? {
            Some(s) if s.start_offset >= 0 => {
                (SharePartition::from_state(&s, self.limits()), false)
            }
            _ => {
                let start = if earliest {
                    partition.log_start_offset()
                } else {
                    partition.high_watermark()
                };
                (SharePartition::new(start, self.limits()), true)
            }
        };
        tracing::debug!(
            group,
            partition = key.1,
            start = state.start_offset(),
            fresh,
            "share-partition started"
        );
        let entry = Arc::new(Entry {
            key: share_key,
            leader_epoch,
            state: Mutex::new(state),
            writes: tokio::sync::Mutex::new(()),
        });
        if fresh {
            // Where "latest" was is decided now, for good.
            self.persist(&entry).await?;
        }
        self.partitions()
            .insert((group.to_string(), key.0, key.1), entry.clone());
        Ok(entry)
    }

    /// Acquires records of `led.partition` for `member`: records made available again
    /// first, then fresh ones from the log, up to about `max_records` and `max_bytes`. The
    /// error is the partition's error code.
    pub(crate) async fn acquire(
        &self,
        group: &str,
        member: &str,
        led: LedPartition<'_>,
        settings: &ShareGroupSettings,
        budget: FetchBudget,
        remote: Option<&sluice_tier::RemoteReader>,
    ) -> Result<Acquired, i16> {
        let LedPartition {
            key,
            partition,
            leader_epoch,
        } = led;
        let max_records = budget.records;
        // A read of the log for this fetch: what the fetch may take, but no more than a
        // chunk, since only about `max_records` records of it are acquired (and at least
        // one whole batch is read, as KIP-74 has it).
        let max_bytes = budget.bytes.min(READ_CHUNK_BYTES);
        let entry = self
            .entry(group, key, partition, settings.earliest, leader_epoch)
            .await
            .map_err(|e| e.code())?;
        let lock_ms = settings
            .lock_duration_ms
            .unwrap_or(self.config.record_lock_duration_ms);
        let lock_deadline = self.clock.now() + Duration::from_millis(lock_ms.max(0) as u64);
        let (mut ranges, fresh_from) = {
            let mut sp = lock(&entry.state);
            sp.skip_to_log_start(partition.log_start_offset());
            let ranges = sp.acquire_available(member, max_records, lock_deadline);
            let fresh_from =
                (records_in(&ranges) < max_records && sp.has_room()).then(|| sp.next_fresh());
            (ranges, fresh_from)
        };
        let mut fresh_bytes = Bytes::new();
        if let Some(from) = fresh_from {
            let isolation = if settings.read_committed {
                Isolation::ReadCommitted
            } else {
                Isolation::ReadUncommitted
            };
            // Read without the share-partition's lock (the remote tier may take a while);
            // fresh records another fetch took meanwhile are skipped by `acquire_fresh`.
            let data = reads::read_log(partition, remote, from, max_bytes, isolation)
                .await
                .map_err(|e| e.code())?;
            let batches = reads::log_batches(&data.records, &data.aborted_transactions);
            let taken = records_in(&ranges);
            ranges.extend(lock(&entry.state).acquire_fresh(
                member,
                &batches,
                max_records - taken,
                lock_deadline,
            ));
            fresh_bytes = data.records;
        }
        if !ranges.is_empty() {
            self.timer.notify_one();
        }
        let records = reads::covering(partition, remote, &ranges, fresh_bytes, max_bytes)
            .await
            .map_err(|e| e.code())?;
        Ok(Acquired { ranges, records })
    }

    fn limits(&self) -> Limits {
        Limits {
            delivery_count_limit: self.config.delivery_count_limit,
            max_in_flight: i64::from(self.config.partition_max_record_locks),
        }
    }

    /// A wake-up for records becoming available again from now on; taken before looking
    /// at the share-partitions, so that a release in between is not missed.
    pub(crate) fn changes(&self) -> Pin<Box<Notified<'_>>> {
        let mut notified = Box::pin(self.changed.notified());
        notified.as_mut().enable();
        notified
    }

    /// Waits for `changed` (see [`ShareManager::changes`]), for one of `waiters` (high
    /// watermarks) to move, or for `deadline`.
    pub(crate) async fn wait_changed(
        &self,
        changed: Pin<Box<Notified<'_>>>,
        deadline: tokio::time::Instant,
        mut waiters: Vec<watch::Receiver<i64>>,
    ) {
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
            for entry in &all {
                let (n, deadline) = {
                    let mut sp = lock(&entry.state);
                    let n = sp.expire_locks(now);
                    self.count(&mut sp);
                    (n, sp.next_deadline())
                };
                if n > 0 {
                    released += n;
                    self.persist_logged(entry).await;
                }
                next = match (next, deadline) {
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
