//! Moves the coordinators with leadership: when this broker becomes leader of a partition
//! of `__consumer_offsets` (or leads it in a new leader epoch) the group coordinator loads
//! that partition; when it stops leading it, the coordinator gives it up.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::group::GroupCoordinator;
use crate::internal_topics::GROUP_METADATA_TOPIC;
use crate::replication::manager::Leadership;

/// Follows `leadership` until `stop`.
pub(crate) async fn follow_leadership(
    groups: Arc<GroupCoordinator>,
    mut leadership: watch::Receiver<Arc<Leadership>>,
    mut stop: watch::Receiver<bool>,
) {
    // Partition → the leader epoch its state was loaded in.
    let mut loaded: BTreeMap<i32, i32> = BTreeMap::new();
    loop {
        let led: BTreeMap<i32, i32> = leadership
            .borrow_and_update()
            .iter()
            .filter(|((topic, _), _)| topic == GROUP_METADATA_TOPIC)
            .map(|((_, p), epoch)| (*p, *epoch))
            .collect();
        let gone: Vec<i32> = loaded
            .iter()
            .filter(|(p, epoch)| led.get(p) != Some(epoch))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            loaded.remove(&p);
            groups.unload_partition(p);
        }
        for (p, epoch) in led {
            if loaded.contains_key(&p) {
                continue;
            }
            let g = groups.clone();
            match tokio::task::spawn_blocking(move || g.load_partition(p)).await {
                Ok(true) => {
                    loaded.insert(p, epoch);
                }
                // Logged by the coordinator; tried again at the next leadership change.
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "loading consumer groups panicked")
                }
            }
        }
        tokio::select! {
            changed = leadership.changed() => if changed.is_err() { break },
            _ = crate::stopped(&mut stop) => break,
        }
    }
    for p in loaded.into_keys() {
        groups.unload_partition(p);
    }
}
