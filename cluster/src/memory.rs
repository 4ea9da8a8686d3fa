//! The metadata port in memory, with etcd's semantics: registrations under sessions that
//! tests can expire, partition epochs that are store revisions, an election queue.
//! Used by unit tests and by a single node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::MetadataError;
use crate::model::{BrokerRegistration, ClusterView, Liveness, PartitionState, TopicRecord};
use crate::port::{check_new_partitions, check_new_topic, ClusterMetadata};
use crate::term::{ControllerTerm, Fence};

/// The metadata port in memory. Each value is one broker's client; [`MemoryMetadata::join`]
/// gives another client of the same store.
pub struct MemoryMetadata {
    store: Arc<Mutex<Store>>,
    session: u64,
}

/// A registered session (etcd: a lease).
struct Session {
    node_id: i32,
    liveness: watch::Sender<Liveness>,
}

/// A campaigner waiting for or holding the controller term (etcd: an election key).
struct Candidate {
    id: u64,
    session: u64,
    node_id: i32,
    ended: watch::Sender<bool>,
}

/// A controller's write passes only while its candidacy leads the election.
fn check_fence(store: &Store, fence: Option<&Fence>) -> Result<(), MetadataError> {
    match fence {
        None => Ok(()),
        Some(Fence::Memory(id)) if store.candidates.first().is_some_and(|c| c.id == *id) => Ok(()),
        Some(_) => Err(MetadataError::NotController),
    }
}

/// The compare-and-swap of one partition's state on its partition epoch (and a
/// controller's fence); returns the new revision, which is the new partition epoch.
fn swap_partition(
    store: &mut Store,
    topic: &str,
    partition: i32,
    expected_partition_epoch: i64,
    mut new: PartitionState,
    fence: Option<&Fence>,
) -> Result<i64, MetadataError> {
    check_fence(store, fence)?;
    let key = (topic.to_string(), partition);
    let Some(current) = store.view.partitions.get(&key) else {
        return Err(MetadataError::UnknownTopic(format!("{topic}-{partition}")));
    };
    if current.partition_epoch != expected_partition_epoch {
        return Err(MetadataError::Stale(Box::new(current.clone())));
    }
    let revision = store.bump();
    new.partition_epoch = revision;
    store.view.partitions.insert(key, new);
    Ok(revision)
}

struct Store {
    revision: i64,
    next_id: u64,
    view: ClusterView,
    /// Modification revisions of the topic records.
    topic_revisions: BTreeMap<String, i64>,
    /// Registered sessions by session id.
    sessions: BTreeMap<u64, Session>,
    /// In campaign order: the first holds the term.
    candidates: Vec<Candidate>,
    publish: watch::Sender<Arc<ClusterView>>,
    /// The next producer id not yet reserved.
    next_producer_id: i64,
}

impl Store {
    fn bump(&mut self) -> i64 {
        self.revision += 1;
        self.revision
    }

    /// Publishes the view as of the current revision and starts the new first
    /// candidate's term.
    fn publish(&mut self) {
        self.view.revision = self.revision;
        self.view.controller = self.candidates.first().map(|c| c.node_id);
        self.publish.send_replace(Arc::new(self.view.clone()));
    }

    /// Ends a session as a lease expiry does: its broker key, its candidacy and its term go.
    fn end_session(&mut self, session: u64) {
        let Some(ended) = self.sessions.remove(&session) else {
            return;
        };
        ended.liveness.send_replace(Liveness::Fenced);
        self.view.brokers.remove(&ended.node_id);
        self.remove_candidates(|c| c.session == session);
        self.bump();
        self.publish();
    }

