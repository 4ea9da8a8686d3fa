//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): SCRAM users are
//! kept as salt, iterations, stored key and server key; the salted password a client
//! sends is turned into those and dropped.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_storage::ScramCredentialInfo;

use crate::acl::Operation;
use crate::api::reply::{answer, Reply};
use crate::broker::Broker;
use crate::error::{code, storage_error_code, NONE};
use crate::sasl::scram::{self, ScramHash, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::session::Session;

answer!(DescribeUserScramCredentialsResponse: [error_code], [results => error_code]);
answer!(AlterUserScramCredentialsResponse: [results => error_code]);

/// The wire number of a SCRAM mechanism (1 is SHA-256, 2 is SHA-512).
fn hash_of(mechanism: i8) -> Option<ScramHash> {
    match mechanism {
        1 => Some(ScramHash::Sha256),
        2 => Some(ScramHash::Sha512),
        _ => None,
    }
}

fn mechanism_number(name: &str) -> i8 {
    match name {
        "SCRAM-SHA-256" => 1,
        "SCRAM-SHA-512" => 2,
        _ => 0,
    }
}

type UserError = (i16, String);

/// The checks deletions and upsertions share: a known mechanism (its hash) and a name.
fn checked(user: &str, mechanism: i8) -> Result<ScramHash, (ResponseError, &'static str)> {
    let hash = hash_of(mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism",
    ))?;
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    Ok(hash)
}

/// DescribeUserScramCredentials: every user when none is named.
pub(crate) async fn describe(
    broker: &Broker,
    session: &Session,
    req: DescribeUserScramCredentialsRequest,
    _version: i16,
) -> Reply<DescribeUserScramCredentialsResponse> {
    let mut r = DescribeUserScramCredentialsResponse::default().with_error_message(None);
    if !session.may_cluster(broker, Operation::Describe) {
        r.error_code = code(ResponseError::ClusterAuthorizationFailed);
        return Reply::new(r);
    }
    let stored = match broker.scram.list() {
        Ok(s) => s,
        Err(e) => {
            r.error_code = storage_error_code(&e);
            r.error_message = Some(StrBytes::from_string(e.to_string()));
            return Reply::new(r);
        }
    };
    let mut by_user: BTreeMap<String, Vec<ScramCredentialInfo>> = BTreeMap::new();
    for info in stored {
        by_user.entry(info.user.clone()).or_default().push(info);
    }
    let result = |user: &str, infos: &[ScramCredentialInfo], error: Option<UserError>| {
        let mut res = DescribeUserScramCredentialsResult::default().with_error_message(None);
        res.user = StrBytes::from_string(user.to_string());
        match error {
            Some((c, m)) => {
                res.error_code = c;
                res.error_message = Some(StrBytes::from_string(m));
            }
            None => {
                res.error_code = NONE;
                res.credential_infos = infos
                    .iter()
                    .map(|i| {
                        let mut c = CredentialInfo::default();
                        c.mechanism = mechanism_number(&i.mechanism);
                        c.iterations = i.iterations;
                        c
                    })
                    .collect();
            }
        }
        res
    };
    r.error_code = NONE;
    match req.users.filter(|u| !u.is_empty()) {
        None => {
            r.results = by_user
                .iter()
                .map(|(user, infos)| result(user, infos, None))
                .collect();
        }
        Some(users) => {
            let repeated = super::repeated_names(users.iter().map(|u| u.name.as_str()));
            let mut answered = std::collections::HashSet::new();
            for u in &users {
                let name = u.name.as_str();
                if !answered.insert(name) {
                    continue;
                }
                let error = if repeated.contains(name) {
                    Some((
                        code(ResponseError::DuplicateResource),
                        "Cannot describe SCRAM credentials for the same user twice in a single request".to_string(),
                    ))
                } else if !by_user.contains_key(name) {
                    Some((
                        code(ResponseError::ResourceNotFound),
                        "Attempt to describe a user credential that does not exist".to_string(),
                    ))
                } else {
                    None
                };
                let infos = by_user.get(name).map(Vec::as_slice).unwrap_or_default();
                r.results.push(result(name, infos, error));
            }
        }
    }
    Reply::new(r)
}

