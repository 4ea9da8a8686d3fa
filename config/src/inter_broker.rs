//! How a cluster member connects to the others (followers' fetches, transaction markers):
//! through the inter-broker listener (`inter.broker.listener.name`), with that listener's
//! TLS files as its trust store and client certificate, and for SASL the mechanism of
//! `sasl.mechanism.inter.broker.protocol` with the login (`username`, `password`) of the
//! listener's JAAS configuration, as Kafka's brokers do. Resolved once at start-up, so that
//! a cluster that could not replicate does not start.

use std::path::PathBuf;

use crate::listener::{ListenerProps, SecurityProtocol};
use crate::sasl::{jaas_option, SaslMechanism};
use crate::{BrokerConfig, ConfigError};

/// What this broker connects to the other brokers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterBrokerClient {
    /// The listener name whose advertised endpoints the peers are reached at.
    pub listener: String,
    /// For SSL and SASL_SSL.
    pub tls: Option<PeerTls>,
    /// For SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<PeerLogin>,
}

/// The TLS files of the inter-broker listener, used as a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTls {
    /// The CAs the other brokers' certificates are checked against.
    pub truststore_location: PathBuf,
    /// This broker's certificate chain and key, shown to peers that ask for one.
    pub keystore_location: PathBuf,
    /// `ssl.key.password`.
    pub key_password: Option<String>,
    /// `ssl.endpoint.identification.algorithm=https` (Kafka's default): a peer's
    /// certificate must name its advertised host.
    pub verify_hostname: bool,
}

/// The SASL login this broker uses with the other brokers.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerLogin {
    /// `sasl.mechanism.inter.broker.protocol`.
    pub mechanism: SaslMechanism,
    /// The JAAS configuration's `username`.
    pub username: String,
    /// The JAAS configuration's `password`.
    pub password: String,
}

// The password stays out of logs.
impl std::fmt::Debug for PeerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The inter-broker connection settings of a cluster member, or the error that names the
/// property to fix.
pub(crate) fn resolve(cfg: &BrokerConfig) -> Result<InterBrokerClient, ConfigError> {
    let key = "inter.broker.listener.name";
    let listener = match &cfg.replication.inter_broker_listener {
        Some(name) => cfg
            .listeners
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ConfigError::invalid(key, name, "not one of the listeners in `listeners`")
            })?,
        None => cfg
            .listeners
            .iter()
            .find(|l| l.security_protocol == SecurityProtocol::Plaintext)
            .ok_or_else(|| {
                ConfigError::invalid(
                    key,
                    "",
                    "no PLAINTEXT listener for the brokers to replicate through: name the listener they use",
                )
            })?,
    };
    let lp = ListenerProps::new(&listener.name, &cfg.set_properties);
    let tls = match &listener.tls {
        Some(tls) => {
            let truststore = tls.truststore_location.clone().ok_or_else(|| {
                ConfigError::invalid(
                    &format!("{}ssl.truststore.location", lp.prefix()),
                    "",
                    format!(
                        "listener {} is the inter-broker listener: its trust store (a PEM file of \
                         the CAs of the brokers' certificates) checks the other brokers",
                        listener.name
                    ),
                )
            })?;
            let verify_hostname = match lp.get("ssl.endpoint.identification.algorithm") {
                None => true,
                Some((_, v)) if v.trim().is_empty() => false,
                Some((_, v)) if v.trim().eq_ignore_ascii_case("https") => true,
                Some((k, v)) => {
                    return Err(ConfigError::invalid(
                        &k,
                        v,
                        "expected https, or empty to leave the peers' host names unchecked",
                    ))
                }
            };
            Some(PeerTls {
                truststore_location: truststore,
                keystore_location: tls.keystore_location.clone(),
                key_password: tls.key_password.clone(),
                verify_hostname,
            })
        }
        None => None,
    };
    let sasl = match &listener.sasl {
        Some(sasl) => {
            let key = "sasl.mechanism.inter.broker.protocol";
            let name = &cfg.replication.inter_broker_sasl_mechanism;
            let mechanism = SaslMechanism::from_name(name)
                .filter(|m| *m != SaslMechanism::OAuthBearer)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        key,
                        name,
                        "the brokers log in to each other with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                    )
                })?;
            if !sasl.mechanisms.contains(&mechanism) {
                return Err(ConfigError::invalid(
                    key,
                    name,
                    format!(
                        "not in the sasl.enabled.mechanisms of the inter-broker listener {}",
                        listener.name
                    ),
                ));
            }
            let jaas_key = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
            let (jaas_key, jaas) = lp
                .scoped(&jaas_key)
                .or_else(|| lp.get("sasl.jaas.config"))
                .ok_or_else(|| missing_login(&format!("{}{jaas_key}", lp.prefix())))?;
            let option =
                |name: &str| jaas_option(jaas, name).ok_or_else(|| missing_login(&jaas_key));
            Some(PeerLogin {
                mechanism,
                username: option("username")?,
                password: option("password")?,
            })
        }
        None => None,
    };
    Ok(InterBrokerClient {
        listener: listener.name.clone(),
        tls,
        sasl,
    })
}