    fn remove_candidates(&mut self, mut which: impl FnMut(&Candidate) -> bool) {
        self.candidates.retain(|c| {
            let remove = which(c);
            if remove {
                c.ended.send_replace(true);
            }
            !remove
        });
    }
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock leaves maps that are still consistent per operation.
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for MemoryMetadata {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMetadata {
    /// A new, empty store and a first client of it.
    pub fn new() -> MemoryMetadata {
        let (publish, _) = watch::channel(Arc::new(ClusterView::default()));
        let store = Store {
            revision: 1,
            next_id: 1,
            view: ClusterView {
                revision: 1,
                cluster_id: crate::model::new_cluster_id(),
                ..ClusterView::default()
            },
            topic_revisions: BTreeMap::new(),
            sessions: BTreeMap::new(),
            candidates: Vec::new(),
            publish,
            next_producer_id: 0,
        };
        let store = Arc::new(Mutex::new(store));
        lock(&store).publish();
        MemoryMetadata { store, session: 0 }
    }

    /// Another client of the same store (another broker).
    pub fn join(&self) -> MemoryMetadata {
        let mut store = lock(&self.store);
        let session = store.next_id;
        store.next_id += 1;
        MemoryMetadata {
            store: self.store.clone(),
            session,
        }
    }

    /// Expires the registration of `node_id` as if its lease ran out: it leaves the view,
    /// its client turns Fenced and its controller term ends. Its client may register again.
    pub fn expire(&self, node_id: i32) {
        let mut store = lock(&self.store);
        let session = store
            .sessions
            .iter()
            .find(|(_, s)| s.node_id == node_id)
            .map(|(id, _)| *id);
        if let Some(session) = session {
            store.end_session(session);
        }
    }

    fn registered_node(&self) -> Option<i32> {
        lock(&self.store)
            .sessions
            .get(&self.session)
            .map(|s| s.node_id)
    }
}

impl Drop for MemoryMetadata {
    fn drop(&mut self) {
        // Dropping a client is its lease running out.
        lock(&self.store).end_session(self.session);
    }
}

#[async_trait]
impl ClusterMetadata for MemoryMetadata {
    async fn register(
        &self,
        me: BrokerRegistration,
    ) -> Result<watch::Receiver<Liveness>, MetadataError> {
        let mut store = lock(&self.store);
        if let Some(session) = store.sessions.get(&self.session) {
            return Err(MetadataError::Invalid(format!(
                "already registered as node {}",
                session.node_id
            )));
        }
        if store.view.brokers.contains_key(&me.node_id) {
            return Err(MetadataError::DuplicateBrokerId(me.node_id));
        }
        let (liveness, receiver) = watch::channel(Liveness::Live);
        store.sessions.insert(
            self.session,
            Session {
                node_id: me.node_id,
                liveness,
            },
        );
        store.view.brokers.insert(me.node_id, me);
        store.bump();
        store.publish();
        Ok(receiver)
    }

    fn view(&self) -> watch::Receiver<Arc<ClusterView>> {
        lock(&self.store).publish.subscribe()
    }

    async fn create_topic(
        &self,
        topic: TopicRecord,
        states: Vec<PartitionState>,
    ) -> Result<(), MetadataError> {
        check_new_topic(&topic, &states)?;
        let mut store = lock(&self.store);
        if store.view.topics.contains_key(&topic.name) {
            return Err(MetadataError::AlreadyExists(topic.name));
        }
        let revision = store.bump();
        for (partition, mut state) in states.into_iter().enumerate() {
            state.partition_epoch = revision;
            store
                .view
                .partitions
                .insert((topic.name.clone(), partition as i32), state);
        }
        store.topic_revisions.insert(topic.name.clone(), revision);
        store.view.topics.insert(topic.name.clone(), topic);
        store.publish();
        Ok(())
    }

    async fn delete_topic(&self, name: &str) -> Result<(), MetadataError> {
        let mut store = lock(&self.store);
        if store.view.topics.remove(name).is_none() {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        }
        store.topic_revisions.remove(name);
        store.view.partitions.retain(|(topic, _), _| topic != name);
        store.bump();
        store.publish();
        Ok(())
    }

    async fn create_partitions(
        &self,
        name: &str,
        new_assignment: Vec<Vec<i32>>,
        states: Vec<PartitionState>,
    ) -> Result<(), MetadataError> {
        let mut store = lock(&self.store);
        let Some(topic) = store.view.topics.get(name) else {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        };
        check_new_partitions(&topic.assignment, &new_assignment, &states)?;
        let first_new = topic.assignment.len();
        let revision = store.bump();
        for (offset, mut state) in states.into_iter().enumerate() {
            state.partition_epoch = revision;
            store
                .view
                .partitions
                .insert((name.to_string(), (first_new + offset) as i32), state);
        }
        if let Some(topic) = store.view.topics.get_mut(name) {
            topic.assignment = new_assignment;
        }
        store.topic_revisions.insert(name.to_string(), revision);
        store.publish();
        Ok(())
    }

    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        let mut store = lock(&self.store);
        let revision = store.revision + 1;
        let Some(topic) = store.view.topics.get_mut(name) else {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        };
        topic.configs = configs;
        store.bump();
        store.topic_revisions.insert(name.to_string(), revision);
        store.publish();
        Ok(())
    }

    async fn apply_entries(
        &self,
        kind: &str,
        puts: Vec<(String, Vec<u8>)>,
        deletes: Vec<String>,
    ) -> Result<(), MetadataError> {
        crate::port::check_entries(kind, &puts, &deletes)?;
        let mut store = lock(&self.store);
        let set = store.view.entries.entry(kind.to_string()).or_default();
        for key in deletes {
            set.remove(&key);
        }
        set.extend(puts);
        if set.is_empty() {
            store.view.entries.remove(kind);
        }
        store.bump();
        store.publish();
        Ok(())
    }

    async fn swap_entry(
        &self,
        kind: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, MetadataError> {
        crate::port::check_entries(kind, &[], &[key.to_string()])?;
        let mut store = lock(&self.store);
        let set = store.view.entries.entry(kind.to_string()).or_default();
        if set.get(key) != expected.as_ref() {
            if set.is_empty() {
                store.view.entries.remove(kind);
            }
            return Ok(false);
        }
        match new {
            Some(v) => {
                set.insert(key.to_string(), v);
            }
            None => {
                set.remove(key);
            }
        }
        if set.is_empty() {
            store.view.entries.remove(kind);
        }
        store.bump();
        store.publish();
        Ok(true)
    }

    async fn update_partition(
        &self,
        topic: &str,
        partition: i32,
        expected_partition_epoch: i64,
        new: PartitionState,
        fence: Option<&Fence>,
    ) -> Result<i64, MetadataError> {
        let mut store = lock(&self.store);
        let revision = swap_partition(
            &mut store,
            topic,
            partition,
            expected_partition_epoch,
            new,
            fence,
        )?;
        store.publish();
        Ok(revision)
    }

    async fn reassign_partition(
        &self,
        topic: &str,
        partition: i32,
        expected_partition_epoch: i64,
        replicas: Vec<i32>,
        new: PartitionState,
        fence: Option<&Fence>,
    ) -> Result<i64, MetadataError> {
        let mut store = lock(&self.store);
        let revision = swap_partition(
            &mut store,
            topic,
            partition,
            expected_partition_epoch,
            new,
            fence,
        )?;
        if let Some(slot) = store
            .view
            .topics
            .get_mut(topic)
            .and_then(|t| t.assignment.get_mut(partition as usize))
        {
            *slot = replicas;
        }
        store.topic_revisions.insert(topic.to_string(), revision);
        store.publish();
        Ok(revision)
    }

    async fn allocate_producer_ids(&self, count: i64) -> Result<i64, MetadataError> {
        let mut store = lock(&self.store);
        let first = store.next_producer_id;
        store.next_producer_id = first.saturating_add(count.max(1));
        Ok(first)
    }

    async fn campaign(&self) -> Result<ControllerTerm, MetadataError> {
        let Some(node_id) = self.registered_node() else {
            return Err(MetadataError::Invalid(
                "campaign before register".to_string(),
            ));
        };
        let (ended, ended_rx) = watch::channel(false);
        let id = {
            let mut store = lock(&self.store);
            let id = store.next_id;
            store.next_id += 1;
            store.candidates.push(Candidate {
                id,
                session: self.session,
                node_id,
                ended,
            });
            store.bump();
            store.publish();
            id
        };
        let resign = Resign {
            store: self.store.clone(),
            candidate: id,
        };
        let mut views = self.view();
        loop {
            {
                let store = lock(&self.store);
                match store.candidates.iter().position(|c| c.id == id) {
                    Some(0) => {
                        return Ok(ControllerTerm::new(
                            node_id,
                            Fence::Memory(id),
                            ended_rx,
                            Box::new(resign),
                        ))
                    }
                    Some(_) => {}
                    None => {
                        return Err(MetadataError::Unavailable(
                            "session ended while campaigning".to_string(),
                        ))
                    }
                }
            }
            // Every candidacy change publishes a view.
            if views.changed().await.is_err() {
                return Err(MetadataError::Unavailable("store closed".to_string()));
            }
        }
    }
}

/// Withdraws a candidacy (and ends its term) when the term or the campaign is dropped.
struct Resign {
    store: Arc<Mutex<Store>>,
    candidate: u64,
}

impl Drop for Resign {
    fn drop(&mut self) {
        let mut store = lock(&self.store);
        let before = store.candidates.len();
        let candidate = self.candidate;
        store.remove_candidates(|c| c.id == candidate);
        if store.candidates.len() != before {
            store.bump();
            store.publish();
        }
    }
}
