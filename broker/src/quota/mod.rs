//! Client quotas as Kafka enforces them: produce and fetch byte rates and request time
//! percentage per user and client id, resolved by Kafka's precedence from the configs
//! of AlterClientQuotas, measured over `quota.window.num` samples of
//! `quota.window.size.seconds`, and answered with a throttle time for which the client's
//! connection is not read (KIP-219).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sluice_cluster::{ClusterMetadata, ClusterView};

use sluice_storage::{QuotaEntity, QuotaStore, StorageError};

use crate::shared_set::{hex, unhex, SharedWriteError};

/// Quota keys, by Kafka's names.
pub(crate) const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub(crate) const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub(crate) const REQUEST_PERCENTAGE: &str = "request_percentage";
pub(crate) const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub(crate) const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// How a request counts against the client's quotas (Kafka's byte-rate and request
/// quotas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaUse {
    /// Its handling time counts against `request_percentage`.
    Time,
    /// Its request bytes count against the produce byte rate, its handling time too.
    RequestBytes,
    /// The record bytes it sends count against the fetch byte rate; its time waits by
    /// design and does not count.
    ResponseBytes,
    /// It waits by design (a rebalance): its time does not count.
    Waits,
    /// Not counted: ApiVersions and SASL come before the client is known.
    Exempt,
}

/// Entity types.
pub(crate) const USER: &str = "user";
pub(crate) const CLIENT_ID: &str = "client-id";
pub(crate) const IP: &str = "ip";

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum QuotaKind {
    Produce,
    Fetch,
    Request,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => CONSUMER_BYTE_RATE,
            QuotaKind::Request => REQUEST_PERCENTAGE,
        }
    }
}

/// A windowed rate: samples of a fixed length, the oldest dropped as time moves on.
struct Rate {
    samples: VecDeque<(Instant, f64)>,
}

impl Rate {
    fn record(&mut self, now: Instant, value: f64, size: Duration, num: usize) {
        match self.samples.back_mut() {
            Some((start, v)) if now.duration_since(*start) < size => *v += value,
            _ => self.samples.push_back((now, value)),
        }
        while self.samples.len() > num {
            self.samples.pop_front();
        }
        let horizon = size * num as u32;
        while self
            .samples
            .front()
            .is_some_and(|(start, _)| now.duration_since(*start) > horizon)
        {
            self.samples.pop_front();
        }
    }

    /// Kafka's window: from the oldest sample to now, but at least `num - 1` samples long,
    /// so that a fresh client is not throttled for its first burst alone.
    fn window(&self, now: Instant, size: Duration, num: usize) -> Duration {
        let elapsed = self
            .samples
            .front()
            .map_or(Duration::ZERO, |(start, _)| now.duration_since(*start));
        elapsed.max(size * (num as u32 - 1))
    }

    fn per_second(&self, now: Instant, size: Duration, num: usize) -> f64 {
        let total: f64 = self.samples.iter().map(|(_, v)| v).sum();
        total / self.window(now, size, num).as_secs_f64()
    }
}

/// How many clients' rates are kept before idle ones are dropped.
const MAX_SENSORS: usize = 10_000;

/// Sensors are keyed by the matched entity's user and client id.
type SensorKey = (Option<String>, Option<String>, QuotaKind);

/// The kind of the cluster's shared set that holds client quotas.
const QUOTAS: &str = "quotas";

/// Where quota configs are kept: this data directory, or the cluster's metadata, which
/// every broker follows.
enum Backend {
    Local(QuotaStore),
    Cluster(Arc<dyn ClusterMetadata>),
}

/// An entity's key in the cluster's shared set: its encoding in hex.
fn entry_key(entity: &QuotaEntity) -> String {
    hex(&sluice_storage::encode_entity(entity))
}

/// The quota configs a cluster view holds; unreadable entries are logged and skipped.
fn configs_in(view: &ClusterView) -> BTreeMap<QuotaEntity, BTreeMap<String, f64>> {
    let Some(set) = view.entries.get(QUOTAS) else {
        return BTreeMap::new();
    };
    set.iter()
        .filter_map(|(key, value)| {
            let entity = unhex(key).and_then(|k| sluice_storage::decode_entity(&k).ok());
            match (entity, sluice_storage::decode_values(value)) {
                (Some(e), Ok(v)) => Some((e, v)),
                _ => {
                    tracing::warn!(key, "unreadable client quota in the cluster metadata");
                    None
                }
            }
        })
        .collect()
}

/// The quota configs and each client's measured rates.
pub(crate) struct QuotaManager {
    store: Backend,
    configs: RwLock<BTreeMap<QuotaEntity, BTreeMap<String, f64>>>,
    sensors: Mutex<HashMap<SensorKey, Rate>>,
    window_size: Duration,
    window_num: usize,
}

