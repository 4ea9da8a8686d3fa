//! A controller term: held from winning the election until the lease is lost or it resigns.

use tokio::sync::watch;

/// This broker's term as controller. Dropping it resigns.
pub struct ControllerTerm {
    node_id: i32,
    ended: watch::Receiver<bool>,
    // Resigns on drop (ends the election key, stops the monitor).
    _resign: Box<dyn Send + Sync>,
}

impl ControllerTerm {
    /// A term that ends when `ended` turns true (or its sender goes); `resign` is dropped
    /// with the term.
    pub(crate) fn new(
        node_id: i32,
        ended: watch::Receiver<bool>,
        resign: Box<dyn Send + Sync>,
    ) -> ControllerTerm {
        ControllerTerm {
            node_id,
            ended,
            _resign: resign,
        }
    }

    /// The node id holding the term.
    pub fn node_id(&self) -> i32 {
        self.node_id
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
