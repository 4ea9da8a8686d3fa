//! Share groups' metrics (KIP-932): members, records in flight on this broker, and the
//! deliveries, redeliveries, acknowledgements and archivals so far.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::broker::Broker;

/// The share-group figures, read from the coordinator and the share-partitions at scrape.
pub(crate) struct ShareGauges {
    members: IntGaugeVec,
    in_flight: IntGaugeVec,
    records: IntCounterVec,
}

impl ShareGauges {
    /// Registered in `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let members = IntGaugeVec::new(
            Opts::new(
                "sluice_share_group_members",
                "Members of each share group this broker coordinates.",
            ),
            &["group"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "sluice_share_records_in_flight",
                "Records of share-partitions on this broker that are acquired by a member, or available to be delivered again.",
            ),
            &["state"],
        )?;
        let records = IntCounterVec::new(
            Opts::new(
                "sluice_share_records_total",
                "Share group record transitions on this broker: delivered (every delivery), redelivered (deliveries after the first), acknowledged, archived (rejected, gaps, or delivered group.share.delivery.count.limit times).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(members.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(records.clone()))?;
        Ok(ShareGauges {
            members,
            in_flight,
            records,
        })
    }

    /// Reads the figures from `broker`.
    pub(crate) fn refresh(&self, broker: &Broker) {
        self.members.reset();
        for g in broker.groups.list_groups(&[], &["share".to_string()]) {
            if let Ok(d) = broker.groups.describe_share_group(&g.group_id) {
                self.members
                    .with_label_values(&[g.group_id.as_str()])
                    .set(d.members.len() as i64);
            }
        }
        let (acquired, available) = broker.shares.in_flight();
        self.in_flight
            .with_label_values(&["acquired"])
            .set(acquired as i64);
        self.in_flight
            .with_label_values(&["available"])
            .set(available as i64);
        let totals = broker.shares.totals();
        for (outcome, total) in [
            ("delivered", totals.delivered),
            ("redelivered", totals.redelivered),
            ("acknowledged", totals.acknowledged),
            ("archived", totals.archived),
        ] {
            let c = self.records.with_label_values(&[outcome]);
            c.inc_by(total.saturating_sub(c.get()));
        }
    }
}
