//! Tiered storage in a cluster: the remote segments' metadata (Kafka's
//! `RemoteLogSegmentMetadata`, which Kafka keeps in `__remote_log_metadata`) lives in the
//! shared set `remote_segments` of the cluster metadata, so that every broker sees what
//! was copied:
//! - the leader copies, expires and deletes, recording COPY_STARTED, COPY_FINISHED and
//!   DELETE_STARTED there (a copy finishes by compare-and-swap, so an upload given up by
//!   a newer leader never comes back as finished);
//! - every replica takes the COPY_FINISHED segments of its partitions into its log, so a
//!   new leader serves them and a follower's local retention deletes only what is copied;
//! - a new leader deletes the uploads its predecessors left unfinished, and the controller
//!   the segments of deleted topics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sluice_cluster::{ClusterMetadata, ClusterView};
use sluice_storage::{now_ms, Partition, RemoteSegment, RemoteSegmentState, Storage};
use sluice_tier::{TierError, TieredLogs};
use tokio::sync::watch;
use uuid::Uuid;

use super::ReplicaManager;

/// The shared set of remote segments: key `<topic id>.<partition>.<segment id>`.
pub(crate) const REMOTE_SEGMENTS: &str = "remote_segments";

const ENTRY_VERSION: u8 = 1;

/// One entry of [`REMOTE_SEGMENTS`]: the segment and who recorded it, in which leader epoch.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    broker: i32,
    leader_epoch: i32,
    segment: RemoteSegment,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut v = vec![ENTRY_VERSION];
        v.extend_from_slice(&self.broker.to_be_bytes());
        v.extend_from_slice(&self.leader_epoch.to_be_bytes());
        v.extend_from_slice(&self.segment.encode());
        v
    }

    fn decode(v: &[u8]) -> Option<Entry> {
        let (&version, rest) = v.split_first()?;
        if version != ENTRY_VERSION || rest.len() < 8 {
            return None;
        }
        let broker = i32::from_be_bytes(rest[..4].try_into().ok()?);
        let leader_epoch = i32::from_be_bytes(rest[4..8].try_into().ok()?);
        let segment = RemoteSegment::decode(&rest[8..]).ok()?;
        Some(Entry {
            broker,
            leader_epoch,
            segment,
        })
    }

    fn with_state(&self, state: RemoteSegmentState) -> Entry {
        let mut e = self.clone();
        e.segment.state = state;
        e.segment.event_ms = now_ms();
        e
    }
}

fn key(segment: &RemoteSegment) -> String {
    format!(
        "{}.{}.{}",
        segment.topic_id.simple(),
        segment.partition,
        segment.segment_id.simple()
    )
}

/// The decoded entries of a view; malformed ones are skipped.
fn entries(view: &ClusterView) -> Vec<(Vec<u8>, Entry)> {
    let Some(set) = view.entries.get(REMOTE_SEGMENTS) else {
        return Vec::new();
    };
    set.iter()
        .filter_map(|(k, v)| match Entry::decode(v) {
            Some(e) => Some((v.clone(), e)),
            None => {
                tracing::warn!(key = %k, "skipping a malformed remote segment entry");
                None
            }
        })
        .collect()
}

/// What a broker knows when it decides an entry's fate.
#[derive(Debug, Clone)]
struct Here {
    node_id: i32,
    /// This broker is the controller.
    controller: bool,
    /// The entry's topic (by name and id) is in the view.
    topic_exists: bool,
    /// The epoch this broker leads the entry's partition in, if it leads it.
    leader_epoch: Option<i32>,
    /// This process is uploading the entry's segment.
    uploading: bool,
    /// The partition's log start offset here (-1: no replica here).
    log_start_offset: i64,
    now_ms: i64,
    stale_after_ms: i64,
}

/// What becomes of an entry in a deletion round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    /// DELETE_STARTED already: delete its objects.
    Delete,
    /// Mark it DELETE_STARTED, then delete its objects.
    Doom,
}

