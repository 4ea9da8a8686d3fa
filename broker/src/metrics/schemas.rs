//! The built-in Schema Registry's metrics: its subjects and schemas, and the records that
//! broker-side schema validation refused.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

use crate::broker::Broker;

/// The registry's figures, read at scrape, and the validation failures so far.
pub(crate) struct SchemaGauges {
    subjects: IntGauge,
    schemas: IntGauge,
    validation_failures: IntCounterVec,
}

impl SchemaGauges {
    /// Registered in `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let subjects = IntGauge::new(
            "sluice_schema_registry_subjects",
            "Subjects of the built-in Schema Registry with at least one live version.",
        )?;
        let schemas = IntGauge::new(
            "sluice_schema_registry_schemas",
            "Schemas (distinct ids) the built-in Schema Registry holds.",
        )?;
        let validation_failures = IntCounterVec::new(
            Opts::new(
                "sluice_schema_validation_failures_total",
                "Records refused by broker-side schema validation (INVALID_RECORD), by topic.",
            ),
            &["topic"],
        )?;
        registry.register(Box::new(subjects.clone()))?;
        registry.register(Box::new(schemas.clone()))?;
        registry.register(Box::new(validation_failures.clone()))?;
        Ok(SchemaGauges {
            subjects,
            schemas,
            validation_failures,
        })
    }

    /// Reads the registry's counts from `broker`.
    pub(crate) fn refresh(&self, broker: &Broker) {
        if let Some(r) = &broker.schema_registry {
            let (subjects, schemas) = r.counts();
            self.subjects.set(subjects as i64);
            self.schemas.set(schemas as i64);
        }
    }

    /// `n` records of `topic` were refused by schema validation.
    pub(crate) fn validation_failed(&self, topic: &str, n: usize) {
        self.validation_failures
            .with_label_values(&[topic])
            .inc_by(n as u64);
    }
}