impl QuotaManager {
    /// Loads the stored quota configs.
    pub(crate) fn load(
        store: QuotaStore,
        window_size: Duration,
        window_num: usize,
    ) -> Result<Self, StorageError> {
        let configs = store.load()?.into_iter().collect();
        Ok(Self::with(
            Backend::Local(store),
            configs,
            window_size,
            window_num,
        ))
    }

    /// A cluster member's quotas: the cluster's, as its view shows them
    /// ([`QuotaManager::follow`] keeps them current).
    pub(crate) fn replicated(
        meta: Arc<dyn ClusterMetadata>,
        window_size: Duration,
        window_num: usize,
    ) -> Self {
        let configs = configs_in(&meta.view().borrow());
        Self::with(Backend::Cluster(meta), configs, window_size, window_num)
    }

    fn with(
        store: Backend,
        configs: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
        window_size: Duration,
        window_num: usize,
    ) -> Self {
        QuotaManager {
            store,
            configs: RwLock::new(configs),
            sensors: Mutex::new(HashMap::new()),
            window_size,
            window_num: window_num.max(2),
        }
    }

    /// In a cluster: takes the quotas of every new view until `stop`, so that a quota set
    /// through any broker applies on all of them.
    pub(crate) async fn follow(
        self: Arc<Self>,
        view: tokio::sync::watch::Receiver<Arc<ClusterView>>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::shared_set::follow(QUOTAS, view, stop, |v| {
            *self.configs.write().unwrap_or_else(|p| p.into_inner()) = configs_in(v);
            self.reset_sensors();
        })
        .await;
    }