/// Who deletes what: a partition's leader its DELETE_STARTED segments, the uploads an
/// earlier leader left unfinished (once they cannot still be running), its own process's
/// unfinished uploads from before a restart, and copied segments wholly below the log
/// start offset (one a new leader's overlapping copy superseded); the controller every
/// segment of a deleted topic.
fn fate(e: &Entry, here: &Here) -> Fate {
    let seg = &e.segment;
    if !here.topic_exists {
        return match (here.controller, seg.state) {
            (false, _) => Fate::Keep,
            (true, RemoteSegmentState::DeleteStarted) => Fate::Delete,
            (true, _) => Fate::Doom,
        };
    }
    let Some(epoch) = here.leader_epoch else {
        return Fate::Keep;
    };
    let doomed = match seg.state {
        RemoteSegmentState::DeleteStarted => return Fate::Delete,
        RemoteSegmentState::CopyStarted => {
            let mine_and_gone = e.broker == here.node_id && !here.uploading;
            let predecessor = e.leader_epoch < epoch
                && here.now_ms.saturating_sub(seg.event_ms) > here.stale_after_ms;
            mine_and_gone || predecessor
        }
        RemoteSegmentState::CopyFinished => seg.end_offset < here.log_start_offset,
    };
    if doomed {
        Fate::Doom
    } else {
        Fate::Keep
    }
}

/// The remote log manager's view of a cluster member.
pub(crate) struct ClusterTieredLogs {
    storage: Arc<Storage>,
    replicas: Arc<ReplicaManager>,
    meta: Arc<dyn ClusterMetadata>,
    node_id: i32,
    /// COPY_STARTED entries this process wrote and has not finished, as written.
    started: Mutex<HashMap<Uuid, Vec<u8>>>,
    /// How long an unfinished upload of an earlier leader may still be running: it is
    /// deleted only after this, so that its last objects do not land after the deletion.
    stale_after_ms: i64,
}

impl ClusterTieredLogs {
    /// The remote log manager's logs for this cluster member; keeps every local replica's
    /// remote segments in line with the cluster metadata until `stop`.
    pub(crate) fn start(
        storage: Arc<Storage>,
        replicas: Arc<ReplicaManager>,
        meta: Arc<dyn ClusterMetadata>,
        task_interval_ms: u64,
        stop: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let logs = Arc::new(ClusterTieredLogs {
            node_id: replicas.node_id(),
            storage,
            replicas,
            meta,
            started: Mutex::new(HashMap::new()),
            stale_after_ms: i64::try_from(task_interval_ms.saturating_mul(10)).unwrap_or(i64::MAX),
        });
        tokio::spawn(sync_replicas(logs.clone(), stop));
        logs
    }

    fn started(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<u8>>> {
        self.started.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives every local partition of a tiered topic the COPY_FINISHED segments the view
    /// has for it.
    fn sync(&self, view: &ClusterView) {
        let mut copied: BTreeMap<(Uuid, i32), Vec<RemoteSegment>> = BTreeMap::new();
        for (_, e) in entries(view) {
            if e.segment.state == RemoteSegmentState::CopyFinished {
                copied
                    .entry((e.segment.topic_id, e.segment.partition))
                    .or_default()
                    .push(e.segment);
            }
        }
        for p in self.storage.partitions() {
            if !p.tiered() && p.remote_segments().is_empty() {
                continue;
            }
            let mine = copied.remove(&(p.topic_id, p.index)).unwrap_or_default();
            if let Err(e) = p.sync_remote(mine) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e,
                    "could not record the partition's remote segments");
            }
        }
    }

    /// Marks an entry DELETE_STARTED unless it changed meanwhile; returns the segment if so.
    async fn doom(&self, bytes: Vec<u8>, e: &Entry) -> Result<Option<RemoteSegment>, TierError> {
        let doomed = e.with_state(RemoteSegmentState::DeleteStarted);
        let swapped = self
            .meta
            .swap_entry(
                REMOTE_SEGMENTS,
                &key(&e.segment),
                Some(bytes),
                Some(doomed.encode()),
            )
            .await
            .map_err(metadata)?;
        Ok(swapped.then_some(doomed.segment))
    }
}

fn metadata(e: sluice_cluster::MetadataError) -> TierError {
    TierError::Metadata(e.to_string())
}

/// Keeps the local replicas' remote segments in line with every new view.
async fn sync_replicas(logs: Arc<ClusterTieredLogs>, mut stop: watch::Receiver<bool>) {
    let mut views = logs.meta.view();
    let mut last: Option<BTreeMap<String, Vec<u8>>> = None;
    // Local partitions of new topics appear a little after the view that creates them.
    let mut recheck = tokio::time::interval(Duration::from_secs(5));
    loop {
        let view = views.borrow_and_update().clone();
        let current = view
            .entries
            .get(REMOTE_SEGMENTS)
            .cloned()
            .unwrap_or_default();
        if last.as_ref() != Some(&current) {
            logs.sync(&view);
            last = Some(current);
        }
        tokio::select! {
            changed = views.changed() => if changed.is_err() { return },
            _ = recheck.tick() => last = None,
            _ = crate::stopped(&mut stop) => return,
        }
    }
}

