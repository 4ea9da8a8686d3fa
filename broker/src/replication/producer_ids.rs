//! Producer ids of a cluster member: blocks of ids reserved in the cluster metadata
//! (Kafka's AllocateProducerIds), handed out one by one, with the next block reserved in
//! the background before the current one runs out.

use std::sync::{Arc, Mutex};

use sluice_cluster::ClusterMetadata;
use sluice_storage::{ProducerIdSource, StorageError};

/// Ids per reserved block, as Kafka's controller reserves them.
const BLOCK: i64 = 1000;

/// The current block and the one reserved ahead.
#[derive(Default)]
struct Blocks {
    next: i64,
    end: i64,
    spare: Option<i64>,
    reserving: bool,
}

/// Producer ids from cluster-wide blocks.
pub(crate) struct ClusterProducerIds {
    meta: Arc<dyn ClusterMetadata>,
    blocks: Mutex<Blocks>,
    me: std::sync::Weak<ClusterProducerIds>,
}

impl ClusterProducerIds {
    /// Reserves the first block (and the spare) before the broker answers anything.
    pub(crate) async fn start(meta: Arc<dyn ClusterMetadata>) -> anyhow::Result<Arc<Self>> {
        let first = meta.allocate_producer_ids(BLOCK).await?;
        let spare = meta.allocate_producer_ids(BLOCK).await?;
        Ok(Arc::new_cyclic(|me| ClusterProducerIds {
            meta,
            blocks: Mutex::new(Blocks {
                next: first,
                end: first + BLOCK,
                spare: Some(spare),
                reserving: false,
            }),
            me: me.clone(),
        }))
    }

    /// Reserves the next spare block in the background.
    fn reserve_spare(&self) {
        let Some(me) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let reserved = me.meta.allocate_producer_ids(BLOCK).await;
            let mut blocks = me.blocks.lock().unwrap_or_else(|p| p.into_inner());
            blocks.reserving = false;
            match reserved {
                Ok(first) => blocks.spare = Some(first),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reserve producer ids; will retry on the next request")
                }
            }
        });
    }
}

impl ProducerIdSource for ClusterProducerIds {
    fn next_producer_id(&self) -> Result<i64, StorageError> {
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if blocks.next >= blocks.end {
            match blocks.spare.take() {
                Some(first) => {
                    blocks.next = first;
                    blocks.end = first + BLOCK;
                }
                None => {
                    if !blocks.reserving {
                        blocks.reserving = true;
                        drop(blocks);
                        self.reserve_spare();
                    }
                    return Err(StorageError::ProducerIdsUnavailable(
                        "the next block of producer ids is being reserved".to_string(),
                    ));
                }
            }
        }
        let id = blocks.next;
        blocks.next += 1;
        if blocks.spare.is_none() && !blocks.reserving {
            blocks.reserving = true;
            drop(blocks);
            self.reserve_spare();
        }
        Ok(id)
    }
}
