//! TLS for SSL listeners by rustls: the server config built from Kafka's PEM settings and
//! rebuilt when the key store or trust store changes on disk, and the principal a client
//! certificate stands for (`ssl.principal.mapping.rules`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use regex::Regex;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sluice_config::{ClientAuth, TlsConfig, TlsVersion};
use sluice_protocol::pem;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::reload::Reloading;

mod v1_certs;

/// The TLS side of one SSL listener.
pub(crate) struct TlsListener {
    rules: Vec<PrincipalRule>,
    acceptor: Reloading<TlsAcceptor>,
}

impl TlsListener {
    /// Loads the listener's certificates; an error names the setting or file at fault.
    pub(crate) fn new(listener: &str, config: TlsConfig) -> anyhow::Result<Self> {
        let rules = parse_principal_rules(&config.principal_mapping_rules)
            .with_context(|| format!("listener {listener}: ssl.principal.mapping.rules"))?;
        let mut paths = vec![config.keystore_location.clone()];
        paths.extend(config.truststore_location.clone());
        let acceptor = Reloading::new(format!("listener {listener} TLS certificates"), paths, {
            let config = config.clone();
            move || build(&config).map(TlsAcceptor::from)
        })
        .with_context(|| format!("listener {listener}: TLS settings"))?;
        Ok(TlsListener { rules, acceptor })
    }

    /// The acceptor for a new connection, rebuilt first if a store file changed.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::clone(&self.acceptor.current())
    }

    /// The principal of a connection: `User:` and the mapped subject of the client's
    /// certificate, or `User:ANONYMOUS` without one.
    pub(crate) fn principal(
        &self,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> anyhow::Result<String> {
        let Some(cert) = peer_certs.and_then(|c| c.first()) else {
            return Ok("User:ANONYMOUS".to_string());
        };
        let dn = subject_dn(cert)?;
        map_principal(&self.rules, &dn).map(|name| format!("User:{name}"))
    }
}

fn build(config: &TlsConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = config
        .protocols
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let keystore = &config.keystore_location;
    let certs = read_certs(keystore).context("ssl.keystore.location")?;
    let key =
        read_key(keystore, config.key_password.as_deref()).context("ssl.keystore.location")?;
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match (config.client_auth, &config.truststore_location) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some(truststore)) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(truststore).context("ssl.truststore.location")? {
                roots
                    .add(c)
                    .with_context(|| format!("{}: a CA certificate", truststore.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(Arc::new(v1_certs::ExplainV1Certificates(
                verifier.build()?,
            )))
        }
        (_, None) => bail!("ssl.client.auth needs ssl.truststore.location"),
    };
    let cfg = builder
        .with_single_cert(certs, key)
        .with_context(|| format!("{}: key and certificate", keystore.display()))?;
    Ok(Arc::new(cfg))
}

/// The certificates of a PEM store file.
fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    pem::certificates(&text).with_context(|| path.display().to_string())
}

/// The private key of a PEM key store, decrypted with `ssl.key.password` if encrypted.
fn read_key(path: &Path, password: Option<&str>) -> anyhow::Result<PrivateKeyDer<'static>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    pem::private_key(&text, password).with_context(|| path.display().to_string())
}

