//! Kafka's names for API keys and error codes, as logs, metrics and tools print them.

use std::collections::HashMap;
use std::sync::OnceLock;

use kafka_protocol::messages::ApiKey;

/// The API's name as Kafka writes it (`Produce`, `FindCoordinator`).
pub fn api_name(api: ApiKey) -> &'static str {
    // ApiKey's Debug is the name; kept per key so metric labels do not allocate per request.
    static NAMES: OnceLock<HashMap<i16, &'static str>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            ApiKey::iter()
                .map(|k| (k as i16, &*Box::leak(format!("{k:?}").into_boxed_str())))
                .collect()
        })
        .get(&(api as i16))
        .copied()
        .unwrap_or("Unknown")
}

/// Kafka's name for an error code (`UNKNOWN_TOPIC_OR_PARTITION`); `ERROR_<code>` for a
/// code Kafka does not define.
pub fn error_name(code: i16) -> String {
    let camel = kafka_protocol::ResponseError::try_from_code(code).map(|e| format!("{e:?}"));
    match camel.filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric())) {
        Some(camel) => {
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
        None => format!("ERROR_{code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafkas() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(58), "SASL_AUTHENTICATION_FAILED");
        assert_eq!(error_name(-32768), "ERROR_-32768");
        assert_eq!(api_name(ApiKey::FindCoordinator), "FindCoordinator");
    }
}
