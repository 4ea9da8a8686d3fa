//! The built-in ACL authorizer, with Kafka's semantics: super users may do anything; a
//! matching DENY wins over any ALLOW; ALLOW of Read, Write, Delete or Alter implies
//! Describe, and AlterConfigs implies DescribeConfigs; literal names (`*` for all) and
//! prefixed patterns; `User:*` and host `*` wildcards; a resource without any ACL is
//! open only with `allow.everyone.if.no.acl.found`.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use sluice_cluster::{ClusterMetadata, ClusterView};
use sluice_config::AuthorizerConfig;
use sluice_storage::{AclBinding, AclStore, StorageError};

use crate::shared_set::{hex, SharedWriteError};

/// The kind of the cluster's shared set that holds ACL bindings.
const ACLS: &str = "acls";

/// Where the bindings are kept: this data directory, or the cluster's metadata, which
/// every broker follows.
enum Backend {
    Local(AclStore),
    Cluster(Arc<dyn ClusterMetadata>),
}

/// A binding's key in the cluster's shared set.
fn entry_key(b: &AclBinding) -> String {
    hex(&b.encode())
}

/// The bindings a cluster view holds; unreadable entries are logged and skipped.
pub(crate) fn bindings_in(view: &ClusterView) -> Vec<AclBinding> {
    let Some(set) = view.entries.get(ACLS) else {
        return Vec::new();
    };
    set.iter()
        .filter_map(|(key, value)| match AclBinding::decode(value) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(key, error = %e, "unreadable ACL binding in the cluster metadata");
                None
            }
        })
        .collect()
}

/// Kafka's resource type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub(crate) enum Resource {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
}

/// Kafka's operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub(crate) enum Operation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
}

/// The name of the one cluster resource.
pub(crate) const CLUSTER_NAME: &str = "kafka-cluster";

pub(crate) const RESOURCE_ANY: i8 = 1;
pub(crate) const PATTERN_ANY: i8 = 1;
pub(crate) const PATTERN_MATCH: i8 = 2;
pub(crate) const PATTERN_LITERAL: i8 = 3;
pub(crate) const PATTERN_PREFIXED: i8 = 4;
pub(crate) const OPERATION_ANY: i8 = 1;
pub(crate) const OPERATION_ALL: i8 = 2;
pub(crate) const PERMISSION_ANY: i8 = 1;
pub(crate) const PERMISSION_DENY: i8 = 2;
pub(crate) const PERMISSION_ALLOW: i8 = 3;
/// The highest resource type and operation codes Kafka defines.
pub(crate) const RESOURCE_MAX: i8 = 7;
pub(crate) const OPERATION_MAX: i8 = 14;

/// A DescribeAcls or DeleteAcls filter; `None` and the ANY codes match everything.
#[derive(Debug, Clone)]
pub(crate) struct AclFilter {
    pub(crate) resource_type: i8,
    pub(crate) resource_name: Option<String>,
    pub(crate) pattern_type: i8,
    pub(crate) principal: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) operation: i8,
    pub(crate) permission: i8,
}

impl AclFilter {
    pub(crate) fn matches(&self, b: &AclBinding) -> bool {
        let resource = self.resource_type == RESOURCE_ANY || self.resource_type == b.resource_type;
        let pattern = match self.pattern_type {
            PATTERN_ANY => self
                .resource_name
                .as_ref()
                .is_none_or(|n| *n == b.resource_name),
            PATTERN_MATCH => match &self.resource_name {
                None => true,
                Some(n) => pattern_covers(b, n),
            },
            p => {
                p == b.pattern_type
                    && self
                        .resource_name
                        .as_ref()
                        .is_none_or(|n| *n == b.resource_name)
            }
        };
        resource
            && pattern
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == OPERATION_ANY || self.operation == b.operation)
            && (self.permission == PERMISSION_ANY || self.permission == b.permission)
    }
}

/// Whether a binding's resource pattern covers the resource `name`.
fn pattern_covers(b: &AclBinding, name: &str) -> bool {
    match b.pattern_type {
        PATTERN_LITERAL => b.resource_name == name || b.resource_name == "*",
        PATTERN_PREFIXED => name.starts_with(&b.resource_name),
        _ => false,
    }
}

/// The ALLOW operations that grant `op` (besides ALL).
fn granting(op: Operation) -> &'static [Operation] {
    use Operation::*;
    match op {
        Describe => &[Describe, Read, Write, Delete, Alter],
        DescribeConfigs => &[DescribeConfigs, AlterConfigs],
        Read => &[Read],
        Write => &[Write],
        Create => &[Create],
        Delete => &[Delete],
        Alter => &[Alter],
        ClusterAction => &[ClusterAction],
        AlterConfigs => &[AlterConfigs],
        IdempotentWrite => &[IdempotentWrite],
    }
}

/// The authorizer: its settings and every ACL binding, kept in memory and in storage (the
/// data directory, or the cluster's metadata).
pub(crate) struct Authorizer {
    config: AuthorizerConfig,
    store: Backend,
    acls: RwLock<Vec<AclBinding>>,
}

