//! The replication figures Kafka operators watch (UnderReplicatedPartitions,
//! UnderMinIsrPartitionCount, LeaderCount, OfflinePartitionsCount, ActiveControllerCount,
//! IsrShrinksPerSec, IsrExpandsPerSec), read from the cluster view and the replica manager
//! at each scrape. On a single node they are 0, as a one-broker Kafka reports them.

use prometheus::{IntCounter, IntGauge, Registry};

use crate::broker::Broker;

/// The replication gauges and counters of `/metrics`.
pub(crate) struct ClusterGauges {
    under_replicated: IntGauge,
    under_min_isr: IntGauge,
    leaders: IntGauge,
    offline: IntGauge,
    active_controller: IntGauge,
    isr_shrinks: IntCounter,
    isr_expands: IntCounter,
}

impl ClusterGauges {
    /// Registers every figure with `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(ClusterGauges {
            under_replicated: gauge(
                "sluice_under_replicated_partitions",
                "Partitions this broker leads whose ISR lacks one of their replicas (Kafka's UnderReplicatedPartitions).",
            )?,
            under_min_isr: gauge(
                "sluice_under_min_isr_partitions",
                "Partitions this broker leads with fewer in-sync replicas than min.insync.replicas: acks=all writes to them fail (Kafka's UnderMinIsrPartitionCount).",
            )?,
            leaders: gauge(
                "sluice_leader_partitions",
                "Partitions this broker leads (Kafka's LeaderCount).",
            )?,
            offline: gauge(
                "sluice_offline_partitions",
                "Partitions without a leader, reported by the controller only (Kafka's OfflinePartitionsCount).",
            )?,
            active_controller: gauge(
                "sluice_active_controller",
                "1 on the broker that is the cluster's controller (Kafka's ActiveControllerCount).",
            )?,
            isr_shrinks: counter(
                "sluice_isr_shrinks_total",
                "ISR shrinks this broker committed as a leader (Kafka's IsrShrinksPerSec).",
            )?,
            isr_expands: counter(
                "sluice_isr_expands_total",
                "ISR expansions this broker committed as a leader (Kafka's IsrExpandsPerSec).",
            )?,
        })
    }

    /// Reads the figures anew.
    pub(crate) fn refresh(&self, broker: &Broker) {
        let Some(cluster) = &broker.cluster else {
            for g in [
                &self.under_replicated,
                &self.under_min_isr,
                &self.leaders,
                &self.offline,
                &self.active_controller,
            ] {
                g.set(0);
            }
            return;
        };
        let me = broker.config.node_id;
        let view = cluster.view.borrow().clone();
        let (mut leaders, mut under_replicated, mut under_min_isr, mut offline) = (0, 0, 0, 0);
        for ((topic, index), state) in &view.partitions {
            if state.leader < 0 || !view.is_serving(state.leader) {
                offline += 1;
            }
            if state.leader != me {
                continue;
            }
            leaders += 1;
            let replicas = view
                .topics
                .get(topic)
                .and_then(|t| t.assignment.get(*index as usize));
            if replicas.is_some_and(|r| r.iter().any(|id| !state.isr.contains(id))) {
                under_replicated += 1;
            }
            let min_isr = broker
                .storage
                .topic(topic)
                .map_or(1, |t| t.config.min_insync_replicas);
            if (state.isr.len() as i32) < min_isr {
                under_min_isr += 1;
            }
        }
        let controller = view.controller == Some(me);
        self.leaders.set(leaders);
        self.under_replicated.set(under_replicated);
        self.under_min_isr.set(under_min_isr);
        self.offline.set(if controller { offline } else { 0 });
        self.active_controller.set(i64::from(controller));
        let (shrinks, expands) = cluster.replicas.isr_changes();
        catch_up(&self.isr_shrinks, shrinks);
        catch_up(&self.isr_expands, expands);
    }
}

/// Moves a counter up to `total`, a count kept elsewhere.
fn catch_up(counter: &IntCounter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}
