//! The cluster view kept from etcd: one read of the prefix, then a watch from the next
//! revision, each watch answer applied at once and published.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::keys::{KeyKind, Keys};
use super::unavailable;
use crate::error::MetadataError;
use crate::model::{ClusterView, PartitionState};

/// The view being built, with what the view itself does not show.
#[derive(Default)]
pub(crate) struct ViewState {
    view: ClusterView,
    /// Controller candidates: key → (create revision, node id); the oldest holds the term.
    candidates: BTreeMap<String, (i64, i32)>,
}

impl ViewState {
    /// The view as of `revision`.
    pub(crate) fn snapshot(&mut self, revision: i64) -> Arc<ClusterView> {
        self.view.revision = revision;
        self.view.controller = self.candidates.values().min().map(|(_, node)| *node);
        Arc::new(self.view.clone())
    }

    fn put(&mut self, keys: &Keys, kv: &KeyValue) {
        let Ok(key) = kv.key_str() else { return };
        match keys.parse(key) {
            Some(KeyKind::Broker(id)) => {
                if let Some(broker) = decode(key, kv.value()) {
                    self.view.brokers.insert(id, broker);
                }
            }
            Some(KeyKind::Topic(name)) => {
                if let Some(topic) = decode(key, kv.value()) {
                    self.view.topics.insert(name, topic);
                }
            }
            Some(KeyKind::Partition(name, partition)) => {
                if let Some(mut state) = decode::<PartitionState>(key, kv.value()) {
                    state.partition_epoch = kv.mod_revision();
                    self.view.partitions.insert((name, partition), state);
                }
            }
            Some(KeyKind::Controller) => match kv.value_str().ok().and_then(|v| v.parse().ok()) {
                Some(node) => {
                    self.candidates
                        .insert(key.to_string(), (kv.create_revision(), node));
                }
                None => warn!(key, "controller candidate without a node id"),
            },
            Some(KeyKind::ClusterId) => match kv.value_str() {
                Ok(id) => self.view.cluster_id = id.to_string(),
                Err(_) => warn!(key, "cluster id is not text"),
            },
            Some(KeyKind::Entry(kind, entry)) => {
                self.view
                    .entries
                    .entry(kind)
                    .or_default()
                    .insert(entry, kv.value().to_vec());
            }
            None => {}
        }
    }

    fn delete(&mut self, keys: &Keys, key: &[u8]) {
        let Ok(key) = std::str::from_utf8(key) else {
            return;
        };
        match keys.parse(key) {
            Some(KeyKind::Broker(id)) => {
                self.view.brokers.remove(&id);
            }
            Some(KeyKind::Topic(name)) => {
                self.view.topics.remove(&name);
            }
            Some(KeyKind::Partition(name, partition)) => {
                self.view.partitions.remove(&(name, partition));
            }
            Some(KeyKind::Controller) => {
                self.candidates.remove(key);
            }
            // Written once and never deleted by Sluice; an operator who deletes it gets a
            // new one at the next broker start.
            Some(KeyKind::ClusterId) => {}
            Some(KeyKind::Entry(kind, entry)) => {
                if let Some(set) = self.view.entries.get_mut(&kind) {
                    set.remove(&entry);
                    if set.is_empty() {
                        self.view.entries.remove(&kind);
                    }
                }
            }
            None => {}
        }
    }
}

/// Decodes a stored JSON value; a value that does not decode is logged and left out of the view.
fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            warn!(key, %error, "metadata value does not decode; left out of the view");
            None
        }
    }
}

/// Reads everything under the prefix: the state and the revision it is as of.
pub(crate) async fn load(
    client: &Client,
    keys: &Keys,
    timeout: Duration,
) -> Result<(ViewState, i64), MetadataError> {
    let mut kv = client.kv_client();
    let read = kv.get(keys.root(), Some(GetOptions::new().with_prefix()));
    let response = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| MetadataError::Unavailable("etcd did not answer in time".to_string()))?
        .map_err(unavailable)?;
    let revision = response.header().map_or(0, |h| h.revision());
    let mut state = ViewState::default();
    for kv in response.kvs() {
        state.put(keys, kv);
    }
    Ok((state, revision))
}

/// Keeps `publish` (already showing `state` as of `revision`) up to date from the watch,
/// starting after `revision`; on a broken or cancelled watch it reads everything again and
/// watches from there.
pub(crate) async fn follow(
    client: Client,
    keys: Keys,
    mut state: ViewState,
    mut revision: i64,
    publish: watch::Sender<Arc<ClusterView>>,
    retry: Duration,
) {
    loop {
        match watch_from(&client, &keys, &mut state, &mut revision, &publish).await {
            Ok(()) => debug!("metadata watch ended; reading again"),
            Err(error) => warn!(%error, "metadata watch failed; reading again"),
        }
        loop {
            tokio::time::sleep(retry).await;
            match load(&client, &keys, retry.max(Duration::from_secs(1))).await {
                Ok((fresh, at)) => {
                    state = fresh;
                    revision = at;
                    publish.send_replace(state.snapshot(revision));
                    break;
                }
                Err(error) => debug!(%error, "metadata read failed"),
            }
        }
    }
}

async fn watch_from(
    client: &Client,
    keys: &Keys,
    state: &mut ViewState,
    revision: &mut i64,
    publish: &watch::Sender<Arc<ClusterView>>,
) -> Result<(), MetadataError> {
    let mut watcher = client.watch_client();
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(*revision + 1);
    let mut stream = watcher
        .watch(keys.root(), Some(options))
        .await
        .map_err(unavailable)?;
    while let Some(response) = stream.message().await.map_err(unavailable)? {
        if response.canceled() {
            return Err(MetadataError::Unavailable(format!(
                "watch cancelled ({}), compacted at {}",
                response.cancel_reason(),
                response.compact_revision()
            )));
        }
        if response.events().is_empty() {
            continue;
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => state.put(keys, kv),
                EventType::Delete => state.delete(keys, kv.key()),
            }
            *revision = (*revision).max(kv.mod_revision());
        }
        publish.send_replace(state.snapshot(*revision));
    }
    Ok(())
}
