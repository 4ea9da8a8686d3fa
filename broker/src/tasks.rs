//! Background work: retention checks, the log cleaner, producer id expiry and time-based
//! log flushes.

use std::sync::Arc;
use std::time::Duration;

use sluice_storage::{CleanOptions, CleanerCrashPoint};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;

/// Starts the background tasks; they end when `stop` turns true.
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
    if let Some(tier) = &broker.tier {
        let manager = tier.manager.clone();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                () = manager.run() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }));
    }
    if broker.config.cleaner.enable {
        tasks.push(tokio::spawn(run_cleaner(broker.clone(), stop.clone())));
    }
    tasks.push(tokio::spawn(broker.groups.clone().run_timers(stop.clone())));
    tasks.push(tokio::spawn(
        broker.shares.clone().run_lock_timer(stop.clone()),
    ));
    if let Some(cluster) = &broker.cluster {
        tasks.push(tokio::spawn(
            broker
                .authorizer
                .clone()
                .follow(cluster.view.clone(), stop.clone()),
        ));
        tasks.push(tokio::spawn(
            broker
                .quotas
                .clone()
                .follow(cluster.view.clone(), stop.clone()),
        ));
        tasks.push(tokio::spawn(
            broker
                .group_configs
                .clone()
                .follow(cluster.view.clone(), stop.clone()),
        ));
        tasks.push(tokio::spawn(crate::replication::broker_defaults::follow(
            broker.storage.clone(),
            cluster.view.clone(),
            stop.clone(),
        )));
        tasks.push(tokio::spawn(crate::coordinator_loader::follow_leadership(
            broker.groups.clone(),
            broker.txns.clone(),
            broker.share_coordinator.clone(),
            cluster.replicas.leadership(),
            stop.clone(),
        )));
    }
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
    let b = broker.clone();
    let producers_every = Duration::from_millis(
        broker
            .config
            .transactions
            .producer_id_expiration_check_interval_ms
            .max(1) as u64,
    );
    tasks.push(spawn_every(producers_every, stop.clone(), move || {
        let b = b.clone();
        async move {
            let storage = b.storage.clone();
            let now = sluice_storage::now_ms();
            match tokio::task::spawn_blocking(move || storage.remove_expired_producers(now)).await {
                Ok(n) if n > 0 => tracing::info!(producer_ids = n, "expired producer ids removed"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "producer id expiry task failed"),
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

/// The log cleaner: cleans the dirtiest compacted partition, again at once while there is
/// work, and waits `log.cleaner.backoff.ms` when there is none. Cleaning runs on a
/// blocking thread and holds a partition's lock only to snapshot it and to swap segments.
async fn run_cleaner(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let backoff = Duration::from_millis(broker.config.cleaner.backoff_ms.max(1) as u64);
    let opts = CleanOptions {
        dedupe_buffer_size: broker.config.cleaner.dedupe_buffer_size,
        crash_point: std::env::var("SLUICE_CRASH_POINT")
            .ok()
            .and_then(|v| CleanerCrashPoint::parse(&v)),
    };
    if let Some(p) = opts.crash_point {
        tracing::warn!(
            "SLUICE_CRASH_POINT={}: the broker will abort in its next log cleaning",
            p.name()
        );
    }
    loop {
        let storage = broker.storage.clone();
        let pass = tokio::task::spawn_blocking(move || storage.clean_dirtiest(&opts));
        let worked = match pass.await {
            Ok(Ok(done)) => done.is_some(),
            Ok(Err(e)) => {
                // Only a test crash point comes back as an error: die as a crash would.
                tracing::error!(error = %e, "aborting the process");
                std::process::abort();
            }
            Err(e) => {
                tracing::error!(error = %e, "log cleaner task failed");
                false
            }
        };
        if *stop.borrow() {
            return;
        }
        if worked {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = crate::stopped(&mut stop) => return,
        }
    }
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
