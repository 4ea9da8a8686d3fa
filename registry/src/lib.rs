//! Sluice's schema registry, the part that needs neither network nor broker: subjects,
//! their versions and global schema ids as Confluent's Schema Registry keeps them, the
//! compatibility levels and checks, the records of the `_schemas` topic whose fold the
//! registry's state is, and Confluent's REST API over that state (requests in, answers
//! and records to write out). Avro schemas go through the `apache-avro` crate.
//!
//! The broker serves it (`schema.registry.listeners`) and keeps its records in a topic.

mod compat;
mod error;
mod format;
mod json_schema;
mod protobuf;
mod records;
mod references;
mod rest;
mod state;

pub use compat::CompatibilityLevel;
pub use error::RegistryError;
pub use format::{ParsedSchema, SchemaType};
pub use records::{Record, Reference, SchemaValue};
pub use rest::{handle, path_segments, Outcome, Reply, Request};
pub use state::{Registration, Registry, StoredSchema};
