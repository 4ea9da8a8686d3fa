//! The built-in Schema Registry: Confluent's REST API (the `sluice-registry` crate) over a
//! compacted topic of this broker, served on `schema.registry.listeners`. Its state is the
//! fold of the topic's records; a change is decided against that state, written and made
//! durable, then applied, one change at a time.

mod access;
mod listener;
mod store;
mod validation;

use std::sync::{Arc, RwLock};

use sluice_registry::{Outcome, Registry, Reply, Request};
use sluice_storage::Storage;

use crate::coordinator_log::CoordinatorLog;
pub(crate) use access::Access;
pub(crate) use listener::{serve, RegistryService};
use store::SchemaTopic;
pub(crate) use store::StoreError;
pub(crate) use validation::{refused_records, validates};

/// The registry's state and its topic.
pub(crate) struct SchemaRegistry {
    topic: SchemaTopic,
    state: RwLock<Registry>,
    /// The offset of the topic to apply next; held while a request decides and writes, so
    /// that changes are decided one at a time against the latest state.
    next: tokio::sync::Mutex<i64>,
}

impl SchemaRegistry {
    /// Opens the registry on `topic` (created unless it exists) and loads its state.
    pub(crate) fn open(
        storage: Arc<Storage>,
        log: Arc<CoordinatorLog>,
        topic: &str,
    ) -> Result<Self, StoreError> {
        let topic = SchemaTopic::ensure(storage, log, topic)?;
        let (records, next) = topic.read_from(0)?;
        let mut state = Registry::default();
        for r in &records {
            state.apply(r);
        }
        tracing::info!(
            records = records.len(),
            subjects = state.subjects(false).len(),
            "schema registry loaded"
        );
        Ok(SchemaRegistry {
            topic,
            state: RwLock::new(state),
            next: tokio::sync::Mutex::new(next),
        })
    }

    /// The state, for reading.
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies what the topic holds past `next` (written by this broker, or by another
    /// program writing to the topic, as Confluent's registry also reads it).
    fn catch_up(&self, next: &mut i64) -> Result<(), StoreError> {
        let (records, after) = self.topic.read_from(*next)?;
        if !records.is_empty() {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for r in &records {
                state.apply(r);
            }
        }
        *next = after;
        Ok(())
    }

    /// Answers one REST request.
    pub(crate) async fn call(&self, req: &Request<'_>) -> Reply {
        let mut next = self.next.lock().await;
        if let Err(e) = self.catch_up(&mut next) {
            return store_failed(&e);
        }
        let outcome = sluice_registry::handle(req, &self.read());
        match outcome {
            Outcome::Reply(reply) => reply,
            Outcome::Write { records, reply } => {
                if let Err(e) = self.topic.write(&records).await {
                    return store_failed(&e);
                }
                match self.catch_up(&mut next) {
                    Ok(()) => reply,
                    Err(e) => store_failed(&e),
                }
            }
        }
    }

    /// The number of live subjects and of schemas, for the metrics.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.read();
        (state.subjects(false).len(), state.schema_count())
    }
}

/// Confluent's answer when its store fails: 500 with error code 50001.
fn store_failed(e: &StoreError) -> Reply {
    tracing::error!(error = %e, "schema registry store failed");
    Reply {
        status: 500,
        body: serde_json::json!({
            "error_code": 50001,
            "message": format!("Error in the backend data store: {e}"),
        }),
    }
}
