//! The registry's topic (`_schemas` by default): one partition, compacted, written by this
//! broker through the coordinators' log and read back from where the last read ended.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sluice_registry::Record;
use sluice_storage::{Storage, StorageError};

use crate::coordinator_log::{CoordinatorLog, LogEntry};

/// Why the registry's topic cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The topic exists with settings the registry cannot keep its state in.
    #[error(
        "topic {topic} {reason}; delete it or set schema.registry.kafkastore.topic to another name"
    )]
    Unfit {
        /// The topic.
        topic: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A write was not made durable.
    #[error("writing to {topic} failed: {reason}")]
    Write {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// The registry's topic.
pub(crate) struct SchemaTopic {
    name: String,
    storage: Arc<Storage>,
    log: Arc<CoordinatorLog>,
}

impl SchemaTopic {
    /// The topic `name`, created (one partition, compacted) unless it exists; an existing
    /// one must have one partition and `cleanup.policy=compact`, as Confluent's registry
    /// requires.
    pub(crate) fn ensure(
        storage: Arc<Storage>,
        log: Arc<CoordinatorLog>,
        name: &str,
    ) -> Result<Self, StoreError> {
        let topic = match storage.topic(name) {
            Some(t) => t,
            None => {
                let configs =
                    BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
                match storage.create_topic(name, 1, configs) {
                    Ok(t) => {
                        tracing::info!(topic = name, "created the schema registry's topic");
                        t
                    }
                    Err(StorageError::TopicExists(_)) => storage
                        .topic(name)
                        .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let unfit = |reason: String| StoreError::Unfit {
            topic: name.to_string(),
            reason,
        };
        if topic.partitions.len() != 1 {
            return Err(unfit(format!(
                "has {} partitions; the registry needs exactly one",
                topic.partitions.len()
            )));
        }
        if !topic.config.cleanup_policy.compacts() {
            return Err(unfit("is not compacted (cleanup.policy=compact)".into()));
        }
        Ok(SchemaTopic {
            name: name.to_string(),
            storage,
            log,
        })
    }

    /// The registry's records from offset `from` to the log end, and the offset to read
    /// from next. A record the registry cannot read (another program wrote it) is skipped
    /// with a warning, as Confluent's registry skips it.
    pub(crate) fn read_from(&self, from: i64) -> Result<(Vec<Record>, i64), StoreError> {
        let (entries, next) = self.log.read_from(&self.name, 0, from)?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let LogEntry::Record { key, value, .. } = entry else {
                continue;
            };
            match Record::decode(&key, value.as_deref()) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(reason) => tracing::warn!(
                    topic = %self.name,
                    key = %String::from_utf8_lossy(&key),
                    %reason,
                    "skipping a record the schema registry cannot read"
                ),
            }
        }
        Ok((out, next))
    }

    /// Appends `records` as one batch and waits until they are flushed to disk.
    pub(crate) async fn write(&self, records: &[Record]) -> Result<(), StoreError> {
        let failed = |reason: String| StoreError::Write {
            topic: self.name.clone(),
            reason,
        };
        let keyed = records
            .iter()
            .map(|r| (Bytes::from(r.key()), r.value().map(Bytes::from)))
            .collect();
        let last = self.log.append(&self.name, 0, keyed)?;
        self.log
            .wait_durable(&self.name, 0)
            .await
            .map_err(|e| failed(format!("{e:?}")))?;
        let partition = self
            .storage
            .partition(&self.name, 0)
            .ok_or_else(|| failed("the topic is gone".into()))?;
        // A registry write is acknowledged only once on disk, whatever the flush policy.
        partition
            .flush_to(last)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(())
    }
}
