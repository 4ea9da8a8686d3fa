//! The metadata port on etcd. Values are JSON (readable with `etcdctl get --prefix`);
//! every change is one transaction, and a partition's epoch is its key's mod_revision.

mod election;
mod keys;
mod lease;
mod settings;
mod view;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse,
};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::error::MetadataError;
use crate::model::{BrokerRegistration, ClusterView, Liveness, PartitionState, TopicRecord};
use crate::port::{check_new_partitions, check_new_topic, ClusterMetadata};
use crate::term::{ControllerTerm, Fence};
use keys::Keys;

pub use settings::{EtcdSettings, EtcdTls};

/// Read-modify-write attempts on a topic record before giving up as Unavailable.
const MAX_TOPIC_ATTEMPTS: usize = 16;

/// etcd's default `--max-txn-ops`.
const MAX_TXN_OPS: usize = 128;

/// The metadata port on etcd: one client per broker.
pub struct EtcdMetadata {
    client: Client,
    keys: Keys,
    settings: EtcdSettings,
    view: watch::Receiver<Arc<ClusterView>>,
    registration: Mutex<Option<Registration>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// This broker's registration, once made.
struct Registration {
    node_id: i32,
    liveness: watch::Receiver<Liveness>,
    lease: watch::Receiver<i64>,
}

impl EtcdMetadata {
    /// Connects, reads the cluster's metadata and starts watching it.
    pub async fn connect(settings: EtcdSettings) -> Result<EtcdMetadata, MetadataError> {
        settings.check()?;
        let options = settings.connect_options()?;
        let connecting = Client::connect(&settings.endpoints, Some(options));
        let client = tokio::time::timeout(settings.session_timeout(), connecting)
            .await
            .map_err(|_| MetadataError::Unavailable("etcd did not answer in time".to_string()))?
            .map_err(unavailable)?;
        let keys = Keys::new(&settings.prefix);
        // The first broker of a cluster names it; the others find the id there.
        let create_id = Txn::new()
            .when([Compare::create_revision(
                keys.cluster_id(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                keys.cluster_id(),
                crate::model::new_cluster_id(),
                None,
            )]);
        tokio::time::timeout(
            settings.session_timeout(),
            client.kv_client().txn(create_id),
        )
        .await
        .map_err(|_| MetadataError::Unavailable("etcd did not answer in time".to_string()))?
        .map_err(unavailable)?;
        let (mut state, revision) = view::load(&client, &keys, settings.session_timeout()).await?;
        let (publish, view) = watch::channel(state.snapshot(revision));
        let follow = view::follow(
            client.clone(),
            keys.clone(),
            state,
            revision,
            publish,
            settings.heartbeat_interval(),
        );
        let follower = tokio::spawn(follow).abort_handle();
        Ok(EtcdMetadata {
            client,
            keys,
            settings,
            view,
            registration: Mutex::new(None),
            tasks: Mutex::new(vec![follower]),
        })
    }

    /// Revokes this broker's lease (its key and any controller term go at once) and stops
    /// the background work: a clean shutdown, rather than waiting out the session timeout.
    pub async fn shutdown(&self) {
        self.stop_tasks();
        let lease = self.lock_registration().as_ref().map(|r| *r.lease.borrow());
        if let Some(lease) = lease.filter(|l| *l != 0) {
            let _ = self.call(lease::revoke(&self.client, lease)).await;
        }
    }

    fn stop_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    fn lock_registration(&self) -> std::sync::MutexGuard<'_, Option<Registration>> {
        self.registration.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one store operation with the session timeout as its deadline.
    async fn call<T>(
        &self,
        operation: impl std::future::Future<Output = T>,
    ) -> Result<T, MetadataError> {
        tokio::time::timeout(self.settings.session_timeout(), operation)
            .await
            .map_err(|_| MetadataError::Unavailable("etcd did not answer in time".to_string()))
    }

    async fn txn(&self, txn: Txn) -> Result<etcd_client::TxnResponse, MetadataError> {
        let mut kv = self.client.kv_client();
        self.call(kv.txn(txn)).await?.map_err(unavailable)
    }

    async fn get(&self, key: String) -> Result<Option<KeyValue>, MetadataError> {
        let mut kv = self.client.kv_client();
        let mut response = self.call(kv.get(key, None)).await?.map_err(unavailable)?;
        Ok(response.take_kvs().into_iter().next())
    }

    /// The topic record and its mod_revision.
    async fn topic(&self, name: &str) -> Result<(TopicRecord, i64), MetadataError> {
        let key = self.keys.topic(name);
        let Some(kv) = self.get(key.clone()).await? else {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        };
        Ok((decode(&key, kv.value())?, kv.mod_revision()))
    }

    /// Replaces a topic record (and puts `extra`) if it is still at `revision` and
    /// `compares` hold; the new store revision, or `None` when something moved.
    async fn replace_topic(
        &self,
        topic: &TopicRecord,
        revision: i64,
        extra: Vec<TxnOp>,
        compares: Vec<Compare>,
    ) -> Result<Option<i64>, MetadataError> {
        let key = self.keys.topic(&topic.name);
        let mut when = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            revision,
        )];
        when.extend(compares);
        let mut then = vec![TxnOp::put(key, encode(topic)?, None)];
        then.extend(extra);
        let response = self.txn(Txn::new().when(when).and_then(then)).await?;
        Ok(response
            .succeeded()
            .then(|| response.header().map(|h| h.revision()))
            .flatten())
    }

