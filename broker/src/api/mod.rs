//! One module per API family. Every handler has the same shape:
//! `async fn(broker, session, request, version) -> Reply<Response>`, the response with
//! Kafka error codes inside ([`reply`]).

pub(crate) mod acls;
pub(crate) mod admin;
pub(crate) mod api_versions;
pub(crate) mod broker_configs;
pub(crate) mod cluster_metadata;
pub(crate) mod configs;
pub(crate) mod fetch;
pub(crate) mod group_configs;
pub(crate) mod groups;
pub(crate) mod leadership;
pub(crate) mod list_offsets;
pub(crate) mod log_dirs;
pub(crate) mod metadata;
pub(crate) mod partitions;
pub(crate) mod produce;
pub(crate) mod producer_id;
pub(crate) mod quorum;
pub(crate) mod quotas;
pub(crate) mod reassignments;
pub(crate) mod reply;
pub(crate) mod sasl;
pub(crate) mod scram;
pub(crate) mod share;
pub(crate) mod share_state;
pub(crate) mod topic_partitions;
pub(crate) mod txn;
mod txn_cluster;
mod txn_offsets;
pub(crate) mod txn_views;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// A topic name for a response.
pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Names given more than once in one request: Kafka refuses each such entry rather
/// than acting on any of them.
pub(crate) fn repeated_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|n| !seen.insert(*n))
        .map(str::to_string)
        .collect()
}

/// Kafka's topic name rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be \"{name}\""));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters long; the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name {name:?} contains {c:?}; only ASCII alphanumerics, '.', '_' and '-' are legal"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_topic_name;

    #[test]
    fn topic_names_follow_kafka() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