    fn reset_sensors(&self) {
        self.sensors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Every entity with its quotas.
    pub(crate) fn all(&self) -> Vec<(QuotaEntity, BTreeMap<String, f64>)> {
        let configs = self.configs.read().unwrap_or_else(|p| p.into_inner());
        configs
            .iter()
            .map(|(e, v)| (e.clone(), v.clone()))
            .collect()
    }

    /// Replaces an entity's quotas (an empty map removes it).
    pub(crate) async fn set(
        &self,
        entity: QuotaEntity,
        values: BTreeMap<String, f64>,
    ) -> Result<(), SharedWriteError> {
        match &self.store {
            Backend::Local(store) => store.put(&entity, &values)?,
            Backend::Cluster(meta) => {
                let key = entry_key(&entity);
                let (puts, deletes) = if values.is_empty() {
                    (Vec::new(), vec![key])
                } else {
                    (
                        vec![(key, sluice_storage::encode_values(&values))],
                        Vec::new(),
                    )
                };
                meta.apply_entries(QUOTAS, puts, deletes).await?;
            }
        }
        let mut configs = self.configs.write().unwrap_or_else(|p| p.into_inner());
        if values.is_empty() {
            configs.remove(&entity);
        } else {
            configs.insert(entity, values);
        }
        drop(configs);
        // Rates measured against the old quotas start again.
        self.reset_sensors();
        Ok(())
    }

    /// The quota for `key` of a client, by Kafka's precedence, with the sensor it counts in.
    fn resolve(&self, user: &str, client: &str, key: &str) -> Option<(f64, SensorKey, QuotaKind)> {
        let configs = self.configs.read().unwrap_or_else(|p| p.into_inner());
        if configs.is_empty() {
            return None;
        }
        let u = |n: Option<&str>| (USER.to_string(), n.map(String::from));
        let c = |n: Option<&str>| (CLIENT_ID.to_string(), n.map(String::from));
        // (entity, does the sensor carry the user, the client id)
        let order: [(QuotaEntity, bool, bool); 8] = [
            (vec![u(Some(user)), c(Some(client))], true, true),
            (vec![u(Some(user)), c(None)], true, true),
            (vec![u(Some(user))], true, false),
            (vec![u(None), c(Some(client))], true, true),
            (vec![u(None), c(None)], true, true),
            (vec![u(None)], true, false),
            (vec![c(Some(client))], false, true),
            (vec![c(None)], false, true),
        ];
        let kind = match key {
            PRODUCER_BYTE_RATE => QuotaKind::Produce,
            CONSUMER_BYTE_RATE => QuotaKind::Fetch,
            _ => QuotaKind::Request,
        };
        order.into_iter().find_map(|(entity, by_user, by_client)| {
            let value = configs.get(&entity)?.get(key)?;
            let sensor = (
                by_user.then(|| user.to_string()),
                by_client.then(|| client.to_string()),
                kind,
            );
            Some((*value, sensor, kind))
        })
    }

    /// Records `value` (bytes, or milliseconds of handling for the request quota) for a
    /// client and returns how long it must be throttled; zero when within its quota.
    pub(crate) fn record(&self, user: &str, client: &str, kind: QuotaKind, value: f64) -> Duration {
        let Some((quota, sensor, kind)) = self.resolve(user, client, kind.key()) else {
            return Duration::ZERO;
        };
        // request_percentage is a share of one thread: 1% is 10 ms of handling per second.
        let bound = match kind {
            QuotaKind::Request => quota * 10.0,
            _ => quota,
        };
        if bound <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let (size, num) = (self.window_size, self.window_num);
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if sensors.len() >= MAX_SENSORS {
            // Many client ids under a default quota: forget those idle for a whole window.
            let horizon = size * num as u32;
            sensors.retain(|_, r| {
                r.samples
                    .back()
                    .is_some_and(|(start, _)| now.duration_since(*start) <= horizon)
            });
        }
        let rate = sensors.entry(sensor).or_insert_with(|| Rate {
            samples: VecDeque::new(),
        });
        rate.record(now, value, size, num);
        let observed = rate.per_second(now, size, num);
        if observed <= bound {
            return Duration::ZERO;
        }
        // Kafka's throttle: long enough for the rate over the window to fall to the bound.
        let window = rate.window(now, size, num);
        let throttle = window.mul_f64((observed - bound) / bound);
        throttle.min(size * num as u32)
    }

    /// Records one handled request against the client's quotas as `usage` says it counts;
    /// the longest throttle it earned.
    pub(crate) fn charge(
        &self,
        user: &str,
        client: &str,
        usage: QuotaUse,
        request_bytes: usize,
        response_bytes: usize,
        handling: Duration,
    ) -> Duration {
        let mut throttle = match usage {
            QuotaUse::Exempt => return Duration::ZERO,
            QuotaUse::RequestBytes => {
                self.record(user, client, QuotaKind::Produce, request_bytes as f64)
            }
            QuotaUse::ResponseBytes => {
                self.record(user, client, QuotaKind::Fetch, response_bytes as f64)
            }
            QuotaUse::Time | QuotaUse::Waits => Duration::ZERO,
        };
        // Handling time, for request_percentage; requests that wait by design (long-poll
        // fetches, rebalances) are left out, as Kafka counts thread time, not waiting.
        if matches!(usage, QuotaUse::Time | QuotaUse::RequestBytes) {
            let ms = handling.as_secs_f64() * 1000.0;
            throttle = throttle.max(self.record(user, client, QuotaKind::Request, ms));
        }
        throttle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(entries: &[(QuotaEntity, &str, f64)]) -> (tempfile::TempDir, QuotaManager) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sluice_config::BrokerConfig::from_properties([(
            "log.dirs",
            dir.path().to_str().unwrap(),
        )])
        .unwrap();
        let storage = sluice_storage::Storage::open(&cfg).unwrap();
        let m = QuotaManager::load(storage.quotas(), Duration::from_secs(1), 2).unwrap();
        for (e, k, v) in entries {
            futures::executor::block_on(m.set(e.clone(), [(k.to_string(), *v)].into())).unwrap();
        }
        (dir, m)
    }

    fn entity(pairs: &[(&str, Option<&str>)]) -> QuotaEntity {
        pairs
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(String::from)))
            .collect()
    }

    #[test]
    fn precedence_follows_kafka() {
        let (_d, m) = manager(&[
            (entity(&[(USER, None)]), PRODUCER_BYTE_RATE, 100.0),
            (entity(&[(USER, Some("alice"))]), PRODUCER_BYTE_RATE, 200.0),
            (
                entity(&[(USER, Some("alice")), (CLIENT_ID, Some("app"))]),
                PRODUCER_BYTE_RATE,
                300.0,
            ),
            (entity(&[(CLIENT_ID, None)]), CONSUMER_BYTE_RATE, 50.0),
        ]);
        let q = |u: &str, c: &str, k: &str| m.resolve(u, c, k).map(|(v, _, _)| v);
        assert_eq!(q("alice", "app", PRODUCER_BYTE_RATE), Some(300.0));
        assert_eq!(q("alice", "other", PRODUCER_BYTE_RATE), Some(200.0));
        assert_eq!(q("bob", "app", PRODUCER_BYTE_RATE), Some(100.0));
        assert_eq!(q("bob", "app", CONSUMER_BYTE_RATE), Some(50.0));
        assert_eq!(q("bob", "app", REQUEST_PERCENTAGE), None);
    }

    #[test]
    fn a_client_over_its_rate_is_throttled_in_proportion() {
        let (_d, m) = manager(&[(entity(&[(USER, Some("alice"))]), PRODUCER_BYTE_RATE, 1000.0)]);
        assert_eq!(
            m.record("alice", "c", QuotaKind::Produce, 500.0),
            Duration::ZERO
        );
        assert_eq!(
            m.record("bob", "c", QuotaKind::Produce, 1e9),
            Duration::ZERO
        );
        // 3000 bytes over the minimum 1 s window: three times the quota, 2 s to wait.
        let t = m.record("alice", "c", QuotaKind::Produce, 2500.0);
        assert!(
            t >= Duration::from_millis(1900) && t <= Duration::from_secs(2),
            "{t:?}"
        );
    }
}
