//! SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners: the per-listener
//! mechanisms and their user sources, and each connection's session — handshake,
//! exchange, the authenticated principal, and its expiry for re-authentication (KIP-368).

mod oauthbearer;
mod plain;
pub(crate) mod scram;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;
use sluice_config::{SaslConfig, SaslMechanism};

use crate::reload::Reloading;
use crate::scram_store::ScramStore;
use scram::{ScramHash, ScramServer};

/// What one step of an exchange comes to.
pub(crate) enum Step {
    /// Send this to the client and wait for its next message.
    Challenge(Vec<u8>),
    /// Authenticated: send this last message; the principal is the client's.
    Success {
        response: Vec<u8>,
        principal: String,
        /// When the credential stops being valid (an OAUTHBEARER token's `exp`), in ms.
        credential_expiry_ms: Option<i64>,
    },
    /// Refused, with the message for the client (never a secret).
    Failure {
        user: Option<String>,
        message: String,
    },
}

impl Step {
    fn failure(user: Option<&str>, message: impl Into<String>) -> Step {
        Step::Failure {
            user: user.map(String::from),
            message: message.into(),
        }
    }
}

/// The SASL side of one listener.
pub(crate) struct SaslListener {
    config: SaslConfig,
    plain_users: Option<Reloading<BTreeMap<String, String>>>,
    /// The issuer's keys; `None` for PLAIN-only listeners and unsecured OAUTHBEARER.
    jwks: Option<Reloading<JwkSet>>,
    credentials: Arc<ScramStore>,
}

impl SaslListener {
    /// Loads the listener's user files and keys; an error names the file at fault.
    pub(crate) fn new(
        listener: &str,
        config: SaslConfig,
        credentials: Arc<ScramStore>,
    ) -> anyhow::Result<Self> {
        let plain_users = if config.mechanisms.contains(&SaslMechanism::Plain) {
            let inline = config.plain_users.clone();
            let file = config.plain_users_file.clone();
            let load = move || -> anyhow::Result<BTreeMap<String, String>> {
                let mut users = inline.clone();
                if let Some(f) = &file {
                    let text = std::fs::read_to_string(f).with_context(|| {
                        format!("reading plain.sasl.users.file {}", f.display())
                    })?;
                    users.extend(sluice_config::parse_plain_users(&text));
                }
                Ok(users)
            };
            let paths = config.plain_users_file.iter().cloned().collect();
            Some(
                Reloading::new(format!("listener {listener} PLAIN users"), paths, load)
                    .with_context(|| format!("listener {listener}"))?,
            )
        } else {
            None
        };
        let jwks = match config
            .oauthbearer
            .as_ref()
            .and_then(|o| o.jwks_file.clone())
        {
            Some(path) => Some(
                Reloading::new(
                    format!("listener {listener} OAUTHBEARER keys"),
                    vec![path.clone()],
                    move || oauthbearer::load_jwks(&path),
                )
                .with_context(|| {
                    format!("listener {listener}: sasl.oauthbearer.jwks.endpoint.url")
                })?,
            ),
            None => {
                if config.oauthbearer.is_some() {
                    tracing::warn!(
                        listener,
                        "OAUTHBEARER takes unsigned tokens: for development only"
                    );
                }
                None
            }
        };
        Ok(SaslListener {
            config,
            plain_users,
            jwks,
            credentials,
        })
    }

    /// The enabled mechanisms' names, as SaslHandshake lists them.
    pub(crate) fn mechanism_names(&self) -> Vec<&'static str> {
        self.config.mechanisms.iter().map(|m| m.name()).collect()
    }
}

/// An exchange in progress.
enum Exchange {
    /// PLAIN and OAUTHBEARER: one client message.
    Single,
    Scram(Box<ScramServer>),
}

enum State {
    /// No exchange in progress.
    Idle,
    /// Between SaslHandshake and the exchange's last message; `raw` after SaslHandshake
    /// v0, whose exchange is bare size-prefixed SASL tokens instead of SaslAuthenticate.
    Exchanging {
        mechanism: SaslMechanism,
        exchange: Exchange,
        raw: bool,
    },
}

struct Authenticated {
    principal: String,
    mechanism: SaslMechanism,
    /// When the session ends unless the client re-authenticates.
    expires: Option<Instant>,
}

/// Why a SaslHandshake or SaslAuthenticate is refused; the connection then closes.
pub(crate) struct Refusal {
    pub(crate) error: ResponseError,
    pub(crate) message: String,
    /// The user named by the client, for the log line.
    pub(crate) user: Option<String>,
}

/// An accepted SaslAuthenticate step.
pub(crate) struct Accepted {
    pub(crate) response: Vec<u8>,
    /// Set when this step completed authentication.
    pub(crate) completed: Option<Completed>,
}

/// A completed (re-)authentication.
pub(crate) struct Completed {
    pub(crate) principal: String,
    pub(crate) reauthenticated: bool,
    /// KIP-368 session lifetime; 0 when the session does not expire.
    pub(crate) session_lifetime_ms: i64,
}

/// The SASL state of one connection.
pub(crate) struct SaslSession {
    listener: Arc<SaslListener>,
    state: State,
    authenticated: Option<Authenticated>,
}

impl SaslSession {
    /// A connection that has not authenticated yet.
    pub(crate) fn new(listener: Arc<SaslListener>) -> Self {
        SaslSession {
            listener,
            state: State::Idle,
            authenticated: None,
        }
    }