/// The subject of a certificate as Java's `X500Principal.getName()` writes it (RFC 2253):
/// the most specific name first, `,` between names, escaped values.
fn subject_dn(cert: &CertificateDer<'_>) -> anyhow::Result<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| anyhow!("client certificate does not parse: {e}"))?;
    let registry = x509_parser::objects::oid_registry();
    let mut rdns = Vec::new();
    for rdn in parsed.subject().iter_rdn() {
        let mut parts = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let name = match x509_parser::objects::oid2abbrev(oid, registry) {
                Ok(n) if RFC2253_KEYWORDS.contains(&n) => n.to_string(),
                _ => oid.to_id_string(),
            };
            let value = attr
                .as_str()
                .map_err(|e| anyhow!("client certificate subject: {e}"))?;
            parts.push(format!("{name}={}", escape_dn_value(value)));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// The attribute keywords RFC 2253 output uses; others are written as dotted OIDs.
const RFC2253_KEYWORDS: &[&str] = &["CN", "C", "L", "ST", "O", "OU", "STREET", "DC", "UID"];

fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One entry of `ssl.principal.mapping.rules`.
#[derive(Debug)]
enum PrincipalRule {
    /// `DEFAULT`: the whole distinguished name.
    Default,
    /// `RULE:pattern/replacement/[LU]`.
    Rule {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// Parses Kafka's rule list: `DEFAULT` and `RULE:pattern/replacement/` entries (with an
/// optional `L` or `U` after the last slash), separated by commas outside the rules.
fn parse_principal_rules(text: &str) -> anyhow::Result<Vec<PrincipalRule>> {
    let mut rules = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("DEFAULT") {
            rules.push(PrincipalRule::Default);
            rest = after;
        } else if let Some(after) = rest.strip_prefix("RULE:") {
            let (pattern, after) = take_until_slash(after)
                .ok_or_else(|| anyhow!("`{rest}`: a rule is RULE:pattern/replacement/"))?;
            let (replacement, after) = take_until_slash(after)
                .ok_or_else(|| anyhow!("`{rest}`: a rule is RULE:pattern/replacement/"))?;
            let (case, after) = match after.chars().next() {
                Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                _ => (None, after),
            };
            // Java's matches() needs the whole name to match.
            let pattern = Regex::new(&format!("^(?:{pattern})$"))
                .with_context(|| format!("pattern `{pattern}`"))?;
            rules.push(PrincipalRule::Rule {
                pattern,
                replacement: java_replacement(&replacement),
                case,
            });
            rest = after;
        } else {
            bail!("`{rest}`: expected DEFAULT or RULE:pattern/replacement/");
        }
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.is_empty() {
            bail!("`{rest}`: rules are separated by commas");
        }
    }
    if rules.is_empty() {
        bail!("no rule given");
    }
    Ok(rules)
}

/// Reads up to the next `/` not escaped by `\`; returns the text (unescaped) and the rest.
fn take_until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java writes group references as `$1`; the regex crate needs `${1}` when a name
/// character follows.
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{n}}}"));
        } else {
            out.push(c);
        }
    }
    out
}

fn map_principal(rules: &[PrincipalRule], dn: &str) -> anyhow::Result<String> {
    for rule in rules {
        match rule {
            PrincipalRule::Default => return Ok(dn.to_string()),
            PrincipalRule::Rule {
                pattern,
                replacement,
                case,
            } => {
                if pattern.is_match(dn) {
                    let name = pattern.replace(dn, replacement.as_str()).into_owned();
                    return Ok(match case {
                        Some('L') => name.to_lowercase(),
                        Some('U') => name.to_uppercase(),
                        _ => name,
                    });
                }
            }
        }
    }
    bail!("no ssl.principal.mapping.rules entry applies to `{dn}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_rules_map_as_kafka_documents() {
        let rules = parse_principal_rules(
            r"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=([a-z]+)\/x,.*$/$1-slash/, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            map_principal(&rules, "CN=Kafka-Client,OU=ServiceUsers,O=Org,C=US").unwrap(),
            "kafka-client"
        );
        assert_eq!(
            map_principal(&rules, "CN=abc/x,O=Org").unwrap(),
            "abc-slash"
        );
        assert_eq!(
            map_principal(&rules, "CN=other,O=Org").unwrap(),
            "CN=other,O=Org"
        );
        let only = parse_principal_rules("RULE:^CN=(.*)$/$1/U").unwrap();
        assert_eq!(map_principal(&only, "CN=alice").unwrap(), "ALICE");
        assert!(map_principal(&only, "O=none").is_err());
        assert!(parse_principal_rules("RULE:broken").is_err());
        assert!(parse_principal_rules("SOMETHING").is_err());
    }

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(escape_dn_value("a,b"), "a\\,b");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
        assert_eq!(java_replacement("$1-$2x"), "${1}-${2}x");
    }
}
