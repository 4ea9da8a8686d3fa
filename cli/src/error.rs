//! What can go wrong in an admin command, worded for the person at the terminal.

use std::time::Duration;

use sluice_protocol::names::error_name;

/// An admin command's failure; every variant means a non-zero exit.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No TCP connection (refused, unresolvable, or not answered in time).
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// A request got no answer in time.
    #[error("{api} request to {addr} timed out after {} ms", .after.as_millis())]
    RequestTimeout {
        addr: String,
        api: &'static str,
        after: Duration,
    },
    /// The connection broke mid-request.
    #[error("connection to {addr} lost during {api}: {reason}")]
    Disconnected {
        addr: String,
        api: &'static str,
        reason: String,
    },
    /// Bytes that do not decode as the response (or a request that does not encode).
    #[error("{api} with {addr}: {reason}")]
    Protocol {
        addr: String,
        api: &'static str,
        reason: String,
    },
    /// The broker speaks no version of an API that this tool also speaks.
    #[error("{addr} does not support {api} at a version this tool speaks ({ours})")]
    Unsupported {
        addr: String,
        api: &'static str,
        ours: String,
    },
    /// A Kafka error code in a response, with what it was about.
    #[error("{context}: {}{}", error_name(*.code), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        context: String,
        code: i16,
        message: Option<String>,
    },
    /// Command-line input that cannot work.
    #[error("{0}")]
    Usage(String),
    /// Something the tool will not do in the current state (reset a group with members).
    #[error("{0}")]
    Refused(String),
    /// Part of the work failed; the failures were reported as they happened.
    #[error("{0}")]
    Incomplete(String),
    /// A condition the command waits for (topic created, topic gone) did not come true.
    #[error("{0}")]
    Wait(String),
    /// Standard input or output failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

impl CliError {
    /// A Kafka error code as an error, or `Ok` for 0.
    pub(crate) fn check(
        code: i16,
        message: Option<&kafka_protocol::protocol::StrBytes>,
        context: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        if code == 0 {
            return Ok(());
        }
        Err(CliError::Kafka {
            context: context(),
            code,
            // Kafka sends null, and some brokers "", when there is nothing to add.
            message: message
                .map(|m| m.as_str().to_string())
                .filter(|m| !m.is_empty()),
        })
    }
}

impl CliError {
    /// True when this is the Kafka error `e`.
    pub(crate) fn is(&self, e: kafka_protocol::ResponseError) -> bool {
        matches!(self, CliError::Kafka { code, .. } if *code == e.code())
    }
}

/// True for error codes a client retries after refreshing metadata or waiting: the
/// answer may change without anyone doing anything.
pub(crate) fn is_retriable(code: i16) -> bool {
    kafka_protocol::ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}
