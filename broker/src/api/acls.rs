//! CreateAcls, DescribeAcls and DeleteAcls: the authorizer's bindings, checked as Kafka
//! checks them (concrete resource, pattern, operation and permission; `Type:Name`
//! principals; the cluster resource named `kafka-cluster`).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::AclBinding;

use crate::acl::*;
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::session::Session;

answer!(CreateAclsResponse: [results => error_code]);
answer!(DescribeAclsResponse: [error_code]);
answer!(DeleteAclsResponse: [filter_results => error_code], [filter_results => matching_acls => error_code]);

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Why a binding cannot be created, as Kafka words it.
fn invalid_binding(b: &AclBinding) -> Option<String> {
    if !(2..=RESOURCE_MAX).contains(&b.resource_type) {
        return Some(format!("Invalid resource type {}", b.resource_type));
    }
    if b.pattern_type != PATTERN_LITERAL && b.pattern_type != PATTERN_PREFIXED {
        return Some(format!("Invalid pattern type {}", b.pattern_type));
    }
    if !(OPERATION_ALL..=OPERATION_MAX).contains(&b.operation) {
        return Some(format!("Invalid operation {}", b.operation));
    }
    if b.permission != PERMISSION_ALLOW && b.permission != PERMISSION_DENY {
        return Some(format!("Invalid permission type {}", b.permission));
    }
    if b.resource_name.is_empty() {
        return Some("Resource name must not be empty".into());
    }
    if b.resource_type == Resource::Cluster as i8 && b.resource_name != CLUSTER_NAME {
        return Some(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    match b.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => return Some(format!("Invalid principal {:?}", b.principal)),
    }
    if b.host.is_empty() {
        return Some("Host must not be empty".into());
    }
    None
}

/// CreateAcls: needs Alter on the cluster.
pub(crate) async fn create_acls(
    broker: &Broker,
    session: &Session,
    req: CreateAclsRequest,
    _version: i16,
) -> Reply<CreateAclsResponse> {
    let mut r = CreateAclsResponse::default();
    let allowed = session.may_cluster(broker, Operation::Alter);
    let mut valid = Vec::new();
    let mut results: Vec<(i16, Option<String>)> = Vec::new();
    for c in &req.creations {
        let b = AclBinding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        };
        if !allowed {
            results.push((code(ResponseError::ClusterAuthorizationFailed), None));
        } else if let Some(why) = invalid_binding(&b) {
            results.push((code(ResponseError::InvalidRequest), Some(why)));
        } else {
            valid.push(b);
            results.push((NONE, None));
        }
    }
    if let Err(e) = broker.authorizer.create(&valid).await {
        tracing::error!(error = %e, "storing ACLs failed");
        for res in results.iter_mut().filter(|(c, _)| *c == NONE) {
            *res = (e.code(), Some(e.to_string()));
        }
    } else if !valid.is_empty() {
        tracing::info!(principal = %session.principal, acls = ?valid, "ACLs created");
    }
    r.results = results
        .into_iter()
        .map(|(c, m)| {
            let mut x = AclCreationResult::default();
            x.error_code = c;
            x.error_message = m.map(StrBytes::from_string);
            x
        })
        .collect();
    Reply::new(r)
}

fn filter_error(f: &AclFilter) -> Option<String> {
    if f.resource_type < RESOURCE_ANY || f.resource_type > RESOURCE_MAX {
        return Some(format!("Invalid resource type filter {}", f.resource_type));
    }
    if !(PATTERN_ANY..=PATTERN_PREFIXED).contains(&f.pattern_type) {
        return Some(format!("Invalid pattern type filter {}", f.pattern_type));
    }
    if f.operation < OPERATION_ANY || f.operation > OPERATION_MAX {
        return Some(format!("Invalid operation filter {}", f.operation));
    }
    if !(PERMISSION_ANY..=PERMISSION_ALLOW).contains(&f.permission) {
        return Some(format!("Invalid permission filter {}", f.permission));
    }
    None
}

