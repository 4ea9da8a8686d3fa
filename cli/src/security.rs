//! `--command-config FILE`: Kafka's client properties for how to connect, as Kafka's tools
//! take them: `security.protocol`, the PEM `ssl.*` settings and `sasl.mechanism` with
//! `sasl.jaas.config`. Anything else a Java client would need a JVM for (JKS stores,
//! GSSAPI, OAUTHBEARER) is refused naming the property.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sluice_protocol::pem;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::CliError;

/// How to connect: plaintext by default.
#[derive(Debug, Default)]
pub struct Security {
    /// For SSL and SASL_SSL.
    pub(crate) tls: Option<Arc<ClientConfig>>,
    /// For SASL_PLAINTEXT and SASL_SSL.
    pub(crate) sasl: Option<SaslCredentials>,
}

/// A SASL mechanism this tool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    /// Kafka's name of the mechanism.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The mechanism and the login module's username and password.
#[derive(Clone)]
pub(crate) struct SaslCredentials {
    pub(crate) mechanism: Mechanism,
    pub(crate) username: String,
    pub(crate) password: String,
}

// The password stays out of debug output.
impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn bad(property: &str, why: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("--command-config: {property}: {why}"))
}

impl Security {
    /// What a broker connects to the other brokers with: the inter-broker listener's trust
    /// store and key store (PEM), and its SASL login.
    pub fn broker_client(
        tls: Option<&sluice_config::PeerTls>,
        sasl: Option<&sluice_config::PeerLogin>,
    ) -> Result<Security, CliError> {
        let tls = match tls {
            None => None,
            Some(t) => {
                let truststore = t.truststore_location.to_string_lossy();
                let keystore = t.keystore_location.to_string_lossy();
                let get = |name: &str| match name {
                    "ssl.truststore.location" => Some(truststore.as_ref()),
                    "ssl.keystore.location" => Some(keystore.as_ref()),
                    "ssl.key.password" => t.key_password.as_deref(),
                    _ => None,
                };
                Some(tls_config(&get, t.verify_hostname)?)
            }
        };
        let sasl = match sasl {
            None => None,
            Some(login) => Some(SaslCredentials {
                mechanism: match login.mechanism {
                    sluice_config::SaslMechanism::Plain => Mechanism::Plain,
                    sluice_config::SaslMechanism::ScramSha256 => Mechanism::ScramSha256,
                    sluice_config::SaslMechanism::ScramSha512 => Mechanism::ScramSha512,
                    sluice_config::SaslMechanism::OAuthBearer => {
                        return Err(bad("sasl.mechanism.inter.broker.protocol", "OAUTHBEARER"))
                    }
                },
                username: login.username.clone(),
                password: login.password.clone(),
            }),
        };
        Ok(Security { tls, sasl })
    }

    /// Reads a client properties file.
    pub(crate) fn load(path: &Path) -> Result<Security, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("--command-config {}: {e}", path.display())))?;
        let props = sluice_protocol::properties::parse_properties(&text)
            .map_err(|e| CliError::Usage(format!("--command-config {}: {e}", path.display())))?;
        let props: std::collections::HashMap<String, String> = props.into_iter().collect();
        Security::from_properties(&props)
    }

    fn from_properties(
        props: &std::collections::HashMap<String, String>,
    ) -> Result<Security, CliError> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let protocol = get("security.protocol")
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(bad(
                    "security.protocol",
                    format!("{other} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
                ))
            }
        };
        // Kafka's default is https; an empty value turns the host name check off.
        let verify_hostname = match props
            .get("ssl.endpoint.identification.algorithm")
            .map(|v| v.trim())
        {
            None => true,
            Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("https") => true,
            Some(other) => {
                return Err(bad(
                    "ssl.endpoint.identification.algorithm",
                    format!("{other} is not https (or empty to turn host name checks off)"),
                ))
            }
        };
        Ok(Security {
            tls: if tls {
                Some(tls_config(&get, verify_hostname)?)
            } else {
                None
            },
            sasl: if sasl {
                Some(sasl_credentials(&get)?)
            } else {
                None
            },
        })
    }
}

/// The store types other than PEM that Kafka knows; refused with how to convert.
fn check_store_type(property: &str, value: Option<&str>) -> Result<(), CliError> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        None | Some("PEM") => Ok(()),
        Some(other) => Err(bad(
            property,
            format!(
                "{other} stores are not supported: convert the store to PEM and set {property}=PEM"
            ),
        )),
    }
}

/// TLS for an https:// client that trusts the CAs in `ca` and checks the host name.
pub(crate) fn https_client_config(ca: &Path) -> Result<Arc<ClientConfig>, CliError> {
    let location = ca.to_string_lossy().into_owned();
    tls_config(
        &|k: &str| (k == "ssl.truststore.location").then_some(location.as_str()),
        true,
    )
}