/// AlterUserScramCredentials: each user's changes apply together or not at all.
pub(crate) async fn alter(
    broker: &Broker,
    session: &Session,
    req: AlterUserScramCredentialsRequest,
    _version: i16,
) -> Reply<AlterUserScramCredentialsResponse> {
    let credentials = &broker.scram;
    let allowed = session.may_cluster(broker, Operation::Alter);
    // Users in request order, each with its first error.
    let mut order: Vec<String> = Vec::new();
    let mut errors: HashMap<String, UserError> = HashMap::new();
    let mut pairs: HashMap<(String, i8), usize> = HashMap::new();
    let mut note = |user: &str, mechanism: i8| {
        if !order.iter().any(|u| u == user) {
            order.push(user.to_string());
        }
        *pairs.entry((user.to_string(), mechanism)).or_default() += 1;
    };
    for d in &req.deletions {
        note(d.name.as_str(), d.mechanism);
    }
    for u in &req.upsertions {
        note(u.name.as_str(), u.mechanism);
    }
    let mut fail = |user: &str, c: ResponseError, m: &str| {
        errors
            .entry(user.to_string())
            .or_insert_with(|| (code(c), m.to_string()));
    };
    if !allowed {
        for user in &order {
            fail(
                user,
                ResponseError::ClusterAuthorizationFailed,
                "not authorized to alter SCRAM credentials",
            );
        }
    }
    for ((user, _), n) in &pairs {
        if *n > 1 {
            fail(
                user,
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            );
        }
    }
    let mut deletions = Vec::new();
    for d in &req.deletions {
        let user = d.name.as_str();
        let hash = match checked(user, d.mechanism) {
            Ok(hash) => hash,
            Err((code, message)) => {
                fail(user, code, message);
                continue;
            }
        };
        match credentials.get(user, hash.mechanism()) {
            Ok(Some(_)) => deletions.push((user.to_string(), hash.mechanism().to_string())),
            Ok(None) => fail(
                user,
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist",
            ),
            Err(e) => fail(user, ResponseError::KafkaStorageError, &e.to_string()),
        }
    }
    let mut upserts = Vec::new();
    for u in &req.upsertions {
        let user = u.name.as_str();
        let hash = match checked(user, u.mechanism) {
            Ok(hash) => hash,
            Err((code, message)) => {
                fail(user, code, message);
                continue;
            }
        };
        if u.iterations < MIN_ITERATIONS {
            fail(
                user,
                ResponseError::UnacceptableCredential,
                "Too few iterations",
            );
        } else if u.iterations > MAX_ITERATIONS {
            fail(
                user,
                ResponseError::UnacceptableCredential,
                "Too many iterations",
            );
        } else if u.salt.is_empty() || u.salted_password.is_empty() {
            fail(
                user,
                ResponseError::UnacceptableCredential,
                "Salt and salted password must not be empty",
            );
        } else {
            let credential = scram::credential(hash, &u.salt, u.iterations, &u.salted_password);
            upserts.push((user.to_string(), hash.mechanism().to_string(), credential));
        }
    }
    deletions.retain(|(user, _)| !errors.contains_key(user));
    upserts.retain(|(user, _, _)| !errors.contains_key(user));
    if let Err(e) = credentials.apply(&deletions, &upserts).await {
        tracing::error!(error = %e, "storing SCRAM credentials failed");
        for user in &order {
            errors
                .entry(user.clone())
                .or_insert_with(|| (e.code(), e.to_string()));
        }
    } else {
        for (user, mechanism) in &deletions {
            tracing::info!(%user, %mechanism, "SCRAM credential deleted");
        }
        for (user, mechanism, c) in &upserts {
            tracing::info!(%user, %mechanism, iterations = c.iterations, "SCRAM credential set");
        }
    }
    let mut r = AlterUserScramCredentialsResponse::default();
    r.results = order
        .iter()
        .map(|user| {
            let mut res = AlterUserScramCredentialsResult::default().with_error_message(None);
            res.user = StrBytes::from_string(user.clone());
            match errors.get(user) {
                Some((c, m)) => {
                    res.error_code = *c;
                    res.error_message = Some(StrBytes::from_string(m.clone()));
                }
                None => res.error_code = NONE,
            }
            res
        })
        .collect();
    Reply::new(r)
}
