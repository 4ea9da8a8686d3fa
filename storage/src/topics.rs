//! The topic catalog: topics and their partitions, opened at start-up and changed by
//! CreateTopics, DeleteTopics, CreatePartitions and AlterConfigs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rocksdb::{IteratorMode, WriteBatch};
use sluice_config::TopicConfig;
use uuid::Uuid;

use crate::db::CF_TOPICS;
use crate::{now_ms, Partition, Storage, StorageError, TopicRecord};

/// A topic and its open partitions.
pub struct Topic {
    /// Catalog record: name, id, partitions, overrides.
    pub record: TopicRecord,
    /// The values in force.
    pub config: TopicConfig,
    /// Partitions, by index.
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    /// The partition at `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        self.partitions.get(usize::try_from(index).ok()?)
    }
}

pub(crate) struct Topics {
    pub(crate) by_name: BTreeMap<String, Arc<Topic>>,
    pub(crate) by_id: HashMap<Uuid, Arc<Topic>>,
}

impl Storage {
    /// Looks a partition up by topic name and index: `None` when either does not exist
    /// (UNKNOWN_TOPIC_OR_PARTITION).
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.topic(topic)?.partition(index).cloned()
    }

    /// Opens every topic of the catalog, its partitions on several threads.
    pub(crate) fn load_topics(&self) -> Result<(), StorageError> {
        let cf = self.db.cf(CF_TOPICS)?;
        let mut records = Vec::new();
        for item in self.db.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item?;
            let name = String::from_utf8(k.to_vec())
                .map_err(|_| StorageError::Corrupt("topic name".into()))?;
            records.push(TopicRecord::decode(&name, &v)?);
        }
        let started = std::time::Instant::now();
        let configs: Vec<TopicConfig> = records
            .iter()
            .map(|r| TopicConfig::resolve(&self.effective_config(), &r.configs))
            .collect();
        let jobs: Vec<_> = records
            .iter()
            .zip(&configs)
            .flat_map(|(r, c)| (0..r.partitions).map(move |i| (r, c, i)))
            .collect();
        let total = jobs.len();
        let reported = std::sync::Mutex::new(started);
        let opened = self.open_partitions(&jobs, |done| {
            let mut last = reported.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= std::time::Duration::from_secs(5) {
                *last = std::time::Instant::now();
                tracing::info!(done, total, "opening partitions");
            }
        });
        drop(jobs);
        let mut opened = opened.into_iter();
        let mut recovery_work = 0u64;
        for (record, config) in records.into_iter().zip(configs) {
            let partitions = (&mut opened)
                .take(record.partitions.max(0) as usize)
                .collect::<Result<Vec<_>, _>>()?;
            recovery_work += partitions.iter().map(|p| p.recovery_work()).sum::<u64>();
            self.insert_topic(Arc::new(Topic {
                record,
                config,
                partitions,
            }));
        }
        // recovery_work is 0 after a clean shutdown: every batch was indexed and synced.
        tracing::info!(
            topics = self.topic_names().len(),
            recovery_work,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "storage recovered"
        );
        Ok(())
    }

    fn open_topic(&self, record: TopicRecord) -> Result<Arc<Topic>, StorageError> {
        let config = TopicConfig::resolve(&self.effective_config(), &record.configs);
        let jobs: Vec<_> = (0..record.partitions)
            .map(|i| (&record, &config, i))
            .collect();
        let partitions = self
            .open_partitions(&jobs, |_| {})
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Topic {
            record,
            config,
            partitions,
        }))
    }

    /// Opens partitions (topic, its config, index) on `num.recovery.threads.per.data.dir`
    /// threads: opening one mostly waits on the disk. Results come in the order of `jobs`;
    /// `progress` is told how many are done, now and then.
    fn open_partitions(
        &self,
        jobs: &[(&TopicRecord, &TopicConfig, i32)],
        progress: impl Fn(usize) + Sync,
    ) -> Vec<Result<Arc<Partition>, StorageError>> {
        let now = now_ms();
        let open = |(record, config, index): &(&TopicRecord, &TopicConfig, i32)| {
            Partition::open(
                self.db.clone(),
                &self.log_root,
                &record.name,
                record.id,
                *index,
                (*config).clone(),
                self.files.clone(),
                now,
            )
        };
        let threads = self.config.num_recovery_threads.clamp(1, jobs.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut results: Vec<Option<Result<Arc<Partition>, StorageError>>> =
            jobs.iter().map(|_| None).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            done.push((i, open(job)));
                            if i % 1000 == 999 {
                                progress(i + 1);
                            }
                        }
                        done
                    })
                })
                .collect();
            for worker in workers {
                // A worker that panicked leaves its partitions unopened: reported below.
                if let Ok(done) = worker.join() {
                    for (i, r) in done {
                        results[i] = Some(r);
                    }
                }
            }
        });
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StorageError::Corrupt(
                        "a thread opening partitions panicked".into(),
                    ))
                })
            })
            .collect()
    }

    pub(crate) fn insert_topic(&self, topic: Arc<Topic>) {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.by_id.insert(topic.record.id, topic.clone());
        topics.by_name.insert(topic.record.name.clone(), topic);
    }

    /// Looks a topic up by name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    /// Looks a topic up by id.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(&id)
            .cloned()
    }

    /// Every topic, ordered by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .values()
            .cloned()
            .collect()
    }

    /// Every topic name.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .keys()
            .cloned()
            .collect()
    }

    /// Creates a topic; the config overrides must already be validated.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, StorageError> {
        self.create_topic_with_id(name, Uuid::new_v4(), partitions, configs)
    }

    /// Creates a topic under an id chosen elsewhere: a replica takes the id the cluster
    /// gave the topic, so that every broker names it the same in Fetch v13+.
    pub fn create_topic_with_id(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.topic(name).is_some() {
            return Err(StorageError::TopicExists(name.to_string()));
        }
        let record = TopicRecord {
            name: name.to_string(),
            id,
            partitions,
            configs,
        };
        // Directories first: a crash before the catalog write leaves only empty dirs.
        let topic = match self.open_topic(record.clone()) {
            Ok(topic) => topic,
            Err(e) => {
                // Nothing names these directories yet: remove what was made, so a failure
                // part-way (out of disk space or open files) leaves no half topic behind.
                tracing::error!(topic = name, partitions, error = %e, "creating topic failed");
                for i in 0..partitions {
                    let _ = std::fs::remove_dir_all(self.log_root.join(format!("{name}-{i}")));
                }
                return Err(e);
            }
        };
        let mut wb = WriteBatch::default();
        wb.put_cf(self.db.cf(CF_TOPICS)?, name.as_bytes(), record.encode());
        self.db.write(wb, true)?;
        self.insert_topic(topic.clone());
        tracing::info!(topic = name, partitions, id = %record.id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic with its data.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = {
            let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
            let topic = topics
                .by_name
                .remove(name)
                .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))?;
            topics.by_id.remove(&topic.record.id);
            topic
        };
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.db.cf(CF_TOPICS)?, name.as_bytes());
        self.db.write(wb, true)?;
        for p in &topic.partitions {
            p.destroy()?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Every partition, for background flushing and metrics.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.topics()
            .iter()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Replaces a topic's config overrides (validated by the caller); the new values are
    /// in force for every partition when this returns.
    pub fn alter_topic_config(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let old = self
            .topic(name)
            .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))?;
        let record = TopicRecord {
            configs,
            ..old.record.clone()
        };
        let mut wb = WriteBatch::default();
        wb.put_cf(self.db.cf(CF_TOPICS)?, name.as_bytes(), record.encode());
        self.db.write(wb, true)?;
        let config = TopicConfig::resolve(&self.effective_config(), &record.configs);
        for p in &old.partitions {
            p.set_config(config.clone());
        }
        let topic = Arc::new(Topic {
            record,
            config,
            partitions: old.partitions.clone(),
        });
        self.insert_topic(topic.clone());
        tracing::info!(topic = name, configs = ?topic.record.configs, "altered topic configs");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions (CreatePartitions); the caller has checked that
    /// `count` is larger than the current count.
    pub fn add_partitions(&self, name: &str, count: i32) -> Result<Arc<Topic>, StorageError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let old = self
            .topic(name)
            .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))?;
        let now = now_ms();
        let mut partitions = old.partitions.clone();
        // Directories first: a crash before the catalog write leaves only empty dirs.
        for index in old.record.partitions..count {
            partitions.push(Partition::open(
                self.db.clone(),
                &self.log_root,
                name,
                old.record.id,
                index,
                old.config.clone(),
                self.files.clone(),
                now,
            )?);
        }
        let record = TopicRecord {
            partitions: count,
            ..old.record.clone()
        };
        let mut wb = WriteBatch::default();
        wb.put_cf(self.db.cf(CF_TOPICS)?, name.as_bytes(), record.encode());
        self.db.write(wb, true)?;
        let topic = Arc::new(Topic {
            record,
            config: old.config.clone(),
            partitions,
        });
        self.insert_topic(topic.clone());
        tracing::info!(
            topic = name,
            from = old.record.partitions,
            to = count,
            "added partitions"
        );
        Ok(topic)
    }
}
