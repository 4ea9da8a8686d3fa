//! The controller election on etcd's election API: each broker campaigns with its lease;
//! the term lasts while its candidate key exists, its lease is the current one and the
//! broker is not fenced.

use etcd_client::{Client, EventType, LeaderKey, ResignOptions, WatchOptions};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::keys::Keys;
use super::unavailable;
use crate::error::MetadataError;
use crate::model::Liveness;
use crate::term::{ControllerTerm, Fence};

/// What a registered broker campaigns with.
pub(crate) struct Candidate {
    pub(crate) node_id: i32,
    pub(crate) liveness: watch::Receiver<Liveness>,
    pub(crate) lease: watch::Receiver<i64>,
}

/// Campaigns until elected; a lease change or fencing while waiting starts over with the
/// current lease.
pub(crate) async fn campaign(
    client: &Client,
    keys: &Keys,
    mut me: Candidate,
) -> Result<ControllerTerm, MetadataError> {
    loop {
        me.liveness
            .wait_for(|l| *l == Liveness::Live)
            .await
            .map_err(closed)?;
        let lease = *me.lease.borrow_and_update();
        if lease == 0 {
            me.lease.changed().await.map_err(closed)?;
            continue;
        }
        let mut election = client.election_client();
        let elected = tokio::select! {
            elected = election.campaign(keys.controller(), me.node_id.to_string(), lease) => elected,
            _ = me.lease.changed() => continue,
            _ = me.liveness.wait_for(|l| *l == Liveness::Fenced) => continue,
        };
        let leader = elected.map_err(unavailable)?.take_leader();
        let Some(leader) = leader else {
            return Err(MetadataError::Unavailable(
                "campaign answered without a leader key".to_string(),
            ));
        };
        if *me.lease.borrow() != lease || *me.liveness.borrow() != Liveness::Live {
            resign(client.clone(), leader).await;
            continue;
        }
        let (ended_tx, ended) = watch::channel(false);
        let monitor = tokio::spawn(monitor(
            client.clone(),
            leader.clone(),
            me.liveness,
            me.lease,
            lease,
            ended_tx,
        ));
        let fence = Fence::Etcd {
            key: leader.key().to_vec(),
            create_revision: leader.rev(),
        };
        let guard = Resigner {
            client: client.clone(),
            leader: Some(leader),
            monitor,
        };
        return Ok(ControllerTerm::new(
            me.node_id,
            fence,
            ended,
            Box::new(guard),
        ));
    }
}

/// Ends the term (sets `ended`) when the candidate key is deleted, the lease changes, the
/// broker is fenced, or the watch on the key cannot be kept.
async fn monitor(
    client: Client,
    leader: LeaderKey,
    mut liveness: watch::Receiver<Liveness>,
    mut lease: watch::Receiver<i64>,
    held_lease: i64,
    ended: watch::Sender<bool>,
) {
    let options = WatchOptions::new().with_start_revision(leader.rev() + 1);
    let watched = client
        .watch_client()
        .watch(leader.key().to_vec(), Some(options))
        .await;
    match watched {
        Ok(mut stream) => loop {
            tokio::select! {
                fenced = liveness.wait_for(|l| *l == Liveness::Fenced) => {
                    debug!(fenced = fenced.is_ok(), "controller term ends: fenced");
                    break;
                }
                _ = lease.wait_for(|l| *l != held_lease) => {
                    debug!("controller term ends: lease replaced");
                    break;
                }
                message = stream.message() => match message {
                    Ok(Some(response)) => {
                        if response.canceled() || response.events().iter().any(|e| e.event_type() == EventType::Delete) {
                            debug!("controller term ends: candidate key gone");
                            break;
                        }
                    }
                    Ok(None) | Err(_) => {
                        warn!("controller term ends: watch on the candidate key broke");
                        break;
                    }
                }
            }
        },
        Err(error) => warn!(%error, "controller term ends: cannot watch the candidate key"),
    }
    ended.send_replace(true);
}

/// Resigns (deletes the candidate key) when the term is dropped.
struct Resigner {
    client: Client,
    leader: Option<LeaderKey>,
    monitor: tokio::task::JoinHandle<()>,
}

impl Drop for Resigner {
    fn drop(&mut self) {
        self.monitor.abort();
        if let (Some(leader), Ok(runtime)) =
            (self.leader.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(resign(self.client.clone(), leader));
        }
    }
}

async fn resign(client: Client, leader: LeaderKey) {
    let resigned = client
        .election_client()
        .resign(Some(ResignOptions::new().with_leader(leader)))
        .await;
    if let Err(error) = resigned {
        warn!(%error, "controller resign failed; the candidate key goes with the lease");
    }
}

fn closed<E>(_: E) -> MetadataError {
    MetadataError::Unavailable("the registration ended".to_string())
}