impl Authorizer {
    /// Loads the stored ACLs.
    pub(crate) fn load(config: AuthorizerConfig, store: AclStore) -> Result<Self, StorageError> {
        let acls = store.load()?;
        Ok(Self::with(config, Backend::Local(store), acls))
    }

    /// A cluster member's authorizer: the bindings are the cluster's, as its view shows
    /// them ([`Authorizer::follow`] keeps them current).
    pub(crate) fn replicated(config: AuthorizerConfig, meta: Arc<dyn ClusterMetadata>) -> Self {
        let acls = bindings_in(&meta.view().borrow());
        Self::with(config, Backend::Cluster(meta), acls)
    }

    fn with(config: AuthorizerConfig, store: Backend, acls: Vec<AclBinding>) -> Self {
        if config.enabled {
            tracing::info!(acls = acls.len(), super_users = ?config.super_users, "authorizer on");
        }
        Authorizer {
            config,
            store,
            acls: RwLock::new(acls),
        }
    }

    /// In a cluster: takes the bindings of every new view until `stop`, so that an ACL
    /// created or deleted through any broker applies on all of them.
    pub(crate) async fn follow(
        self: Arc<Self>,
        view: tokio::sync::watch::Receiver<Arc<ClusterView>>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::shared_set::follow(ACLS, view, stop, |v| {
            let acls = bindings_in(v);
            tracing::debug!(acls = acls.len(), "ACL bindings from the cluster");
            *self.acls.write().unwrap_or_else(|p| p.into_inner()) = acls;
        })
        .await;
    }

    /// Stores an addition and a removal of bindings.
    async fn write(
        &self,
        add: &[AclBinding],
        remove: &[AclBinding],
    ) -> Result<(), SharedWriteError> {
        match &self.store {
            Backend::Local(store) => Ok(store.apply(add, remove)?),
            Backend::Cluster(meta) => {
                let puts = add.iter().map(|b| (entry_key(b), b.encode())).collect();
                let deletes = remove.iter().map(entry_key).collect();
                Ok(meta.apply_entries(ACLS, puts, deletes).await?)
            }
        }
    }