    /// The enabled mechanisms' names.
    pub(crate) fn mechanism_names(&self) -> Vec<&'static str> {
        self.listener.mechanism_names()
    }

    /// Whether `api` may be served now; `Err` says why the connection must close.
    pub(crate) fn admit(&self, api: ApiKey) -> Result<(), String> {
        match api {
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => Ok(()),
            _ => {
                if matches!(self.state, State::Exchanging { .. }) {
                    return Err(format!("{api:?} request during SASL authentication"));
                }
                match &self.authenticated {
                    None => Err(format!("{api:?} request before SASL authentication")),
                    Some(a) if a.expires.is_some_and(|e| Instant::now() >= e) => Err(format!(
                        "{api:?} request after the SASL session expired without re-authentication"
                    )),
                    Some(_) => Ok(()),
                }
            }
        }
    }

    /// Whether the next frame is a bare SASL token (the exchange after SaslHandshake v0).
    pub(crate) fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::Exchanging { raw: true, .. })
    }

    /// SaslHandshake: picks the mechanism of the exchange that follows; `raw` for v0.
    pub(crate) fn handshake(&mut self, mechanism: &str, raw: bool) -> Result<(), Refusal> {
        if matches!(self.state, State::Exchanging { .. }) {
            return Err(Refusal {
                error: ResponseError::IllegalSaslState,
                message: "SaslHandshake during an exchange".into(),
                user: None,
            });
        }
        let m = SaslMechanism::from_name(mechanism)
            .filter(|m| self.listener.config.mechanisms.contains(m))
            .ok_or_else(|| Refusal {
                error: ResponseError::UnsupportedSaslMechanism,
                message: format!("Unsupported SASL mechanism {mechanism}"),
                user: None,
            })?;
        if let Some(a) = &self.authenticated {
            if a.mechanism != m {
                return Err(Refusal {
                    error: ResponseError::IllegalSaslState,
                    message: format!(
                        "Re-authentication requested with SASL mechanism {} but authenticated originally with {}",
                        m.name(),
                        a.mechanism.name()
                    ),
                    user: None,
                });
            }
        }
        let exchange = match ScramHash::from_mechanism(m.name()) {
            Some(hash) => Exchange::Scram(Box::new(ScramServer::new(hash))),
            None => Exchange::Single,
        };
        self.state = State::Exchanging {
            mechanism: m,
            exchange,
            raw,
        };
        Ok(())
    }

    /// SaslAuthenticate: the client's next message of the exchange.
    pub(crate) fn authenticate(&mut self, message: &[u8]) -> Result<Accepted, Refusal> {
        let State::Exchanging {
            mechanism,
            exchange,
            ..
        } = &mut self.state
        else {
            return Err(Refusal {
                error: ResponseError::IllegalSaslState,
                message: "SaslAuthenticate without a SaslHandshake".into(),
                user: None,
            });
        };
        let mechanism = *mechanism;
        let l = &self.listener;
        let step = match exchange {
            Exchange::Scram(s) => s.step(&l.credentials, message),
            Exchange::Single => match mechanism {
                SaslMechanism::Plain => match &l.plain_users {
                    Some(users) => plain::authenticate(&users.current(), message),
                    None => Step::failure(None, "PLAIN is not enabled"),
                },
                SaslMechanism::OAuthBearer => match (&l.config.oauthbearer, &l.jwks) {
                    (Some(config), Some(jwks)) => {
                        oauthbearer::authenticate(config, Some(&jwks.current()), message)
                    }
                    (Some(config), None) => oauthbearer::authenticate(config, None, message),
                    _ => Step::failure(None, "OAUTHBEARER is not enabled"),
                },
                SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                    Step::failure(None, "SCRAM exchange missing")
                }
            },
        };
        match step {
            Step::Challenge(response) => Ok(Accepted {
                response,
                completed: None,
            }),
            Step::Failure { user, message } => {
                self.state = State::Idle;
                Err(Refusal {
                    error: ResponseError::SaslAuthenticationFailed,
                    message,
                    user,
                })
            }
            Step::Success {
                response,
                principal,
                credential_expiry_ms,
            } => {
                self.state = State::Idle;
                let reauthenticated = self.authenticated.is_some();
                if let Some(a) = &self.authenticated {
                    if a.principal != principal {
                        return Err(Refusal {
                            error: ResponseError::SaslAuthenticationFailed,
                            message: format!(
                                "Cannot change principals during re-authentication from {}: {principal}",
                                a.principal
                            ),
                            user: None,
                        });
                    }
                }
                let now_ms = sluice_storage::now_ms();
                let lifetimes = [
                    l.config.max_reauth.map(|d| d.as_millis() as i64),
                    credential_expiry_ms.map(|e| e - now_ms),
                ];
                let lifetime = lifetimes.into_iter().flatten().min();
                if lifetime.is_some_and(|ms| ms <= 0) {
                    return Err(Refusal {
                        error: ResponseError::SaslAuthenticationFailed,
                        message: "Authentication failed: the credential has expired".into(),
                        user: None,
                    });
                }
                self.authenticated = Some(Authenticated {
                    principal: principal.clone(),
                    mechanism,
                    expires: lifetime.map(|ms| Instant::now() + Duration::from_millis(ms as u64)),
                });
                Ok(Accepted {
                    response,
                    completed: Some(Completed {
                        principal,
                        reauthenticated,
                        session_lifetime_ms: lifetime.unwrap_or(0),
                    }),
                })
            }
        }
    }
}
