//! The replicated cluster's settings: where the metadata lives (etcd) and how this
//! broker's registration is kept. No etcd endpoints means a single node, as before.

use std::path::PathBuf;

use crate::ConfigError;

/// `metadata.etcd.*`, `broker.session.timeout.ms`, `broker.heartbeat.interval.ms`,
/// `broker.rack`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `metadata.etcd.endpoints`: etcd client URLs; empty means a single node.
    pub etcd_endpoints: Vec<String>,
    /// `metadata.etcd.prefix`: the key prefix of this cluster in etcd.
    pub etcd_prefix: String,
    /// `metadata.etcd.username`.
    pub etcd_username: Option<String>,
    /// `metadata.etcd.password`.
    pub etcd_password: Option<String>,
    /// `metadata.etcd.ssl.ca.location`: PEM CA certificates for etcd's server certificate.
    pub etcd_ssl_ca_location: Option<PathBuf>,
    /// `metadata.etcd.ssl.certificate.location`: PEM client certificate chain.
    pub etcd_ssl_certificate_location: Option<PathBuf>,
    /// `metadata.etcd.ssl.key.location`: PEM private key of the client certificate.
    pub etcd_ssl_key_location: Option<PathBuf>,
    /// `broker.session.timeout.ms`: the registration lease's TTL.
    pub session_timeout_ms: i32,
    /// `broker.heartbeat.interval.ms`: how often the lease is kept alive.
    pub heartbeat_interval_ms: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            etcd_endpoints: Vec::new(),
            etcd_prefix: "/sluice".to_string(),
            etcd_username: None,
            etcd_password: None,
            etcd_ssl_ca_location: None,
            etcd_ssl_certificate_location: None,
            etcd_ssl_key_location: None,
            session_timeout_ms: 9000,
            heartbeat_interval_ms: 2000,
            rack: None,
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never goes to a log.
        f.debug_struct("ClusterConfig")
            .field("etcd_endpoints", &self.etcd_endpoints)
            .field("etcd_prefix", &self.etcd_prefix)
            .field("etcd_username", &self.etcd_username)
            .field(
                "etcd_password",
                &self.etcd_password.as_ref().map(|_| "[hidden]"),
            )
            .field("etcd_ssl_ca_location", &self.etcd_ssl_ca_location)
            .field(
                "etcd_ssl_certificate_location",
                &self.etcd_ssl_certificate_location,
            )
            .field("etcd_ssl_key_location", &self.etcd_ssl_key_location)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("rack", &self.rack)
            .finish()
    }
}

impl ClusterConfig {
    /// True without etcd endpoints: the embedded single node.
    pub fn is_single_node(&self) -> bool {
        self.etcd_endpoints.is_empty()
    }

    /// Whether the connection to etcd uses TLS.
    pub fn etcd_tls(&self) -> bool {
        self.etcd_ssl_ca_location.is_some()
            || self.etcd_ssl_certificate_location.is_some()
            || self.etcd_ssl_key_location.is_some()
            || self
                .etcd_endpoints
                .iter()
                .any(|e| e.starts_with("https://"))
    }

    /// Checks what only the settings together can tell.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if i64::from(self.heartbeat_interval_ms) * 2 >= i64::from(self.session_timeout_ms) {
            return Err(ConfigError::invalid(
                "broker.heartbeat.interval.ms",
                &self.heartbeat_interval_ms.to_string(),
                "must be below half of broker.session.timeout.ms (a broker is fenced after half the session without a heartbeat)",
            ));
        }
        if self.etcd_username.is_some() != self.etcd_password.is_some() {
            let (key, missing) = if self.etcd_username.is_some() {
                (
                    "metadata.etcd.password",
                    "metadata.etcd.username is set without it",
                )
            } else {
                (
                    "metadata.etcd.username",
                    "metadata.etcd.password is set without it",
                )
            };
            return Err(ConfigError::invalid(key, "", missing));
        }
        if self.etcd_ssl_certificate_location.is_some() != self.etcd_ssl_key_location.is_some() {
            let key = if self.etcd_ssl_certificate_location.is_some() {
                "metadata.etcd.ssl.key.location"
            } else {
                "metadata.etcd.ssl.certificate.location"
            };
            return Err(ConfigError::invalid(
                key,
                "",
                "the client certificate and its key go together",
            ));
        }
        if self.etcd_tls() && self.etcd_ssl_ca_location.is_none() {
            return Err(ConfigError::invalid(
                "metadata.etcd.ssl.ca.location",
                "",
                "TLS to etcd needs the CA that signs etcd's certificate",
            ));
        }
        Ok(())
    }
}