#[async_trait]
impl TieredLogs for ClusterTieredLogs {
    fn partitions(&self) -> Vec<Arc<Partition>> {
        let led = self.replicas.leadership().borrow().clone();
        led.keys()
            .filter_map(|(topic, index)| self.storage.partition(topic, *index))
            .collect()
    }

    async fn remote_deletions(&self) -> Result<Vec<RemoteSegment>, TierError> {
        let view = self.meta.view().borrow().clone();
        let led = self.replicas.leadership().borrow().clone();
        let controller = view.controller == Some(self.node_id);
        let mut out = Vec::new();
        for (bytes, e) in entries(&view) {
            let seg = &e.segment;
            let here = Here {
                node_id: self.node_id,
                controller,
                topic_exists: view
                    .topics
                    .get(&seg.topic)
                    .is_some_and(|t| t.topic_id == seg.topic_id),
                leader_epoch: led.get(&(seg.topic.clone(), seg.partition)).copied(),
                uploading: self.started().contains_key(&seg.segment_id),
                log_start_offset: self
                    .storage
                    .partition(&seg.topic, seg.partition)
                    .map_or(-1, |p| p.log_start_offset()),
                now_ms: now_ms(),
                stale_after_ms: self.stale_after_ms,
            };
            match fate(&e, &here) {
                Fate::Keep => {}
                Fate::Delete => out.push(seg.clone()),
                Fate::Doom => {
                    if let Some(doomed) = self.doom(bytes, &e).await? {
                        tracing::info!(topic = %seg.topic, partition = seg.partition, base_offset = seg.base_offset,
                            segment_id = %seg.segment_id, state = ?seg.state, "remote segment queued for deletion");
                        out.push(doomed);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn finish_remote_deletion(&self, segment: &RemoteSegment) -> Result<(), TierError> {
        self.meta
            .apply_entries(REMOTE_SEGMENTS, Vec::new(), vec![key(segment)])
            .await
            .map_err(metadata)
    }

    async fn copy_started(&self, p: &Partition, segment: &RemoteSegment) -> Result<(), TierError> {
        let led = self.replicas.leadership().borrow().clone();
        let Some(leader_epoch) = led.get(&(p.topic.clone(), p.index)).copied() else {
            return Err(TierError::Metadata(format!(
                "{}-{} is no longer led here",
                p.topic, p.index
            )));
        };
        let entry = Entry {
            broker: self.node_id,
            leader_epoch,
            segment: segment.clone(),
        };
        let bytes = entry.encode();
        self.started().insert(segment.segment_id, bytes.clone());
        let created = self
            .meta
            .swap_entry(REMOTE_SEGMENTS, &key(segment), None, Some(bytes))
            .await
            .map_err(metadata)?;
        if !created {
            self.started().remove(&segment.segment_id);
            return Err(TierError::Metadata(format!(
                "remote segment {} is already recorded",
                segment.segment_id
            )));
        }
        Ok(())
    }

    async fn copy_finished(&self, segment: &RemoteSegment) -> Result<bool, TierError> {
        // Kept in `started` until the swap, so that a deletion round meanwhile does not
        // take the upload for one a crash interrupted.
        let Some(expected) = self.started().get(&segment.segment_id).cloned() else {
            return Ok(false);
        };
        let Some(started) = Entry::decode(&expected) else {
            return Ok(false);
        };
        let mut finished = started.with_state(RemoteSegmentState::CopyFinished);
        finished.segment.event_ms = now_ms();
        let swapped = self
            .meta
            .swap_entry(
                REMOTE_SEGMENTS,
                &key(segment),
                Some(expected),
                Some(finished.encode()),
            )
            .await
            .map_err(metadata);
        self.started().remove(&segment.segment_id);
        let swapped = swapped?;
        if !swapped {
            tracing::warn!(topic = %segment.topic, partition = segment.partition, segment_id = %segment.segment_id,
                "a newer leader gave this upload up; it does not count");
        }
        Ok(swapped)
    }

    async fn delete_started(&self, segments: &[RemoteSegment]) -> Result<(), TierError> {
        let led = self.replicas.leadership().borrow().clone();
        let puts = segments
            .iter()
            .map(|s| {
                let mut segment = s.clone();
                segment.state = RemoteSegmentState::DeleteStarted;
                segment.event_ms = now_ms();
                let entry = Entry {
                    broker: self.node_id,
                    leader_epoch: led
                        .get(&(s.topic.clone(), s.partition))
                        .copied()
                        .unwrap_or(-1),
                    segment,
                };
                (key(s), entry.encode())
            })
            .collect();
        for s in segments {
            self.started().remove(&s.segment_id);
        }
        self.meta
            .apply_entries(REMOTE_SEGMENTS, puts, Vec::new())
            .await
            .map_err(metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment() -> RemoteSegment {
        RemoteSegment {
            segment_id: Uuid::new_v4(),
            topic: "t".into(),
            topic_id: Uuid::new_v4(),
            partition: 3,
            base_offset: 100,
            end_offset: 199,
            max_timestamp: 5,
            size_bytes: 1000,
            leader_epochs: vec![(2, 90)],
            state: RemoteSegmentState::CopyStarted,
            event_ms: 7,
        }
    }

    fn here() -> Here {
        Here {
            node_id: 1,
            controller: false,
            topic_exists: true,
            leader_epoch: Some(5),
            uploading: false,
            log_start_offset: 0,
            now_ms: 100_000,
            stale_after_ms: 2_000,
        }
    }

    fn entry(broker: i32, leader_epoch: i32, state: RemoteSegmentState, event_ms: i64) -> Entry {
        let mut segment = segment();
        segment.state = state;
        segment.event_ms = event_ms;
        Entry {
            broker,
            leader_epoch,
            segment,
        }
    }

    #[test]
    fn the_leader_deletes_what_is_dropped_and_what_no_upload_will_finish() {
        use RemoteSegmentState::*;
        let h = here();
        assert_eq!(fate(&entry(2, 4, DeleteStarted, 0), &h), Fate::Delete);
        // Our own upload, running: kept; from before a restart of this broker: doomed.
        let uploading = Here {
            uploading: true,
            ..h.clone()
        };
        assert_eq!(
            fate(&entry(1, 5, CopyStarted, 99_999), &uploading),
            Fate::Keep
        );
        assert_eq!(fate(&entry(1, 5, CopyStarted, 99_999), &h), Fate::Doom);
        // An earlier leader's: doomed only once it cannot still be uploading.
        assert_eq!(fate(&entry(2, 4, CopyStarted, 99_000), &h), Fate::Keep);
        assert_eq!(fate(&entry(2, 4, CopyStarted, 97_000), &h), Fate::Doom);
        // Another broker's in this epoch is not an earlier leader's.
        assert_eq!(fate(&entry(2, 5, CopyStarted, 0), &h), Fate::Keep);
        // Copied: kept unless wholly below the log start offset.
        assert_eq!(fate(&entry(2, 4, CopyFinished, 0), &h), Fate::Keep);
        let past = Here {
            log_start_offset: 200,
            ..h.clone()
        };
        assert_eq!(fate(&entry(2, 4, CopyFinished, 0), &past), Fate::Doom);
    }

    #[test]
    fn followers_keep_and_the_controller_deletes_a_deleted_topics_segments() {
        use RemoteSegmentState::*;
        let follower = Here {
            leader_epoch: None,
            ..here()
        };
        for state in [CopyStarted, CopyFinished, DeleteStarted] {
            assert_eq!(fate(&entry(2, 4, state, 0), &follower), Fate::Keep);
        }
        let gone = Here {
            topic_exists: false,
            leader_epoch: None,
            ..here()
        };
        assert_eq!(fate(&entry(2, 4, CopyFinished, 0), &gone), Fate::Keep);
        let controller = Here {
            controller: true,
            ..gone
        };
        assert_eq!(fate(&entry(2, 4, CopyFinished, 0), &controller), Fate::Doom);
        assert_eq!(fate(&entry(2, 4, CopyStarted, 0), &controller), Fate::Doom);
        assert_eq!(
            fate(&entry(2, 4, DeleteStarted, 0), &controller),
            Fate::Delete
        );
    }

    #[test]
    fn entries_round_trip_and_refuse_garbage() {
        let e = Entry {
            broker: 2,
            leader_epoch: 4,
            segment: segment(),
        };
        assert_eq!(Entry::decode(&e.encode()), Some(e.clone()));
        assert_eq!(Entry::decode(&[]), None);
        assert_eq!(Entry::decode(&[9, 0, 0, 0, 2, 0, 0, 0, 4]), None);
        assert_eq!(Entry::decode(&e.encode()[..20]), None);
        assert!(!key(&e.segment).contains('/'));
    }
}
