//! Listener security: `listener.security.protocol.map` and the `ssl.*` settings of TLS
//! listeners, under Kafka's names (with `listener.name.NAME.ssl.*` overrides).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::security_props::security_prop;
use crate::ConfigError;

/// `ssl.client.auth`: whether a TLS listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `none`: no client certificate is asked for.
    None,
    /// `requested`: a certificate is asked for; a client without one is still served.
    Requested,
    /// `required`: a client without a certificate signed by a trusted CA is refused.
    Required,
}

/// A TLS protocol version in `ssl.enabled.protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

/// The TLS settings of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `ssl.keystore.location`: a PEM file with the private key and the certificate chain.
    pub keystore_location: PathBuf,
    /// `ssl.key.password`: the password of an encrypted (PKCS#8) private key.
    pub key_password: Option<String>,
    /// `ssl.truststore.location`: a PEM bundle of the CAs that sign client certificates.
    pub truststore_location: Option<PathBuf>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`.
    pub protocols: Vec<TlsVersion>,
    /// `ssl.principal.mapping.rules`, as given.
    pub principal_mapping_rules: String,
}

/// The security protocol of each listener name when `listener.security.protocol.map` does
/// not say: Kafka's default map.
const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// True for a property this module reads: an `ssl.*` name, or one under
/// `listener.name.NAME.`.
pub(crate) fn is_ssl_property(key: &str) -> bool {
    let is_ssl = |name: &str| name.starts_with("ssl.") && security_prop(name).is_some();
    is_ssl(key)
        || key
            .strip_prefix("listener.name.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(_, name)| is_ssl(name))
}

/// Parses `listener.security.protocol.map`: `NAME:PROTOCOL` pairs.
pub(crate) fn parse_protocol_map(
    key: &str,
    value: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, protocol) = item.split_once(':').ok_or_else(|| {
            ConfigError::invalid(key, value, format!("`{item}` is not NAME:PROTOCOL"))
        })?;
        let protocol = protocol.trim().to_ascii_uppercase();
        if !matches!(
            protocol.as_str(),
            "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL"
        ) {
            return Err(ConfigError::invalid(
                key,
                value,
                format!("unknown security protocol `{protocol}`"),
            ));
        }
        out.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(out)
}

/// The default listener security protocol map.
pub(crate) fn default_protocol_map() -> BTreeMap<String, String> {
    parse_protocol_map("listener.security.protocol.map", DEFAULT_PROTOCOL_MAP).unwrap_or_default()
}

/// Builds a TLS listener's settings from the properties: `listener.name.<name>.ssl.X`
/// wins over `ssl.X`.
pub(crate) fn tls_config(
    listener: &str,
    props: &BTreeMap<String, String>,
) -> Result<TlsConfig, ConfigError> {
    let lp = crate::listener::ListenerProps::new(listener, props);
    let get = |name: &str| lp.get(name);
    for store in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some((k, v)) = get(store) {
            if !v.eq_ignore_ascii_case("PEM") {
                return Err(ConfigError::invalid(
                    &k,
                    v,
                    "only PEM stores are supported: convert JKS or PKCS12 with keytool and openssl",
                ));
            }
        }
    }
    let keystore_location = get("ssl.keystore.location")
        .map(|(_, v)| PathBuf::from(v))
        .ok_or_else(|| {
            ConfigError::invalid(
                "ssl.keystore.location",
                "",
                format!("listener {listener} is SSL and needs a PEM file with its key and certificate chain"),
            )
        })?;
    let client_auth = match get("ssl.client.auth") {
        None => ClientAuth::None,
        Some((k, v)) => match v.to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => {
                return Err(ConfigError::invalid(
                    &k,
                    v,
                    "expected required, requested or none",
                ))
            }
        },
    };
    let truststore_location = get("ssl.truststore.location").map(|(_, v)| PathBuf::from(v));
    if client_auth != ClientAuth::None && truststore_location.is_none() {
        return Err(ConfigError::invalid(
            "ssl.truststore.location",
            "",
            format!(
                "listener {listener} asks for client certificates and needs the CAs that sign them"
            ),
        ));
    }
    let protocols = match get("ssl.enabled.protocols") {
        None => vec![TlsVersion::Tls12, TlsVersion::Tls13],
        Some((k, v)) => {
            let mut out = Vec::new();
            for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                out.push(match p {
                    "TLSv1.2" => TlsVersion::Tls12,
                    "TLSv1.3" => TlsVersion::Tls13,
                    _ => {
                        return Err(ConfigError::invalid(
                            &k,
                            v,
                            format!("`{p}`: only TLSv1.2 and TLSv1.3 are supported"),
                        ))
                    }
                });
            }
            if out.is_empty() {
                return Err(ConfigError::invalid(&k, v, "no protocol given"));
            }
            out
        }
    };
    Ok(TlsConfig {
        keystore_location,
        key_password: get("ssl.key.password").map(|(_, v)| v.to_string()),
        truststore_location,
        client_auth,
        protocols,
        principal_mapping_rules: get("ssl.principal.mapping.rules")
            .map_or_else(|| "DEFAULT".to_string(), |(_, v)| v.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn listener_scoped_settings_win() {
        let p = props(&[
            ("ssl.keystore.location", "/a.pem"),
            ("listener.name.internal.ssl.keystore.location", "/b.pem"),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.location", "/ca.pem"),
        ]);
        let t = tls_config("INTERNAL", &p).unwrap();
        assert_eq!(t.keystore_location, PathBuf::from("/b.pem"));
        assert_eq!(t.client_auth, ClientAuth::Required);
        assert_eq!(
            tls_config("SSL", &p).unwrap().keystore_location,
            PathBuf::from("/a.pem")
        );
        assert!(is_ssl_property(
            "listener.name.internal.ssl.keystore.location"
        ));
        assert!(!is_ssl_property("listener.name.internal.sasl.jaas.config"));
    }

    #[test]
    fn bad_settings_are_named() {
        let e = tls_config("SSL", &props(&[("ssl.keystore.type", "JKS")])).unwrap_err();
        assert!(e.to_string().contains("ssl.keystore.type"), "{e}");
        let e = tls_config("SSL", &props(&[])).unwrap_err();
        assert!(e.to_string().contains("ssl.keystore.location"), "{e}");
        let e = tls_config(
            "SSL",
            &props(&[
                ("ssl.keystore.location", "/a.pem"),
                ("ssl.client.auth", "required"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("ssl.truststore.location"), "{e}");
        let e = tls_config(
            "SSL",
            &props(&[
                ("ssl.keystore.location", "/a.pem"),
                ("ssl.enabled.protocols", "TLSv1.1"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("TLSv1.1"), "{e}");
    }
}
