//! DescribeClientQuotas and AlterClientQuotas (KIP-546): quota configs per user, client
//! id, both, or IP address, with `None` names standing for the type's default.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest,
    AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::{QuotaEntity, QuotaValues};

use crate::acl::Operation;
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, NONE};
use crate::quota::*;
use crate::session::Session;

answer!(DescribeClientQuotasResponse: [error_code]);
answer!(AlterClientQuotasResponse: [entries => error_code]);

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// Keys an entity may carry, and whether their values are whole numbers.
fn key_allowed(entity: &QuotaEntity, key: &str) -> Option<bool> {
    let is_ip = entity.iter().any(|(t, _)| t == IP);
    match key {
        CONNECTION_CREATION_RATE if is_ip => Some(true),
        PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE if !is_ip => Some(true),
        REQUEST_PERCENTAGE | CONTROLLER_MUTATION_RATE if !is_ip => Some(false),
        _ => None,
    }
}

/// The entity in canonical order (user before client id), or why it is not valid.
fn canonical(mut entity: QuotaEntity) -> Result<QuotaEntity, String> {
    let rank = |t: &str| match t {
        USER => Some(0),
        CLIENT_ID => Some(1),
        IP => Some(2),
        _ => None,
    };
    for (t, _) in &entity {
        if rank(t).is_none() {
            return Err(format!("Unknown entity type {t}"));
        }
    }
    entity.sort_by_key(|(t, _)| rank(t));
    let types: Vec<&str> = entity.iter().map(|(t, _)| t.as_str()).collect();
    match types.as_slice() {
        [USER] | [CLIENT_ID] | [USER, CLIENT_ID] => Ok(entity),
        [IP] => {
            if let (_, Some(name)) = &entity[0] {
                if name.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("{name} is not a valid IP address"));
                }
            }
            Ok(entity)
        }
        [] => Err("Invalid empty client quota entity".into()),
        _ => Err(format!("Invalid quota entity combination {types:?}")),
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// AlterClientQuotas: needs AlterConfigs on the cluster; each entry is applied whole or
/// refused whole.
pub(crate) async fn alter(
    broker: &Broker,
    session: &Session,
    req: AlterClientQuotasRequest,
    _version: i16,
) -> Reply<AlterClientQuotasResponse> {
    let mut res = AlterClientQuotasResponse::default();
    let allowed = session.may_cluster(broker, Operation::AlterConfigs);
    let current: BTreeMap<QuotaEntity, BTreeMap<String, f64>> =
        broker.quotas.all().into_iter().collect();
    for entry in req.entries {
        let entity: QuotaEntity = entry
            .entity
            .iter()
            .map(|e| {
                (
                    e.entity_type.to_string(),
                    e.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        let mut result = alter_client_quotas_response::EntryData::default();
        result.entity = entry
            .entity
            .iter()
            .map(|e| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(e.entity_type.clone())
                    .with_entity_name(e.entity_name.clone())
            })
            .collect();
        // The entity and values to store, or None for a validation only.
        let checked: Result<Option<(QuotaEntity, QuotaValues)>, (ResponseError, String)> = (|| {
            if !allowed {
                return Err((
                    ResponseError::ClusterAuthorizationFailed,
                    "not authorized to alter client quotas".into(),
                ));
            }
            let entity = canonical(entity).map_err(|m| (ResponseError::InvalidRequest, m))?;
            let mut values = current.get(&entity).cloned().unwrap_or_default();
            for op in &entry.ops {
                let key = op.key.as_str();
                let whole = key_allowed(&entity, key).ok_or_else(|| {
                    (
                        ResponseError::InvalidRequest,
                        format!("Invalid configuration key {key} for this entity"),
                    )
                })?;
                if op.remove {
                    values.remove(key);
                    continue;
                }
                if !(op.value.is_finite() && op.value > 0.0) {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("Illegal value {} for {key}: it must be positive", op.value),
                    ));
                }
                if whole && op.value.fract() != 0.0 {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!(
                            "Illegal value {} for {key}: it must be a whole number",
                            op.value
                        ),
                    ));
                }
                values.insert(key.to_string(), op.value);
            }
            if req.validate_only {
                return Ok(None);
            }
            Ok(Some((entity, values)))
        })(
        );
        let outcome = match checked {
            Ok(Some((entity, values))) => {
                match broker.quotas.set(entity.clone(), values.clone()).await {
                    Ok(()) => {
                        tracing::info!(principal = %session.principal, ?entity, ?values, "client quotas set");
                        Ok(())
                    }
                    Err(e) => Err((
                        ResponseError::try_from_code(e.code())
                            .unwrap_or(ResponseError::KafkaStorageError),
                        e.to_string(),
                    )),
                }
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                result.error_code = NONE;
                result.error_message = None;
            }
            Err((e, m)) => {
                result.error_code = code(e);
                result.error_message = Some(StrBytes::from_string(m));
            }
        }
        res.entries.push(result);
    }
    Reply::new(res)
}

