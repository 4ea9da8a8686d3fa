//! Unit tests of the group coordinator on in-memory ports and a manual clock: no socket,
//! no disk, no waiting.

mod classic;
mod consumer;
mod share;

use std::sync::Arc;

use sluice_config::GroupConfig;

use super::ports::{MemoryGroupStore, MemoryTopics};
use super::state::{Group, GroupState};
use super::{GroupCoordinator, Pending};
use crate::clock::ManualClock;

/// A coordinator with its doubles.
struct Fixture {
    coordinator: GroupCoordinator,
    store: Arc<MemoryGroupStore>,
    topics: Arc<MemoryTopics>,
    clock: Arc<ManualClock>,
}

impl Fixture {
    /// No initial rebalance delay, so that a join phase ends as soon as everyone joined.
    fn new() -> Self {
        Fixture::with_config(GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        })
    }

    fn with_config(config: GroupConfig) -> Self {
        let store = Arc::new(MemoryGroupStore::default());
        let topics = Arc::new(MemoryTopics::default());
        let clock = ManualClock::new();
        let coordinator =
            GroupCoordinator::with_ports(store.clone(), topics.clone(), clock.clone(), config)
                .unwrap();
        Fixture {
            coordinator,
            store,
            topics,
            clock,
        }
    }

    /// Moves the clock and runs every deadline that passed.
    fn advance_ms(&self, ms: u64) {
        self.clock.advance_ms(ms);
        self.coordinator.expire(self.clock.now_instant());
    }

    /// Looks at a group's state.
    fn group<T>(&self, group_id: &str, f: impl FnOnce(&Group) -> T) -> T {
        f(self.coordinator.lock().get(group_id).expect("group exists"))
    }

    fn state(&self, group_id: &str) -> GroupState {
        self.group(group_id, |g| g.state)
    }

    fn generation(&self, group_id: &str) -> i32 {
        self.group(group_id, |g| g.generation_id)
    }
}

/// The answer of a call that must not wait.
fn ready<T>(p: Pending<T>) -> T {
    match p {
        Pending::Ready(r) => r,
        Pending::Wait(_) => panic!("expected an answer now, got a wait"),
    }
}

/// The channel of a call that waits.
fn waiting<T>(p: Pending<T>) -> tokio::sync::oneshot::Receiver<T> {
    match p {
        Pending::Wait(rx) => rx,
        Pending::Ready(_) => panic!("expected a wait, got an answer"),
    }
}