    /// Whether `principal` connecting from `host` may do `op` on a resource.
    pub(crate) fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        op: Operation,
        resource: Resource,
        name: &str,
    ) -> bool {
        if !self.config.enabled || self.config.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let host = host.to_string();
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        let mut any_for_resource = false;
        let mut allowed = false;
        for b in acls.iter() {
            if b.resource_type != resource as i8 || !pattern_covers(b, name) {
                continue;
            }
            any_for_resource = true;
            let who = (b.principal == principal || b.principal == "User:*")
                && (b.host == host || b.host == "*");
            if !who {
                continue;
            }
            if b.permission == PERMISSION_DENY
                && (b.operation == op as i8 || b.operation == OPERATION_ALL)
            {
                tracing::debug!(%principal, %host, ?op, ?resource, %name, "denied by a DENY ACL");
                return false;
            }
            if b.permission == PERMISSION_ALLOW
                && (b.operation == OPERATION_ALL
                    || granting(op).iter().any(|g| *g as i8 == b.operation))
            {
                allowed = true;
            }
        }
        let result = allowed || (!any_for_resource && self.config.allow_everyone_if_no_acl_found);
        if !result {
            tracing::debug!(%principal, %host, ?op, ?resource, %name, "no ACL allows it");
        }
        result
    }

    /// Whether `principal` may do `op` on some resource of a type: an ALLOW for it exists
    /// (or the type has no ACLs and `allow.everyone.if.no.acl.found` is set).
    pub(crate) fn authorize_any(
        &self,
        principal: &str,
        host: IpAddr,
        op: Operation,
        resource: Resource,
    ) -> bool {
        if !self.config.enabled || self.config.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let host = host.to_string();
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        let of_type: Vec<&AclBinding> = acls
            .iter()
            .filter(|b| b.resource_type == resource as i8)
            .collect();
        if of_type.is_empty() {
            return self.config.allow_everyone_if_no_acl_found;
        }
        of_type.iter().any(|b| {
            b.permission == PERMISSION_ALLOW
                && (b.principal == principal || b.principal == "User:*")
                && (b.host == host || b.host == "*")
                && (b.operation == OPERATION_ALL
                    || granting(op).iter().any(|g| *g as i8 == b.operation))
        })
    }

    /// Adds bindings (ones already present are kept once).
    pub(crate) async fn create(&self, bindings: &[AclBinding]) -> Result<(), SharedWriteError> {
        let new: Vec<AclBinding> = {
            let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
            bindings
                .iter()
                .filter(|b| !acls.contains(b))
                .cloned()
                .collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        self.write(&new, &[]).await?;
        let mut acls = self.acls.write().unwrap_or_else(|p| p.into_inner());
        for b in new {
            if !acls.contains(&b) {
                acls.push(b);
            }
        }
        Ok(())
    }

    /// The bindings a filter matches.
    pub(crate) fn matching(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        acls.iter().filter(|b| filter.matches(b)).cloned().collect()
    }

    /// Removes the bindings each filter matches; returns them per filter.
    pub(crate) async fn delete(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, SharedWriteError> {
        let per_filter: Vec<Vec<AclBinding>> = {
            let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
            filters
                .iter()
                .map(|f| acls.iter().filter(|b| f.matches(b)).cloned().collect())
                .collect()
        };
        let mut removed: Vec<AclBinding> = per_filter.iter().flatten().cloned().collect();
        removed.sort();
        removed.dedup();
        if !removed.is_empty() {
            self.write(&[], &removed).await?;
        }
        self.acls
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|b| !removed.contains(b));
        Ok(per_filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(rt: Resource, name: &str, pattern: i8, who: &str, op: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: rt as i8,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: who.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    fn authorizer(acls: Vec<AclBinding>, allow_if_none: bool) -> (tempfile::TempDir, Authorizer) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sluice_config::BrokerConfig::from_properties([(
            "log.dirs",
            dir.path().to_str().unwrap(),
        )])
        .unwrap();
        let storage = sluice_storage::Storage::open(&cfg).unwrap();
        let a = Authorizer::load(
            AuthorizerConfig {
                enabled: true,
                super_users: vec!["User:root".into()],
                allow_everyone_if_no_acl_found: allow_if_none,
            },
            storage.acls(),
        )
        .unwrap();
        futures::executor::block_on(a.create(&acls)).unwrap();
        (dir, a)
    }

    #[test]
    fn deny_wins_and_describe_is_implied() {
        use Operation::*;
        use Resource::*;
        let (_d, a) = authorizer(
            vec![
                binding(
                    Topic,
                    "orders-",
                    PATTERN_PREFIXED,
                    "User:alice",
                    Write as i8,
                    PERMISSION_ALLOW,
                ),
                binding(
                    Topic,
                    "orders-secret",
                    PATTERN_LITERAL,
                    "User:alice",
                    OPERATION_ALL,
                    PERMISSION_DENY,
                ),
                binding(
                    Group,
                    "*",
                    PATTERN_LITERAL,
                    "User:*",
                    Read as i8,
                    PERMISSION_ALLOW,
                ),
            ],
            false,
        );
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let can = |who: &str, op, rt, name: &str| a.authorize(who, ip, op, rt, name);
        assert!(can("User:alice", Write, Topic, "orders-eu"));
        assert!(can("User:alice", Describe, Topic, "orders-eu"));
        assert!(!can("User:alice", Read, Topic, "orders-eu"));
        assert!(!can("User:alice", Write, Topic, "orders-secret"));
        assert!(!can("User:alice", Describe, Topic, "orders-secret"));
        assert!(!can("User:bob", Write, Topic, "orders-eu"));
        assert!(can("User:bob", Read, Group, "any-group"));
        assert!(!can("User:bob", Delete, Group, "any-group"));
        assert!(!can("User:bob", Describe, Topic, "unlisted"));
        assert!(can("User:root", Delete, Topic, "orders-secret"));
    }

    #[test]
    fn allow_everyone_only_where_no_acl_names_the_resource() {
        use Operation::*;
        use Resource::*;
        let (_d, a) = authorizer(
            vec![binding(
                Topic,
                "locked",
                PATTERN_LITERAL,
                "User:alice",
                Read as i8,
                PERMISSION_ALLOW,
            )],
            true,
        );
        let h: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(a.authorize("User:bob", h, Read, Topic, "open"));
        assert!(!a.authorize("User:bob", h, Read, Topic, "locked"));
        assert!(a.authorize("User:alice", h, Read, Topic, "locked"));
    }

    #[test]
    fn filters_match_and_delete() {
        use Resource::*;
        let (_d, a) = authorizer(
            vec![
                binding(Topic, "a-", PATTERN_PREFIXED, "User:x", 3, PERMISSION_ALLOW),
                binding(Topic, "a-b", PATTERN_LITERAL, "User:y", 3, PERMISSION_ALLOW),
                binding(Group, "g", PATTERN_LITERAL, "User:x", 3, PERMISSION_ALLOW),
            ],
            false,
        );
        let f = |rt: i8, name: Option<&str>, pattern: i8| AclFilter {
            resource_type: rt,
            resource_name: name.map(String::from),
            pattern_type: pattern,
            principal: None,
            host: None,
            operation: OPERATION_ANY,
            permission: PERMISSION_ANY,
        };
        assert_eq!(
            a.matching(&f(Topic as i8, Some("a-b"), PATTERN_MATCH))
                .len(),
            2
        );
        assert_eq!(
            a.matching(&f(Topic as i8, Some("a-b"), PATTERN_LITERAL))
                .len(),
            1
        );
        assert_eq!(a.matching(&f(RESOURCE_ANY, None, PATTERN_ANY)).len(), 3);
        let removed =
            futures::executor::block_on(a.delete(&[f(Topic as i8, None, PATTERN_ANY)])).unwrap();
        assert_eq!(removed[0].len(), 2);
        assert_eq!(a.matching(&f(RESOURCE_ANY, None, PATTERN_ANY)).len(), 1);
    }
}
