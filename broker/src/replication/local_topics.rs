//! The local topics of a replica: created with the cluster's topic id when the view
//! assigns a partition here, grown and reconfigured with it, deleted once the cluster
//! deleted the topic. A partition moved away by a reassignment loses its data here (a
//! topic with none left here is deleted), as Kafka deletes a replica it stops hosting.

use super::manager::ReplicaManager;
use sluice_cluster::ClusterView;

impl ReplicaManager {
    /// Creates local topics the view assigns here and deletes those it no longer has.
    pub(super) fn sync_topics(&self, view: &ClusterView) {
        for (name, topic) in &view.topics {
            if !topic.assignment.iter().any(|r| r.contains(&self.node_id)) {
                continue;
            }
            let count = topic.assignment.len() as i32;
            let result = match self.storage.topic(name) {
                Some(local) if local.record.id != topic.topic_id => {
                    // A topic of the same name deleted and created again meanwhile.
                    self.storage
                        .delete_topic(name)
                        .and_then(|_| {
                            self.storage.create_topic_with_id(
                                name,
                                topic.topic_id,
                                count,
                                topic.configs.clone(),
                            )
                        })
                        .map(|_| ())
                }
                Some(local) => {
                    let grown = if local.record.partitions < count {
                        self.storage.add_partitions(name, count).map(|_| ())
                    } else {
                        Ok(())
                    };
                    grown.and_then(|()| {
                        if local.record.configs == topic.configs {
                            return Ok(());
                        }
                        self.storage
                            .alter_topic_config(name, topic.configs.clone())
                            .map(|_| ())
                    })
                }
                None => self
                    .storage
                    .create_topic_with_id(name, topic.topic_id, count, topic.configs.clone())
                    .map(|_| ()),
            };
            if let Err(e) = result {
                tracing::error!(topic = %name, error = %e, "cannot open the topic's replicas");
            }
        }
        self.drop_moved_replicas(view);
        let mut seen = self.seen_topics.lock().unwrap_or_else(|p| p.into_inner());
        seen.extend(view.topics.values().map(|t| t.topic_id));
        for local in self.storage.topics() {
            let name = &local.record.name;
            let in_view = view
                .topics
                .get(name)
                .is_some_and(|t| t.topic_id == local.record.id);
            if in_view || !seen.contains(&local.record.id) {
                continue;
            }
            match self.storage.delete_topic(name) {
                Ok(_) => tracing::info!(topic = %name, "deleted the replicas of a deleted topic"),
                Err(e) => tracing::error!(topic = %name, error = %e, "cannot delete replicas"),
            }
        }
    }

    /// Deletes the data of replicas the view no longer assigns here: a topic with no
    /// partition left here goes whole; a partition moved away is emptied.
    fn drop_moved_replicas(&self, view: &ClusterView) {
        for local in self.storage.topics() {
            let name = &local.record.name;
            let Some(topic) = view
                .topics
                .get(name)
                .filter(|t| t.topic_id == local.record.id)
            else {
                continue;
            };
            let hosted = |index: usize| {
                topic
                    .assignment
                    .get(index)
                    .is_none_or(|replicas| replicas.contains(&self.node_id))
            };
            if !(0..topic.assignment.len()).any(hosted) {
                match self.storage.delete_topic(name) {
                    Ok(_) => {
                        tracing::info!(topic = %name, "deleted the replicas moved to other brokers")
                    }
                    Err(e) => {
                        tracing::error!(topic = %name, error = %e, "cannot delete moved replicas")
                    }
                }
                continue;
            }
            for (index, partition) in local.partitions.iter().enumerate() {
                let empty = partition.log_end_offset() == 0 && partition.size_bytes() == 0;
                if hosted(index) || empty {
                    continue;
                }
                match partition.truncate_fully_and_start_at(0) {
                    Ok(()) => {
                        tracing::info!(topic = %name, partition = index, "deleted the data of a replica moved to other brokers")
                    }
                    Err(e) => {
                        tracing::error!(topic = %name, partition = index, error = %e, "cannot delete a moved replica's data")
                    }
                }
            }
        }
    }
}