    /// Whether a controller's candidacy still stands (always, without a fence).
    async fn fence_holds(&self, fence: Option<&Fence>) -> Result<bool, MetadataError> {
        match fence {
            Some(Fence::Etcd {
                key,
                create_revision,
            }) => {
                let mut kv = self.client.kv_client();
                let response = self
                    .call(kv.get(key.clone(), None))
                    .await?
                    .map_err(unavailable)?;
                Ok(response
                    .kvs()
                    .first()
                    .is_some_and(|kv| kv.create_revision() == *create_revision))
            }
            Some(Fence::Memory(_)) => Ok(false),
            None => Ok(true),
        }
    }

    /// A partition's state with its partition epoch.
    async fn partition_state(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionState, MetadataError> {
        let key = self.keys.partition(topic, partition);
        let Some(kv) = self.get(key.clone()).await? else {
            return Err(MetadataError::UnknownTopic(format!("{topic}-{partition}")));
        };
        let mut state: PartitionState = decode(&key, kv.value())?;
        state.partition_epoch = kv.mod_revision();
        Ok(state)
    }
}

/// The condition a controller's write carries: its candidate key, as created, still there.
fn fence_compare(fence: Option<&Fence>) -> Option<Compare> {
    match fence {
        Some(Fence::Etcd {
            key,
            create_revision,
        }) => Some(Compare::create_revision(
            key.clone(),
            CompareOp::Equal,
            *create_revision,
        )),
        // An in-memory term never holds in etcd: compare against an impossible revision.
        Some(Fence::Memory(_)) => Some(Compare::create_revision(
            b"\0".to_vec(),
            CompareOp::Equal,
            -1,
        )),
        None => None,
    }
}

impl Drop for EtcdMetadata {
    fn drop(&mut self) {
        // Keep-alives stop: the lease (and any controller term) expires after the session timeout.
        self.stop_tasks();
    }
}

#[async_trait]
impl ClusterMetadata for EtcdMetadata {
    async fn register(
        &self,
        me: BrokerRegistration,
    ) -> Result<watch::Receiver<Liveness>, MetadataError> {
        if let Some(registration) = self.lock_registration().as_ref() {
            return Err(MetadataError::Invalid(format!(
                "already registered as node {}",
                registration.node_id
            )));
        }
        let sent = Instant::now();
        let ttl = self.settings.ttl_seconds();
        let lease_id = self
            .call(lease::register_once(&self.client, &self.keys, &me, ttl))
            .await??;
        let (liveness_tx, liveness) = watch::channel(Liveness::Live);
        let (lease_tx, lease) = watch::channel(lease_id);
        let node_id = me.node_id;
        let keep_alive = lease::KeepAlive {
            client: self.client.clone(),
            keys: self.keys.clone(),
            me,
            ttl_seconds: ttl,
            heartbeat: self.settings.heartbeat_interval(),
            fence_after: self.settings.session_timeout() / 2,
            liveness: liveness_tx,
            lease: lease_tx,
            last_ok_sent: sent,
        };
        let task = tokio::spawn(keep_alive.run()).abort_handle();
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        *self.lock_registration() = Some(Registration {
            node_id,
            liveness: liveness.clone(),
            lease,
        });
        Ok(liveness)
    }

    fn view(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.clone()
    }