fn missing_login(key: &str) -> ConfigError {
    ConfigError::invalid(
        key,
        "",
        "the brokers log in to each other with the username=\"...\" password=\"...\" of this JAAS \
         configuration",
    )
}

#[cfg(test)]
mod tests {
    use crate::BrokerConfig;

    fn cluster(extra: &[(&str, &str)]) -> Result<BrokerConfig, crate::ConfigError> {
        let mut props = vec![
            ("metadata.etcd.endpoints", "http://127.0.0.1:2379"),
            (
                "listeners",
                "SASL_SSL://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092",
            ),
            ("ssl.keystore.location", "/pki/broker.pem"),
            ("ssl.truststore.location", "/pki/ca.pem"),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
            (
                "listener.name.sasl_ssl.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"broker\" password=\"pw\\\"1\" user_broker=\"pw\\\"1\";",
            ),
        ];
        props.extend_from_slice(extra);
        BrokerConfig::from_properties(props.iter().copied())
    }

    #[test]
    fn the_first_plaintext_listener_by_default() {
        let cfg = cluster(&[]).unwrap();
        let client = cfg.replication.inter_broker_client.unwrap();
        assert_eq!(client.listener, "PLAINTEXT");
        assert!(client.tls.is_none() && client.sasl.is_none());
    }

    #[test]
    fn a_sasl_ssl_listener_takes_its_trust_store_key_store_and_login() {
        let cfg = cluster(&[
            ("inter.broker.listener.name", "SASL_SSL"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        ])
        .unwrap();
        let client = cfg.replication.inter_broker_client.unwrap();
        let tls = client.tls.unwrap();
        assert_eq!(tls.truststore_location.to_str(), Some("/pki/ca.pem"));
        assert_eq!(tls.keystore_location.to_str(), Some("/pki/broker.pem"));
        assert!(tls.verify_hostname);
        let login = client.sasl.unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("broker", "pw\"1")
        );
        assert!(!format!("{login:?}").contains("pw"));
    }

    #[test]
    fn what_cannot_replicate_is_refused_naming_the_property() {
        let err = |extra: &[(&str, &str)]| cluster(extra).unwrap_err().to_string();
        let sasl = ("inter.broker.listener.name", "SASL_SSL");
        // Kafka's default mechanism is GSSAPI.
        assert!(err(&[sasl]).contains("sasl.mechanism.inter.broker.protocol"));
        let e = err(&[
            sasl,
            ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"),
        ]);
        assert!(e.contains("not in the sasl.enabled.mechanisms"), "{e}");
        let e = err(&[
            sasl,
            ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256"),
        ]);
        assert!(
            e.contains("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"),
            "{e}"
        );
        let e = err(&[("inter.broker.listener.name", "INTERNAL")]);
        assert!(e.contains("inter.broker.listener.name"), "{e}");
        let e = err(&[("listeners", "SASL_SSL://127.0.0.1:9093")]);
        assert!(e.contains("no PLAINTEXT listener"), "{e}");
        let e = err(&[
            sasl,
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("ssl.endpoint.identification.algorithm", "ldap"),
        ]);
        assert!(e.contains("ssl.endpoint.identification.algorithm"), "{e}");
    }
}
