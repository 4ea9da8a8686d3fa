//! The cluster's topics as the coordinators see them: every topic of the cluster view,
//! not only those with a replica on this broker (a group commits offsets, and a
//! transaction adds partitions, of topics hosted elsewhere).

use std::sync::Arc;

use sluice_cluster::ClusterView;
use tokio::sync::watch;
use uuid::Uuid;

use crate::group::ports::TopicCatalog;

/// The topics of the cluster view.
pub(crate) struct ViewCatalog {
    view: watch::Receiver<Arc<ClusterView>>,
}

impl ViewCatalog {
    /// A catalog that follows `view`.
    pub(crate) fn new(view: watch::Receiver<Arc<ClusterView>>) -> Self {
        ViewCatalog { view }
    }
}

impl TopicCatalog for ViewCatalog {
    fn list_topic_names(&self) -> Vec<String> {
        self.view.borrow().topics.keys().cloned().collect()
    }

    fn topic_partitions(&self, name: &str) -> Option<(Uuid, i32)> {
        self.view
            .borrow()
            .topics
            .get(name)
            .map(|t| (t.topic_id, t.assignment.len() as i32))
    }

    fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
        self.view
            .borrow()
            .topics
            .values()
            .find(|t| t.topic_id == id)
            .map(|t| t.name.clone())
    }
}