/// Parses `metadata.etcd.endpoints`: comma-separated `host:port` or `http(s)://host:port`.
pub(crate) fn parse_endpoints(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let mut endpoints = Vec::new();
    for endpoint in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let address = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .unwrap_or(endpoint);
        let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid || endpoint.contains("://") && !endpoint.starts_with("http") {
            return Err(ConfigError::invalid(
                key,
                value,
                format!("`{endpoint}` is not host:port, http://host:port or https://host:port"),
            ));
        }
        endpoints.push(endpoint.to_string());
    }
    Ok(endpoints)
}

/// Parses `metadata.etcd.prefix`: an absolute key path (a trailing `/` is dropped).
pub(crate) fn parse_prefix(key: &str, value: &str) -> Result<String, ConfigError> {
    let prefix = value.trim_end_matches('/');
    if !prefix.starts_with('/') || prefix.contains("//") {
        return Err(ConfigError::invalid(
            key,
            value,
            "must be a key path such as /sluice",
        ));
    }
    Ok(prefix.to_string())
}

/// A non-empty string setting.
pub(crate) fn non_empty(key: &str, value: &str) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::invalid(key, value, "must not be empty"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use crate::{BrokerConfig, ConfigError};

    fn cfg(props: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_properties(props.iter().copied())
    }

    fn rejected_key(props: &[(&str, &str)]) -> String {
        match cfg(props) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn single_node_by_default_with_kafka_timing() {
        let c = cfg(&[]).unwrap().cluster;
        assert!(c.is_single_node());
        assert_eq!(c.etcd_prefix, "/sluice");
        assert_eq!(
            (c.session_timeout_ms, c.heartbeat_interval_ms),
            (9000, 2000)
        );
        assert_eq!(c.rack, None);
    }

    #[test]
    fn etcd_settings_parse() {
        let c = cfg(&[
            (
                "metadata.etcd.endpoints",
                " http://10.0.0.1:2379, etcd-2:2379 ,",
            ),
            ("metadata.etcd.prefix", "/prod/sluice/"),
            ("metadata.etcd.username", "sluice"),
            ("metadata.etcd.password", "s3cret"),
            ("metadata.etcd.ssl.ca.location", "/etc/etcd/ca.pem"),
            (
                "metadata.etcd.ssl.certificate.location",
                "/etc/etcd/client.pem",
            ),
            ("metadata.etcd.ssl.key.location", "/etc/etcd/client.key"),
            ("broker.session.timeout.ms", "6000"),
            ("broker.heartbeat.interval.ms", "1000"),
            ("broker.rack", "eu-1a"),
        ])
        .unwrap()
        .cluster;
        assert_eq!(
            c.etcd_endpoints,
            vec!["http://10.0.0.1:2379", "etcd-2:2379"]
        );
        assert_eq!(c.etcd_prefix, "/prod/sluice");
        assert_eq!(c.etcd_username.as_deref(), Some("sluice"));
        assert_eq!(c.etcd_password.as_deref(), Some("s3cret"));
        assert_eq!(
            c.etcd_ssl_key_location.as_deref(),
            Some(std::path::Path::new("/etc/etcd/client.key"))
        );
        assert_eq!(
            (c.session_timeout_ms, c.heartbeat_interval_ms),
            (6000, 1000)
        );
        assert_eq!(c.rack.as_deref(), Some("eu-1a"));
        assert!(!c.is_single_node());
        assert!(c.etcd_tls());
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        assert_eq!(
            rejected_key(&[("metadata.etcd.endpoints", "etcd-1")]),
            "metadata.etcd.endpoints"
        );
        assert_eq!(
            rejected_key(&[("metadata.etcd.endpoints", "ftp://a:1")]),
            "metadata.etcd.endpoints"
        );
        assert_eq!(
            rejected_key(&[("metadata.etcd.prefix", "sluice")]),
            "metadata.etcd.prefix"
        );
        assert_eq!(
            rejected_key(&[("broker.session.timeout.ms", "x")]),
            "broker.session.timeout.ms"
        );
        assert_eq!(
            rejected_key(&[("broker.heartbeat.interval.ms", "0")]),
            "broker.heartbeat.interval.ms"
        );
        assert_eq!(
            rejected_key(&[("broker.heartbeat.interval.ms", "4500")]),
            "broker.heartbeat.interval.ms"
        );
        assert_eq!(rejected_key(&[("broker.rack", "")]), "broker.rack");
        assert_eq!(
            rejected_key(&[("metadata.etcd.username", "u")]),
            "metadata.etcd.password"
        );
        assert_eq!(
            rejected_key(&[
                ("metadata.etcd.ssl.certificate.location", "/c.pem"),
                ("metadata.etcd.ssl.ca.location", "/ca.pem")
            ]),
            "metadata.etcd.ssl.key.location"
        );
        assert_eq!(
            rejected_key(&[("metadata.etcd.endpoints", "https://a:2379")]),
            "metadata.etcd.ssl.ca.location"
        );
    }
}
