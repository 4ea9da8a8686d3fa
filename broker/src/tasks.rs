//! Background work: retention checks and time-based log flushes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;

/// Starts the retention and flush tasks; they end when `stop` turns true.
pub(crate) fn spawn_background(
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let retention_every = broker.config.log_retention_check_interval;
    let b = broker.clone();
    tasks.push(spawn_every(retention_every, stop.clone(), move || {
        let b = b.clone();
        async move {
            let storage = b.storage.clone();
            match tokio::task::spawn_blocking(move || storage.enforce_retention()).await {
                Ok(n) if n > 0 => tracing::info!(segments = n, "retention deleted segments"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention task failed"),
            }
        }
    }));
    tasks.push(tokio::spawn(broker.groups.clone().run_timers(stop.clone())));
    tasks.push(tokio::spawn(broker.txns.clone().run_timers(stop.clone())));
    let b = broker.clone();
    let offsets_every = Duration::from_millis(
        broker
            .config
            .groups
            .offsets_retention_check_interval_ms
            .max(1) as u64,
    );
    tasks.push(spawn_every(offsets_every, stop.clone(), move || {
        let b = b.clone();
        async move {
            let n = b.groups.expire_offsets(sluice_storage::now_ms());
            if n > 0 {
                tracing::info!(offsets = n, "expired committed offsets");
            }
        }
    }));
    if let Some(interval) = broker.config.flush.interval {
        let b = broker.clone();
        tasks.push(spawn_every(interval.max(Duration::from_millis(1)), stop, move || {
            let b = b.clone();
            async move {
                for p in b.storage.partitions() {
                    if p.has_unflushed() {
                        if let Err(e) = p.flush_now().await {
                            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "periodic flush failed");
                        }
                    }
                }
            }
        }));
    }
    tasks
}

fn spawn_every<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, mut f: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => f().await,
                _ = crate::stopped(&mut stop) => return,
            }
        }
    })
}
