//! Bytes on the wire for Sluice: request framing and record-batch views.
//!
//! Message bodies are the `kafka-protocol` crate's; this crate adds what a broker needs
//! around them and nothing that does I/O, plus what clients and brokers share on top of the
//! wire: Kafka's names for APIs and errors, SCRAM's key math, PEM stores and the
//! properties file format.

pub mod batch;
pub mod decompress;
pub mod frame;
pub mod names;
pub mod pem;
pub mod properties;
pub mod records;
pub mod request;
pub mod scram;

pub use kafka_protocol;
