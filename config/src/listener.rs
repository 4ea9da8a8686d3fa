//! `listeners` and `advertised.listeners`: `NAME://host:port` lists.

use std::collections::BTreeMap;

use crate::sasl::{sasl_config, SaslConfig};
use crate::tls::{default_protocol_map, tls_config, TlsConfig};
use crate::ConfigError;

/// The security protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication.
    Plaintext,
    /// TLS (rustls); with `ssl.client.auth`, mutual TLS.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// One listener endpoint: its name, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name (`PLAINTEXT`, or a custom name).
    pub name: String,
    /// Host to bind or advertise; empty means all interfaces (bind) or the default host.
    pub host: String,
    /// TCP port; 0 binds an ephemeral port.
    pub port: u16,
    /// The security protocol in force on this listener.
    pub security_protocol: SecurityProtocol,
    /// TLS settings of an SSL or SASL_SSL listener.
    pub tls: Option<TlsConfig>,
    /// SASL settings of a SASL_PLAINTEXT or SASL_SSL listener.
    pub sasl: Option<SaslConfig>,
}

impl Listener {
    /// The `host:port` string to bind.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A listener's view of the properties: `listener.name.<name>.X` wins over `X`.
pub(crate) struct ListenerProps<'a> {
    prefix: String,
    props: &'a BTreeMap<String, String>,
}

impl<'a> ListenerProps<'a> {
    pub(crate) fn new(listener: &str, props: &'a BTreeMap<String, String>) -> Self {
        ListenerProps {
            prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
            props,
        }
    }

    /// `listener.name.<name>.`
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The listener's own value, else the broker-wide one, with the key it came from.
    pub(crate) fn get(&self, name: &str) -> Option<(String, &'a str)> {
        self.scoped(name)
            .or_else(|| self.props.get(name).map(|v| (name.to_string(), v.as_str())))
    }

    /// Only the listener's own value (`listener.name.<name>.X`).
    pub(crate) fn scoped(&self, name: &str) -> Option<(String, &'a str)> {
        let key = format!("{}{name}", self.prefix);
        self.props.get(&key).map(|v| (key, v.as_str()))
    }
}

/// Parses a comma-separated listener list such as `PLAINTEXT://127.0.0.1:9092`.
pub(crate) fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item.split_once("://").ok_or_else(|| {
            ConfigError::invalid(key, value, format!("`{item}` is not NAME://host:port"))
        })?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| ConfigError::invalid(key, value, format!("`{item}` has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError::invalid(key, value, format!("`{port}` is not a port")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = name.to_ascii_uppercase();
        if out.iter().any(|l| l.name == name) {
            return Err(ConfigError::invalid(
                key,
                value,
                format!("listener `{name}` appears twice"),
            ));
        }
        out.push(Listener {
            name,
            host,
            port,
            // Set from listener.security.protocol.map once every property is read.
            security_protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        });
    }
    if out.is_empty() {
        return Err(ConfigError::invalid(key, value, "no listener given"));
    }
    Ok(out)
}

/// Sets each listener's security protocol from `listener.security.protocol.map` (or
/// Kafka's default map) and, for SSL listeners, its TLS settings.
pub(crate) fn resolve_security(
    listeners: &mut [Listener],
    protocol_map: Option<&BTreeMap<String, String>>,
    props: &BTreeMap<String, String>,
    key: &str,
) -> Result<(), ConfigError> {
    let default_map = default_protocol_map();
    let map = protocol_map.unwrap_or(&default_map);
    for l in listeners {
        let protocol = map.get(&l.name).ok_or_else(|| {
            ConfigError::invalid(
                "listener.security.protocol.map",
                &format!("{map:?}"),
                format!("no security protocol for listener {} of {key}", l.name),
            )
        })?;
        match protocol.as_str() {
            "PLAINTEXT" => l.security_protocol = SecurityProtocol::Plaintext,
            "SSL" => {
                l.security_protocol = SecurityProtocol::Ssl;
                l.tls = Some(tls_config(&l.name, props)?);
            }
            "SASL_PLAINTEXT" => {
                l.security_protocol = SecurityProtocol::SaslPlaintext;
                l.sasl = Some(sasl_config(&l.name, props)?);
            }
            "SASL_SSL" => {
                l.security_protocol = SecurityProtocol::SaslSsl;
                l.tls = Some(tls_config(&l.name, props)?);
                l.sasl = Some(sasl_config(&l.name, props)?);
            }
            other => {
                return Err(ConfigError::invalid(
                    "listener.security.protocol.map",
                    &format!("{}:{other}", l.name),
                    format!("listener {}: unknown security protocol {other}", l.name),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_ipv6() {
        let l = parse_listeners("listeners", "PLAINTEXT://[::1]:9093").unwrap();
        assert_eq!(l[0].host, "::1");
        assert_eq!(l[0].port, 9093);
        assert_eq!(l[0].bind_address(), "[::1]:9093");
        let l = parse_listeners("listeners", "PLAINTEXT://:9092").unwrap();
        assert_eq!(l[0].bind_address(), "0.0.0.0:9092");
    }

    #[test]
    fn rejects_missing_port() {
        assert!(matches!(
            parse_listeners("listeners", "PLAINTEXT://localhost"),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
