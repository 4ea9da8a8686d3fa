//! Who may call the registry: HTTP basic auth checked against the broker's SASL/SCRAM
//! users, and, with the authorizer on, a subject's access following its topic's ACLs.
//!
//! The rule: a subject `<topic>-key` or `<topic>-value` is read with DESCRIBE on the topic
//! (which READ and WRITE imply) and changed with WRITE on it; any other subject (a record
//! name strategy's) is read with DESCRIBE and changed with ALTER on the cluster, as is the
//! global compatibility level. Schemas by id, the subject list and the global settings are
//! readable by every authenticated principal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sluice_config::RegistryAuthentication;
use sluice_protocol::scram::ScramHash;
use subtle::ConstantTimeEq;

use crate::acl::{Authorizer, Operation, Resource, CLUSTER_NAME};
use crate::scram_store::ScramStore;

/// A password already checked: the user, the mechanism and the password's SHA-256.
type CheckedPassword = (String, &'static str, Vec<u8>);

/// The principal of a caller when authentication is off.
const ANONYMOUS: &str = "User:ANONYMOUS";

/// Checks callers of the registry.
pub(crate) struct Access {
    method: RegistryAuthentication,
    scram: Arc<ScramStore>,
    authorizer: Arc<Authorizer>,
    /// Passwords already checked, by user, mechanism and the password's SHA-256, with the
    /// stored key they matched: PBKDF2 runs once per password, not once per request, and a
    /// changed credential no longer matches.
    verified: Mutex<HashMap<CheckedPassword, Vec<u8>>>,
}

/// The most passwords [`Access`] remembers; past it the memory starts over.
const MAX_VERIFIED: usize = 10_000;

impl Access {
    /// Access as `method` says, with the broker's users and ACLs.
    pub(crate) fn new(
        method: RegistryAuthentication,
        scram: Arc<ScramStore>,
        authorizer: Arc<Authorizer>,
    ) -> Self {
        Access {
            method,
            scram,
            authorizer,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The caller's principal from its `Authorization` header; `None` when it does not
    /// prove who it is.
    pub(crate) fn authenticate(&self, authorization: Option<&[u8]>) -> Option<String> {
        if self.method == RegistryAuthentication::None {
            return Some(ANONYMOUS.to_string());
        }
        let header = std::str::from_utf8(authorization?).ok()?;
        let (scheme, token) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = BASE64.decode(token.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        self.password_matches(user, password)
            .then(|| format!("User:{user}"))
    }

    fn password_matches(&self, user: &str, password: &str) -> bool {
        for hash in [ScramHash::Sha512, ScramHash::Sha256] {
            let mechanism = hash.mechanism();
            let credential = match self.scram.get(user, mechanism) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(user, error = %e, "reading a SCRAM credential failed");
                    return false;
                }
            };
            let cache_key = (
                user.to_string(),
                mechanism,
                ScramHash::Sha256.hash(password.as_bytes()),
            );
            let remembered = self
                .verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&cache_key)
                .is_some_and(|k| bool::from(k.ct_eq(&credential.stored_key)));
            if remembered {
                return true;
            }
            let Ok(iterations) = u32::try_from(credential.iterations) else {
                continue;
            };
            let salted = hash.salted_password(password.as_bytes(), &credential.salt, iterations);
            let stored = hash.stored_key(&hash.client_key(&salted));
            if bool::from(stored.ct_eq(&credential.stored_key)) {
                let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                if verified.len() >= MAX_VERIFIED {
                    verified.clear();
                }
                verified.insert(cache_key, stored);
                return true;
            }
        }
        false
    }

    /// Whether `principal` may make this request; the error is Confluent's message for
    /// its 40301 answer.
    pub(crate) fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        method: &str,
        path: &[String],
    ) -> Result<(), String> {
        let Some((subject, change)) = subject_of(method, path) else {
            return match (method, path.first().map(String::as_str), path.len()) {
                // The global compatibility level.
                ("PUT" | "DELETE", Some("config" | "mode"), 1) => self.allow(
                    principal,
                    host,
                    Operation::Alter,
                    Resource::Cluster,
                    CLUSTER_NAME,
                ),
                _ => Ok(()),
            };
        };
        let op = if change {
            Operation::Write
        } else {
            Operation::Describe
        };
        match topic_of(subject) {
            Some(topic) => self.allow(principal, host, op, Resource::Topic, topic),
            None => {
                let op = if change { Operation::Alter } else { op };
                self.allow(principal, host, op, Resource::Cluster, CLUSTER_NAME)
            }
        }
    }

    /// Whether `principal` may see `subject` in a list.
    pub(crate) fn may_describe(&self, principal: &str, host: IpAddr, subject: &str) -> bool {
        self.authorize(principal, host, "GET", &["subjects".into(), subject.into()])
            .is_ok()
    }

    fn allow(
        &self,
        principal: &str,
        host: IpAddr,
        op: Operation,
        resource: Resource,
        name: &str,
    ) -> Result<(), String> {
        if self
            .authorizer
            .authorize(principal, host, op, resource, name)
        {
            Ok(())
        } else {
            Err(format!(
                "User {principal} is denied operation {op:?} on {resource:?}: {name}"
            ))
        }
    }
}

/// The subject a request names, and whether it changes it.
fn subject_of<'a>(method: &str, path: &'a [String]) -> Option<(&'a str, bool)> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    let subject = match parts.as_slice() {
        ["subjects", s, ..] | ["config", s] | ["mode", s] => *s,
        ["compatibility", "subjects", s, ..] => *s,
        _ => return None,
    };
    let change = match (method, parts.as_slice()) {
        // A lookup and a compatibility check read.
        ("POST", ["subjects", _]) | ("POST", ["compatibility", ..]) => false,
        ("GET", _) => false,
        _ => true,
    };
    Some((subject, change))
}

/// The topic of a TopicNameStrategy subject.
fn topic_of(subject: &str) -> Option<&str> {
    subject
        .strip_suffix("-value")
        .or_else(|| subject.strip_suffix("-key"))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn subjects_map_to_their_topic_and_the_change_they_make() {
        assert_eq!(
            subject_of("POST", &path("/subjects/orders-value/versions")),
            Some(("orders-value", true))
        );
        assert_eq!(
            subject_of("POST", &path("/subjects/orders-value")),
            Some(("orders-value", false))
        );
        assert_eq!(
            subject_of(
                "POST",
                &path("/compatibility/subjects/o-key/versions/latest")
            ),
            Some(("o-key", false))
        );
        assert_eq!(
            subject_of("DELETE", &path("/subjects/o-key/versions/1")),
            Some(("o-key", true))
        );
        assert_eq!(
            subject_of("PUT", &path("/config/o-key")),
            Some(("o-key", true))
        );
        assert_eq!(subject_of("GET", &path("/schemas/ids/1")), None);
        assert_eq!(topic_of("orders-value"), Some("orders"));
        assert_eq!(topic_of("a-key-value"), Some("a-key"));
        assert_eq!(topic_of("com.acme.Order"), None);
        assert_eq!(topic_of("-value"), None);
    }
}