    async fn create_topic(
        &self,
        topic: TopicRecord,
        states: Vec<PartitionState>,
    ) -> Result<(), MetadataError> {
        check_new_topic(&topic, &states)?;
        let key = self.keys.topic(&topic.name);
        let mut then = vec![TxnOp::put(key.clone(), encode(&topic)?, None)];
        for (partition, state) in states.iter().enumerate() {
            then.push(TxnOp::put(
                self.keys.partition(&topic.name, partition as i32),
                encode(state)?,
                None,
            ));
        }
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then(then);
        if self.txn(txn).await?.succeeded() {
            Ok(())
        } else {
            Err(MetadataError::AlreadyExists(topic.name))
        }
    }

    async fn delete_topic(&self, name: &str) -> Result<(), MetadataError> {
        let key = self.keys.topic(name);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Greater, 0)])
            .and_then([
                TxnOp::delete(key, None),
                TxnOp::delete(
                    self.keys.partitions_of(name),
                    Some(DeleteOptions::new().with_prefix()),
                ),
            ]);
        if self.txn(txn).await?.succeeded() {
            Ok(())
        } else {
            Err(MetadataError::UnknownTopic(name.to_string()))
        }
    }

    async fn create_partitions(
        &self,
        name: &str,
        new_assignment: Vec<Vec<i32>>,
        states: Vec<PartitionState>,
    ) -> Result<(), MetadataError> {
        for _ in 0..MAX_TOPIC_ATTEMPTS {
            let (mut topic, revision) = self.topic(name).await?;
            check_new_partitions(&topic.assignment, &new_assignment, &states)?;
            let first_new = topic.assignment.len();
            let mut puts = Vec::with_capacity(states.len());
            let mut absent = Vec::with_capacity(states.len());
            for (offset, state) in states.iter().enumerate() {
                let key = self.keys.partition(name, (first_new + offset) as i32);
                absent.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
                puts.push(TxnOp::put(key, encode(state)?, None));
            }
            topic.assignment = new_assignment.clone();
            if self
                .replace_topic(&topic, revision, puts, absent)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(MetadataError::Unavailable(format!(
            "topic {name} kept changing"
        )))
    }

    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        for _ in 0..MAX_TOPIC_ATTEMPTS {
            let (mut topic, revision) = self.topic(name).await?;
            topic.configs = configs.clone();
            if self
                .replace_topic(&topic, revision, vec![], vec![])
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(MetadataError::Unavailable(format!(
            "topic {name} kept changing"
        )))
    }

    async fn apply_entries(
        &self,
        kind: &str,
        puts: Vec<(String, Vec<u8>)>,
        deletes: Vec<String>,
    ) -> Result<(), MetadataError> {
        crate::port::check_entries(kind, &puts, &deletes)?;
        let mut ops: Vec<TxnOp> = deletes
            .iter()
            .map(|k| TxnOp::delete(self.keys.entry(kind, k), None))
            .collect();
        ops.extend(
            puts.into_iter()
                .map(|(k, v)| TxnOp::put(self.keys.entry(kind, &k), v, None)),
        );
        // etcd refuses a transaction of more than --max-txn-ops (128 by default)
        // operations: larger changes go in several.
        for chunk in ops.chunks(MAX_TXN_OPS) {
            self.txn(Txn::new().and_then(chunk.to_vec())).await?;
        }
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
        let key = self.keys.entry(kind, key);
        let when = match expected {
            Some(v) => Compare::value(key.clone(), CompareOp::Equal, v),
            None => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
        };
        let op = match new {
            Some(v) => TxnOp::put(key, v, None),
            None => TxnOp::delete(key, None),
        };
        let response = self.txn(Txn::new().when([when]).and_then([op])).await?;
        Ok(response.succeeded())
    }

    async fn update_partition(
        &self,
        topic: &str,
        partition: i32,
        expected_partition_epoch: i64,
        new: PartitionState,
        fence: Option<&Fence>,
    ) -> Result<i64, MetadataError> {
        let key = self.keys.partition(topic, partition);
        let mut when = vec![
            Compare::create_revision(key.clone(), CompareOp::Greater, 0),
            Compare::mod_revision(key.clone(), CompareOp::Equal, expected_partition_epoch),
        ];
        when.extend(fence_compare(fence));
        let txn = Txn::new()
            .when(when)
            .and_then([TxnOp::put(key.clone(), encode(&new)?, None)])
            .or_else([TxnOp::get(key.clone(), None::<GetOptions>)]);
        let response = self.txn(txn).await?;
        if response.succeeded() {
            return response.header().map(|h| h.revision()).ok_or_else(|| {
                MetadataError::Unavailable("txn answered without a header".to_string())
            });
        }
        let current = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
            _ => None,
        });
        match current {
            // The partition did not move: the fence failed.
            Some(kv) if kv.mod_revision() == expected_partition_epoch => {
                Err(MetadataError::NotController)
            }
            Some(kv) => {
                let mut state: PartitionState = decode(&key, kv.value())?;
                state.partition_epoch = kv.mod_revision();
                Err(MetadataError::Stale(Box::new(state)))
            }
            None => Err(MetadataError::UnknownTopic(format!("{topic}-{partition}"))),
        }
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
        let key = self.keys.partition(topic, partition);
        for _ in 0..MAX_TOPIC_ATTEMPTS {
            let (mut record, revision) = self.topic(topic).await?;
            let Some(slot) = usize::try_from(partition)
                .ok()
                .and_then(|i| record.assignment.get_mut(i))
            else {
                return Err(MetadataError::UnknownTopic(format!("{topic}-{partition}")));
            };
            *slot = replicas.clone();
            let put = TxnOp::put(key.clone(), encode(&new)?, None);
            let mut compares = vec![Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                expected_partition_epoch,
            )];
            compares.extend(fence_compare(fence));
            if let Some(epoch) = self
                .replace_topic(&record, revision, vec![put], compares)
                .await?
            {
                return Ok(epoch);
            }
            let current = self.partition_state(topic, partition).await?;
            if current.partition_epoch != expected_partition_epoch {
                return Err(MetadataError::Stale(Box::new(current)));
            }
            if !self.fence_holds(fence).await? {
                return Err(MetadataError::NotController);
            }
        }
        Err(MetadataError::Unavailable(format!(
            "topic {topic} kept changing"
        )))
    }

    async fn allocate_producer_ids(&self, count: i64) -> Result<i64, MetadataError> {
        let key = self.keys.producer_ids();
        loop {
            let current = self
                .call(self.client.kv_client().get(key.clone(), None))
                .await?
                .map_err(unavailable)?;
            let (first, revision) = match current.kvs().first() {
                Some(kv) => {
                    let next = kv
                        .value_str()
                        .ok()
                        .and_then(|v| v.parse::<i64>().ok())
                        .ok_or_else(|| MetadataError::Corrupt {
                            key: key.clone(),
                            reason: "not a number".to_string(),
                        })?;
                    (next, kv.mod_revision())
                }
                None => (0, 0),
            };
            let next = first.saturating_add(count.max(1));
            let compare = if revision == 0 {
                Compare::create_revision(key.clone(), CompareOp::Equal, 0)
            } else {
                Compare::mod_revision(key.clone(), CompareOp::Equal, revision)
            };
            let txn = Txn::new().when([compare]).and_then([TxnOp::put(
                key.clone(),
                next.to_string(),
                None,
            )]);
            let done = self
                .call(self.client.kv_client().txn(txn))
                .await?
                .map_err(unavailable)?;
            if done.succeeded() {
                return Ok(first);
            }
            // Another broker reserved a block meanwhile: read again.
        }
    }

    async fn campaign(&self) -> Result<ControllerTerm, MetadataError> {
        let candidate = match self.lock_registration().as_ref() {
            Some(r) => election::Candidate {
                node_id: r.node_id,
                liveness: r.liveness.clone(),
                lease: r.lease.clone(),
            },
            None => {
                return Err(MetadataError::Invalid(
                    "campaign before register".to_string(),
                ))
            }
        };
        election::campaign(&self.client, &self.keys, candidate).await
    }
}

/// An etcd failure as a metadata error: a request etcd calls invalid (too many operations
/// in one transaction, say) is Invalid; the rest is Unavailable.
pub(crate) fn unavailable(error: etcd_client::Error) -> MetadataError {
    match &error {
        etcd_client::Error::GRpcStatus(status) if status.code() == tonic::Code::InvalidArgument => {
            MetadataError::Invalid(status.message().to_string())
        }
        _ => MetadataError::Unavailable(error.to_string()),
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, MetadataError> {
    serde_json::to_vec(value).map_err(|e| MetadataError::Invalid(e.to_string()))
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, MetadataError> {
    serde_json::from_slice(value).map_err(|e| MetadataError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}