fn tls_config<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    verify_hostname: bool,
) -> Result<Arc<ClientConfig>, CliError> {
    check_store_type("ssl.truststore.type", get("ssl.truststore.type"))?;
    check_store_type("ssl.keystore.type", get("ssl.keystore.type"))?;
    let truststore = get("ssl.truststore.location").ok_or_else(|| {
        bad(
            "ssl.truststore.location",
            "required: a PEM file of the CA certificates to trust (there is no JVM default store)",
        )
    })?;
    let mut roots = RootCertStore::empty();
    let certs =
        read_store(truststore, pem::certificates).map_err(|e| bad("ssl.truststore.location", e))?;
    for c in certs {
        roots
            .add(c)
            .map_err(|e| bad("ssl.truststore.location", format!("a CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| bad("ssl.truststore.location", e))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("security.protocol", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainVerifier {
            webpki,
            verify_hostname,
        }));
    let config = match get("ssl.keystore.location") {
        None => builder.with_no_client_auth(),
        Some(keystore) => {
            let chain = read_store(keystore, pem::certificates)
                .map_err(|e| bad("ssl.keystore.location", e))?;
            let key = read_store(keystore, |pem| {
                pem::private_key(pem, get("ssl.key.password"))
            })
            .map_err(|e| bad("ssl.keystore.location", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("ssl.keystore.location", e))?
        }
    };
    Ok(Arc::new(config))
}

/// Reads a PEM store file and takes what `parse` finds in it; the error names the file.
fn read_store<T>(
    path: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, pem::PemError>,
) -> Result<T, String> {
    let text = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    parse(&text).map_err(|e| format!("{path}: {e}"))
}

fn sasl_credentials<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<SaslCredentials, CliError> {
    // Kafka's default mechanism is GSSAPI.
    let mechanism = match get("sasl.mechanism").unwrap_or("GSSAPI") {
        "PLAIN" => Mechanism::Plain,
        "SCRAM-SHA-256" => Mechanism::ScramSha256,
        "SCRAM-SHA-512" => Mechanism::ScramSha512,
        other => {
            return Err(bad(
                "sasl.mechanism",
                format!("{other} is not supported by this tool (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are)"),
            ))
        }
    };
    let jaas = get("sasl.jaas.config").ok_or_else(|| {
        bad(
            "sasl.jaas.config",
            "required: a PlainLoginModule or ScramLoginModule with username and password",
        )
    })?;
    let (module, options) = parse_jaas(jaas).map_err(|why| bad("sasl.jaas.config", why))?;
    let known = [
        "org.apache.kafka.common.security.plain.PlainLoginModule",
        "org.apache.kafka.common.security.scram.ScramLoginModule",
    ];
    if !known.contains(&module.as_str()) {
        return Err(bad(
            "sasl.jaas.config",
            format!("login module {module} is not supported (PlainLoginModule and ScramLoginModule are)"),
        ));
    }
    let option = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| bad("sasl.jaas.config", format!("no {name} option")))
    };
    Ok(SaslCredentials {
        mechanism,
        username: option("username")?,
        password: option("password")?,
    })
}

/// Parses one JAAS login module entry: `Class flag key="value" ...;`.
fn parse_jaas(text: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut rest = text.trim();
    rest = rest.strip_suffix(';').unwrap_or(rest).trim_end();
    let word = |s: &str| -> (String, usize) {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        (s[..end].to_string(), end)
    };
    let (module, n) = word(rest);
    if module.is_empty() {
        return Err("no login module".to_string());
    }
    rest = rest[n..].trim_start();
    let (flag, n) = word(rest);
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err(format!(
            "expected a control flag (required) after {module}, found {flag:?}"
        ));
    }
    rest = rest[n..].trim_start();
    let mut options = Vec::new();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("expected key=value at {rest:?}"))?;
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            v.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("unterminated quote in the {key} option"))?;
            rest = quoted[end + 1..].trim_start();
            v
        } else {
            let (v, n) = word(rest);
            rest = rest[n..].trim_start();
            v
        };
        options.push((key, value));
    }
    Ok((module, options))
}

/// The WebPKI chain check, with the host name check left out when
/// `ssl.endpoint.identification.algorithm` is empty (as the Java client does).
#[derive(Debug)]
struct ChainVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    verify_hostname: bool,
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // The name is checked after the chain: this error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        match Security::from_properties(&props(pairs)) {
            Err(e) => e.to_string(),
            Ok(s) => panic!("accepted: {s:?}"),
        }
    }

    #[test]
    fn jaas_entries_parse_as_kafka_writes_them() {
        let (module, options) = parse_jaas(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p\"w d";"#,
        )
        .unwrap();
        assert_eq!(
            module,
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        );
        assert_eq!(
            options,
            vec![
                ("username".to_string(), "alice".to_string()),
                ("password".to_string(), "p\"w d".to_string())
            ]
        );
        assert!(parse_jaas("Module username=x;").is_err());
    }

    #[test]
    fn sasl_plaintext_takes_the_login_modules_credentials() {
        let s = Security::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="bob" password="secret";"#,
            ),
        ]))
        .unwrap();
        assert!(s.tls.is_none());
        let c = s.sasl.unwrap();
        assert_eq!(
            (c.mechanism, c.username.as_str(), c.password.as_str()),
            (Mechanism::Plain, "bob", "secret")
        );
    }

    #[test]
    fn unsupported_settings_are_named() {
        assert!(
            error(&[("security.protocol", "SSL"), ("ssl.truststore.type", "JKS")])
                .contains("ssl.truststore.type: JKS stores are not supported")
        );
        assert!(error(&[("security.protocol", "SASL_PLAINTEXT")])
            .contains("sasl.mechanism: GSSAPI is not supported"));
        assert!(error(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER")
        ])
        .contains("sasl.mechanism: OAUTHBEARER is not supported"));
        assert!(
            error(&[("security.protocol", "SSL")]).contains("ssl.truststore.location: required")
        );
        assert!(error(&[("security.protocol", "TLS")]).contains("security.protocol: TLS is not"));
    }
}
