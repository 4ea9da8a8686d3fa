//! Bytes on the wire for Sluice: request framing and record-batch views.
//!
//! Message bodies are the `kafka-protocol` crate's; this crate adds what a broker needs
//! around them and nothing that does I/O.

pub mod batch;
pub mod decompress;
pub mod frame;
pub mod records;
pub mod request;

pub use kafka_protocol;