/// DescribeClientQuotas: needs DescribeConfigs on the cluster.
pub(crate) async fn describe(
    broker: &Broker,
    session: &Session,
    req: DescribeClientQuotasRequest,
    _version: i16,
) -> Reply<DescribeClientQuotasResponse> {
    let mut res = DescribeClientQuotasResponse::default();
    let fail = |mut res: DescribeClientQuotasResponse, e: ResponseError, m: String| {
        res.error_code = code(e);
        res.error_message = Some(StrBytes::from_string(m));
        res.entries = None;
        Reply::new(res)
    };
    if !session.may_cluster(broker, Operation::DescribeConfigs) {
        return fail(
            res,
            ResponseError::ClusterAuthorizationFailed,
            "not authorized to describe client quotas".into(),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for c in &req.components {
        if !seen.insert(c.entity_type.as_str()) {
            return fail(
                res,
                ResponseError::InvalidRequest,
                format!(
                    "Duplicate filter component entity type {}",
                    c.entity_type.as_str()
                ),
            );
        }
        if !(MATCH_EXACT..=MATCH_SPECIFIED).contains(&c.match_type) {
            return fail(
                res,
                ResponseError::InvalidRequest,
                format!("Unknown match type {}", c.match_type),
            );
        }
        if c.match_type == MATCH_EXACT && c._match.is_none() {
            return fail(
                res,
                ResponseError::InvalidRequest,
                "An exact match needs a name".into(),
            );
        }
    }
    let matches = |entity: &QuotaEntity| {
        if req.strict && entity.len() != req.components.len() {
            return false;
        }
        req.components.iter().all(|c| {
            entity
                .iter()
                .find(|(t, _)| t.as_str() == c.entity_type.as_str())
                .is_some_and(|(_, name)| match c.match_type {
                    MATCH_EXACT => name.as_deref() == c._match.as_ref().map(|m| m.as_str()),
                    MATCH_DEFAULT => name.is_none(),
                    _ => name.is_some(),
                })
        })
    };
    res.error_code = NONE;
    res.error_message = None;
    res.entries = Some(
        broker
            .quotas
            .all()
            .into_iter()
            .filter(|(entity, _)| matches(entity))
            .map(|(entity, values)| {
                describe_client_quotas_response::EntryData::default()
                    .with_entity(
                        entity
                            .iter()
                            .map(|(t, n)| {
                                describe_client_quotas_response::EntityData::default()
                                    .with_entity_type(str_bytes(t))
                                    .with_entity_name(n.as_deref().map(str_bytes))
                            })
                            .collect(),
                    )
                    .with_values(
                        values
                            .iter()
                            .map(|(k, v)| {
                                describe_client_quotas_response::ValueData::default()
                                    .with_key(str_bytes(k))
                                    .with_value(*v)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    Reply::new(res)
}