/// DescribeAcls: needs Describe on the cluster; bindings grouped by resource pattern.
pub(crate) async fn describe_acls(
    broker: &Broker,
    session: &Session,
    req: DescribeAclsRequest,
    _version: i16,
) -> Reply<DescribeAclsResponse> {
    let mut r = DescribeAclsResponse::default().with_error_message(None);
    if !session.may_cluster(broker, Operation::Describe) {
        r.error_code = code(ResponseError::ClusterAuthorizationFailed);
        return Reply::new(r);
    }
    let filter = AclFilter {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.map(|s| s.to_string()),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.map(|s| s.to_string()),
        host: req.host_filter.map(|s| s.to_string()),
        operation: req.operation,
        permission: req.permission_type,
    };
    if let Some(why) = filter_error(&filter) {
        r.error_code = code(ResponseError::InvalidRequest);
        r.error_message = Some(StrBytes::from_string(why));
        return Reply::new(r);
    }
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclBinding>> = BTreeMap::new();
    for b in broker.authorizer.matching(&filter) {
        by_resource
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(b);
    }
    r.error_code = NONE;
    r.resources = by_resource
        .into_iter()
        .map(|((rt, name, pattern), acls)| {
            let mut res = DescribeAclsResource::default();
            res.resource_type = rt;
            res.resource_name = str_bytes(&name);
            res.pattern_type = pattern;
            res.acls = acls
                .iter()
                .map(|b| {
                    let mut d = AclDescription::default();
                    d.principal = str_bytes(&b.principal);
                    d.host = str_bytes(&b.host);
                    d.operation = b.operation;
                    d.permission_type = b.permission;
                    d
                })
                .collect();
            res
        })
        .collect();
    Reply::new(r)
}

/// DeleteAcls: needs Alter on the cluster; each filter's result lists what it removed.
pub(crate) async fn delete_acls(
    broker: &Broker,
    session: &Session,
    req: DeleteAclsRequest,
    _version: i16,
) -> Reply<DeleteAclsResponse> {
    let mut r = DeleteAclsResponse::default();
    let filters: Vec<AclFilter> = req
        .filters
        .iter()
        .map(|f| AclFilter {
            resource_type: f.resource_type_filter,
            resource_name: f.resource_name_filter.as_ref().map(|s| s.to_string()),
            pattern_type: f.pattern_type_filter,
            principal: f.principal_filter.as_ref().map(|s| s.to_string()),
            host: f.host_filter.as_ref().map(|s| s.to_string()),
            operation: f.operation,
            permission: f.permission_type,
        })
        .collect();
    let failed = |c: i16, m: Option<String>| {
        let mut x = DeleteAclsFilterResult::default();
        x.error_code = c;
        x.error_message = m.map(StrBytes::from_string);
        x
    };
    if !session.may_cluster(broker, Operation::Alter) {
        r.filter_results = filters
            .iter()
            .map(|_| failed(code(ResponseError::ClusterAuthorizationFailed), None))
            .collect();
        return Reply::new(r);
    }
    let errors: Vec<Option<String>> = filters.iter().map(filter_error).collect();
    let valid: Vec<AclFilter> = filters
        .iter()
        .zip(&errors)
        .filter(|(_, e)| e.is_none())
        .map(|(f, _)| f.clone())
        .collect();
    let mut removed = match broker.authorizer.delete(&valid).await {
        Ok(removed) => removed.into_iter(),
        Err(e) => {
            tracing::error!(error = %e, "deleting ACLs failed");
            r.filter_results = filters
                .iter()
                .map(|_| failed(e.code(), Some(e.to_string())))
                .collect();
            return Reply::new(r);
        }
    };
    for error in errors {
        if let Some(why) = error {
            r.filter_results
                .push(failed(code(ResponseError::InvalidRequest), Some(why)));
            continue;
        }
        let bindings = removed.next().unwrap_or_default();
        if !bindings.is_empty() {
            tracing::info!(principal = %session.principal, acls = ?bindings, "ACLs deleted");
        }
        let mut res = failed(NONE, None);
        res.matching_acls = bindings
            .iter()
            .map(|b| {
                let mut m = DeleteAclsMatchingAcl::default();
                m.error_code = NONE;
                m.error_message = None;
                m.resource_type = b.resource_type;
                m.resource_name = str_bytes(&b.resource_name);
                m.pattern_type = b.pattern_type;
                m.principal = str_bytes(&b.principal);
                m.host = str_bytes(&b.host);
                m.operation = b.operation;
                m.permission_type = b.permission;
                m
            })
            .collect();
        r.filter_results.push(res);
    }
    Reply::new(r)
}
