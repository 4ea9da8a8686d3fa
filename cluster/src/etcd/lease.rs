//! This broker's registration: its key under a lease, the keep-alives, and fencing.
//!
//! Fencing is measured from when the last successful keep-alive was SENT: etcd renews the
//! lease for a full TTL from when it receives the keep-alive, which is later, so a broker
//! that turns Fenced half a TTL after that send has stopped leading well before etcd can
//! expire its lease and let another broker take over.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::keys::Keys;
use super::unavailable;
use crate::error::MetadataError;
use crate::model::{BrokerRegistration, Liveness};

/// What keeps one registration alive.
pub(crate) struct KeepAlive {
    pub(crate) client: Client,
    pub(crate) keys: Keys,
    pub(crate) me: BrokerRegistration,
    pub(crate) ttl_seconds: i64,
    pub(crate) heartbeat: Duration,
    /// Half the TTL.
    pub(crate) fence_after: Duration,
    pub(crate) liveness: watch::Sender<Liveness>,
    /// The current lease id (changes when the broker registers again).
    pub(crate) lease: watch::Sender<i64>,
    /// When the last keep-alive (or grant) that succeeded was sent.
    pub(crate) last_ok_sent: Instant,
}

/// How one heartbeat went.
enum Beat {
    /// The lease is alive.
    Alive,
    /// The lease is gone (expired or revoked): register again.
    Expired,
}

/// Grants a lease and puts the broker key under it, unless another live broker holds the
/// node id. Returns the lease id.
pub(crate) async fn register_once(
    client: &Client,
    keys: &Keys,
    me: &BrokerRegistration,
    ttl_seconds: i64,
) -> Result<i64, MetadataError> {
    let value = serde_json::to_vec(me).map_err(|e| MetadataError::Invalid(e.to_string()))?;
    let lease = client
        .lease_client()
        .grant(ttl_seconds, None)
        .await
        .map_err(unavailable)?
        .id();
    let key = keys.broker(me.node_id);
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )]);
    let outcome = client.kv_client().txn(txn).await;
    match outcome {
        Ok(response) if response.succeeded() => Ok(lease),
        Ok(_) => {
            revoke(client, lease).await;
            Err(MetadataError::DuplicateBrokerId(me.node_id))
        }
        Err(error) => {
            revoke(client, lease).await;
            Err(unavailable(error))
        }
    }
}

/// Revokes a lease, best effort (it expires anyway).
pub(crate) async fn revoke(client: &Client, lease: i64) {
    if let Err(error) = client.lease_client().revoke(lease).await {
        warn!(lease, %error, "lease revoke failed; it will expire");
    }
}

impl KeepAlive {
    /// Keeps the lease alive every heartbeat until dropped, fencing and registering again
    /// as needed.
    pub(crate) async fn run(mut self) {
        let mut channel: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
        loop {
            let sent_at = Instant::now();
            let lease = *self.lease.borrow();
            let attempt = tokio::time::timeout(self.heartbeat, self.beat(lease, &mut channel));
            let outcome = self.fencing(attempt).await;
            match outcome {
                Ok(Ok(Beat::Alive)) => {
                    self.last_ok_sent = sent_at;
                    self.set(Liveness::Live);
                }
                Ok(Ok(Beat::Expired)) => {
                    warn!(
                        node_id = self.me.node_id,
                        lease, "lease expired; registering again"
                    );
                    channel = None;
                    self.set(Liveness::Fenced);
                    self.lease.send_replace(0);
                }
                Ok(Err(error)) => {
                    channel = None;
                    if !matches!(error, MetadataError::DuplicateBrokerId(_)) {
                        warn!(node_id = self.me.node_id, %error, "lease keep-alive failed");
                    } else {
                        warn!(
                            node_id = self.me.node_id,
                            "node id held by another live broker; will retry"
                        );
                    }
                }
                Err(_elapsed) => {
                    // A late answer must not count for a later send: start a fresh stream.
                    channel = None;
                }
            }
            self.fencing(tokio::time::sleep_until(sent_at + self.heartbeat))
                .await;
        }
    }

    /// Runs `work`, turning Fenced on time if no keep-alive succeeds meanwhile.
    async fn fencing<F: std::future::Future>(&self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            let live = *self.liveness.borrow() == Liveness::Live;
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(self.last_ok_sent + self.fence_after), if live => {
                    warn!(node_id = self.me.node_id, "no keep-alive succeeded for half the session timeout; fenced");
                    self.set(Liveness::Fenced);
                }
            }
        }
    }

    /// One heartbeat: a keep-alive on the lease, or a new registration when there is none.
    async fn beat(
        &self,
        lease: i64,
        channel: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    ) -> Result<Beat, MetadataError> {
        if lease == 0 {
            let lease = register_once(&self.client, &self.keys, &self.me, self.ttl_seconds).await?;
            info!(node_id = self.me.node_id, lease, "registered again");
            self.lease.send_replace(lease);
            return Ok(Beat::Alive);
        }
        let Some((keeper, stream)) = channel else {
            // Opening the stream sends a keep-alive and waits for its answer.
            return match self.client.lease_client().keep_alive(lease).await {
                Ok(opened) => {
                    *channel = Some(opened);
                    Ok(Beat::Alive)
                }
                Err(etcd_client::Error::LeaseKeepAliveError(reason))
                    if reason.contains("not found") =>
                {
                    Ok(Beat::Expired)
                }
                Err(error) => Err(unavailable(error)),
            };
        };
        keeper.keep_alive().await.map_err(unavailable)?;
        match stream.message().await.map_err(unavailable)? {
            Some(answer) if answer.ttl() > 0 => Ok(Beat::Alive),
            Some(_) => Ok(Beat::Expired),
            None => Err(MetadataError::Unavailable(
                "keep-alive stream closed".to_string(),
            )),
        }
    }

    fn set(&self, liveness: Liveness) {
        self.liveness.send_if_modified(|current| {
            let changed = *current != liveness;
            *current = liveness;
            changed
        });
    }
}
