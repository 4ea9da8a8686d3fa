//! A controller term: held from winning the election until the lease is lost or it resigns.

use tokio::sync::watch;

/// What a controller's writes are conditioned on: its candidacy still standing. A deposed
/// controller (its lease expired while it was paused or cut off) cannot write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// The etcd election key of the term and its create revision.
    Etcd {
        /// The candidate key.
        key: Vec<u8>,
        /// Its create revision.
        create_revision: i64,
    },
    /// The in-memory candidate id.
    Memory(u64),
}

/// This broker's term as controller. Dropping it resigns.
pub struct ControllerTerm {
    node_id: i32,
    fence: Fence,
    ended: watch::Receiver<bool>,
    // Resigns on drop (ends the election key, stops the monitor).
    _resign: Box<dyn Send + Sync>,
}

impl ControllerTerm {
    /// A term that ends when `ended` turns true (or its sender goes); `resign` is dropped
    /// with the term.
    pub(crate) fn new(
        node_id: i32,
        fence: Fence,
        ended: watch::Receiver<bool>,
        resign: Box<dyn Send + Sync>,
    ) -> ControllerTerm {
        ControllerTerm {
            node_id,
            fence,
            ended,
            _resign: resign,
        }
    }

    /// The node id holding the term.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// What the term's writes are conditioned on.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether the term still holds.
    pub fn is_active(&self) -> bool {
        !*self.ended.borrow() && self.ended.has_changed().is_ok()
    }

    /// Resolves when the term ends.
    pub async fn ended(&mut self) {
        // An Err means the sender is gone: nothing can keep the term alive any more.
        let _ = self.ended.wait_for(|ended| *ended).await;
    }
}

impl std::fmt::Debug for ControllerTerm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerTerm")
            .field("node_id", &self.node_id)
            .field("active", &self.is_active())
            .finish()
    }
}
