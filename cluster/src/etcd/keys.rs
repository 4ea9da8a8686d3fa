//! The key layout under the prefix: `{prefix}/brokers/{id}` (under the broker's lease),
//! `{prefix}/topics/{name}`, `{prefix}/partitions/{name}/{p}`, `{prefix}/controller/...`
//! (the election's candidates), `{prefix}/entries/{kind}/{key}` (shared sets such as ACLs).

/// The keys of one cluster, under its prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// What a key under the prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A broker registration.
    Broker(i32),
    /// A topic record.
    Topic(String),
    /// A partition state.
    Partition(String, i32),
    /// A controller candidate (the election key of one lease).
    Controller,
    /// The cluster id, written once by the first broker.
    ClusterId,
    /// An entry of a shared set (ACLs, ...): its kind and key.
    Entry(String, String),
}

impl Keys {
    /// The layout under `prefix` (a trailing slash is ignored).
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// Everything of this cluster (with the trailing slash, so `/sluice2` is not in `/sluice`).
    pub(crate) fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub(crate) fn broker(&self, node_id: i32) -> String {
        format!("{}/brokers/{node_id}", self.prefix)
    }

    pub(crate) fn topic(&self, name: &str) -> String {
        format!("{}/topics/{name}", self.prefix)
    }

    pub(crate) fn partition(&self, name: &str, partition: i32) -> String {
        format!("{}/partitions/{name}/{partition}", self.prefix)
    }

    /// The prefix of every partition key of a topic.
    pub(crate) fn partitions_of(&self, name: &str) -> String {
        format!("{}/partitions/{name}/", self.prefix)
    }

    /// The next producer id not yet reserved by a broker.
    pub(crate) fn producer_ids(&self) -> String {
        format!("{}/producer_ids", self.prefix)
    }

    /// The cluster id's key.
    pub(crate) fn cluster_id(&self) -> String {
        format!("{}/cluster_id", self.prefix)
    }

    /// An entry of a shared set: `{prefix}/entries/{kind}/{key}`. Neither part may hold a
    /// slash.
    pub(crate) fn entry(&self, kind: &str, key: &str) -> String {
        format!("{}/entries/{kind}/{key}", self.prefix)
    }

    /// The election name; etcd puts each candidate at `{name}/{lease id in hex}`.
    pub(crate) fn controller(&self) -> String {
        format!("{}/controller", self.prefix)
    }

    /// What `key` is, or `None` for a key this layout does not know.
    pub(crate) fn parse(&self, key: &str) -> Option<KeyKind> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if rest == "cluster_id" {
            return Some(KeyKind::ClusterId);
        }
        let (kind, rest) = rest.split_once('/')?;
        match kind {
            "brokers" => rest.parse().ok().map(KeyKind::Broker),
            "topics" if !rest.is_empty() && !rest.contains('/') => {
                Some(KeyKind::Topic(rest.to_string()))
            }
            "partitions" => {
                let (topic, partition) = rest.rsplit_once('/')?;
                if topic.is_empty() || topic.contains('/') {
                    return None;
                }
                partition
                    .parse()
                    .ok()
                    .map(|p| KeyKind::Partition(topic.to_string(), p))
            }
            "controller" if !rest.is_empty() => Some(KeyKind::Controller),
            "entries" => {
                let (kind, key) = rest.split_once('/')?;
                if kind.is_empty() || key.is_empty() || key.contains('/') {
                    return None;
                }
                Some(KeyKind::Entry(kind.to_string(), key.to_string()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let keys = Keys::new("/sluice/");
        assert_eq!(keys.broker(3), "/sluice/brokers/3");
        assert_eq!(keys.parse("/sluice/brokers/3"), Some(KeyKind::Broker(3)));
        assert_eq!(
            keys.parse(&keys.topic("a.b-c")),
            Some(KeyKind::Topic("a.b-c".to_string()))
        );
        assert_eq!(
            keys.parse(&keys.partition("a.b", 12)),
            Some(KeyKind::Partition("a.b".to_string(), 12))
        );
        assert_eq!(
            keys.parse("/sluice/controller/694d7a1b2c3d"),
            Some(KeyKind::Controller)
        );
        assert_eq!(
            keys.parse(&keys.entry("acls", "0a1b")),
            Some(KeyKind::Entry("acls".to_string(), "0a1b".to_string()))
        );
        assert_eq!(keys.root(), "/sluice/");
        assert_eq!(keys.parse(&keys.cluster_id()), Some(KeyKind::ClusterId));
    }

    #[test]
    fn foreign_keys_are_not_ours() {
        let keys = Keys::new("/sluice");
        assert_eq!(keys.parse("/sluice2/brokers/1"), None);
        assert_eq!(keys.parse("/sluice/brokers/x"), None);
        assert_eq!(keys.parse("/sluice/partitions/t"), None);
        assert_eq!(keys.parse("/sluice/controller"), None);
        assert_eq!(keys.parse("/sluice/other/1"), None);
        assert_eq!(keys.parse("/sluice/entries/acls"), None);
        assert_eq!(keys.parse("/sluice/entries/acls/a/b"), None);
    }
}
