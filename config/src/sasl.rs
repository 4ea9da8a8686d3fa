//! The SASL settings of SASL_PLAINTEXT and SASL_SSL listeners, under Kafka's names:
//! `sasl.enabled.mechanisms`, the PLAIN users of
//! `listener.name.NAME.plain.sasl.jaas.config`, the OAUTHBEARER validator's
//! `sasl.oauthbearer.*`, and `connections.max.reauth.ms`, each also per listener.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::security_props::security_prop;
use crate::ConfigError;

/// A SASL mechanism a listener can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password, checked against configured users.
    Plain,
    /// `SCRAM-SHA-256`, with salted credentials kept by the broker.
    ScramSha256,
    /// `SCRAM-SHA-512`, with salted credentials kept by the broker.
    ScramSha512,
    /// `OAUTHBEARER`: a signed JWT checked against the issuer's keys.
    OAuthBearer,
}

impl SaslMechanism {
    /// Every mechanism, in the order Kafka lists them.
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ];

    /// The mechanism's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism of a wire name (exact, as Kafka matches it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The mechanism's segment in `listener.name.NAME.<mechanism>.sasl.jaas.config`.
    fn property_prefix(self) -> String {
        self.name().to_ascii_lowercase()
    }
}

/// How OAUTHBEARER tokens are validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearerConfig {
    /// The JWKS file named by `sasl.oauthbearer.jwks.endpoint.url` (a `file:` URL); `None`
    /// when the listener names Kafka's unsecured validator and takes unsigned tokens.
    pub jwks_file: Option<PathBuf>,
    /// `sasl.oauthbearer.expected.audience`: when set, a token must name one of these.
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`: when set, a token's `iss` must equal it.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`: the claim that names the principal.
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds`: leeway on `exp`, `nbf` and `iat`.
    pub clock_skew: Duration,
}

/// The SASL settings of one listener.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`.
    pub mechanisms: Vec<SaslMechanism>,
    /// PLAIN users from `listener.name.NAME.plain.sasl.jaas.config` `user_NAME="password"`.
    pub plain_users: BTreeMap<String, String>,
    /// `plain.sasl.users.file`: a file of `user_NAME="password"` entries (a JAAS file's
    /// `KafkaServer` section works as is), read again when it changes.
    pub plain_users_file: Option<PathBuf>,
    /// OAUTHBEARER validation, when OAUTHBEARER is enabled.
    pub oauthbearer: Option<OAuthBearerConfig>,
    /// `connections.max.reauth.ms`: how long an authenticated session lasts before the
    /// client must re-authenticate (KIP-368); `None` when sessions do not expire.
    pub max_reauth: Option<Duration>,
}

// Passwords stay out of logs: only the user names are shown.
impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .field("plain_users_file", &self.plain_users_file)
            .field("oauthbearer", &self.oauthbearer)
            .field("max_reauth", &self.max_reauth)
            .finish()
    }
}

/// The validator Kafka names for signed OAUTHBEARER tokens (both of its class names).
const OAUTHBEARER_VALIDATORS: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];

/// Kafka's validator of unsigned (`alg: none`) tokens, for development only.
const OAUTHBEARER_UNSECURED_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// Listener-scopable SASL properties (`listener.name.NAME.X` or `X`): the security
/// properties declared in `security_props` other than `ssl.*`.
fn is_listener_sasl_property(name: &str) -> bool {
    !name.starts_with("ssl.") && security_prop(name).is_some()
}

/// Properties that follow a mechanism in `listener.name.NAME.<mechanism>.X`.
const MECHANISM_PROPERTIES: &[&str] = &[
    "sasl.jaas.config",
    "sasl.server.callback.handler.class",
    "connections.max.reauth.ms",
];

/// True for a property this module reads.
pub(crate) fn is_sasl_property(key: &str) -> bool {
    if is_listener_sasl_property(key) {
        return true;
    }
    let Some((_, rest)) = key
        .strip_prefix("listener.name.")
        .and_then(|r| r.split_once('.'))
    else {
        return false;
    };
    is_listener_sasl_property(rest)
        || SaslMechanism::ALL.iter().any(|m| {
            rest.strip_prefix(&m.property_prefix())
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| MECHANISM_PROPERTIES.contains(&r))
        })
}

/// Builds a SASL listener's settings; `listener.name.<name>.X` wins over `X`.
pub(crate) fn sasl_config(
    listener: &str,
    props: &BTreeMap<String, String>,
) -> Result<SaslConfig, ConfigError> {
    let lp = crate::listener::ListenerProps::new(listener, props);
    let prefix = lp.prefix();
    let get = |name: &str| lp.get(name);
    let scoped = |name: &str| lp.scoped(name);
    let (key, value) = get("sasl.enabled.mechanisms").ok_or_else(|| {
        ConfigError::invalid(
            "sasl.enabled.mechanisms",
            "",
            format!(
                "listener {listener} is SASL: name its mechanisms (PLAIN, SCRAM-SHA-256, \
                 SCRAM-SHA-512, OAUTHBEARER); Kafka's default GSSAPI (Kerberos) is not supported"
            ),
        )
    })?;
    let mut mechanisms = Vec::new();
    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m = SaslMechanism::from_name(name).ok_or_else(|| {
            ConfigError::invalid(
                &key,
                value,
                format!(
                    "`{name}` is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER are)"
                ),
            )
        })?;
        if !mechanisms.contains(&m) {
            mechanisms.push(m);
        }
    }
    if mechanisms.is_empty() {
        return Err(ConfigError::invalid(&key, value, "no mechanism given"));
    }

    let mut plain_users = BTreeMap::new();
    if let Some((_, jaas)) = scoped("plain.sasl.jaas.config") {
        plain_users = parse_plain_users(jaas);
    }
    let plain_users_file = get("plain.sasl.users.file").map(|(_, v)| PathBuf::from(v));
    if mechanisms.contains(&SaslMechanism::Plain)
        && plain_users.is_empty()
        && plain_users_file.is_none()
    {
        return Err(ConfigError::invalid(
            &format!("{prefix}plain.sasl.jaas.config"),
            "",
            format!(
                "listener {listener} offers PLAIN and needs its users: user_NAME=\"password\" \
                 entries here, or plain.sasl.users.file"
            ),
        ));
    }

    let oauthbearer = if mechanisms.contains(&SaslMechanism::OAuthBearer) {
        Some(oauthbearer_config(listener, &get, &scoped)?)
    } else {
        None
    };

    // Kafka lets `listener.name.NAME.<mechanism>.connections.max.reauth.ms` refine it; one
    // value per listener is kept here, the listener's or the broker's.
    let max_reauth = match get("connections.max.reauth.ms") {
        None => None,
        Some((k, v)) => match crate::parse_i64(&k, v, 0)? {
            0 => None,
            ms => Some(Duration::from_millis(ms as u64)),
        },
    };
    for m in &mechanisms {
        if let Some((k, v)) = scoped(&format!(
            "{}.connections.max.reauth.ms",
            m.property_prefix()
        )) {
            return Err(ConfigError::invalid(
                &k,
                v,
                "set connections.max.reauth.ms for the whole listener instead",
            ));
        }
    }
    Ok(SaslConfig {
        mechanisms,
        plain_users,
        plain_users_file,
        oauthbearer,
        max_reauth,
    })
}

type Lookup<'a> = dyn Fn(&str) -> Option<(String, &'a str)> + 'a;

fn oauthbearer_config<'a>(
    listener: &str,
    get: &Lookup<'a>,
    scoped: &Lookup<'a>,
) -> Result<OAuthBearerConfig, ConfigError> {
    let mut unsecured = false;
    if let Some((k, v)) = scoped("oauthbearer.sasl.server.callback.handler.class") {
        if v == OAUTHBEARER_UNSECURED_VALIDATOR {
            unsecured = true;
        } else if !OAUTHBEARER_VALIDATORS.contains(&v) {
            return Err(ConfigError::invalid(
                &k,
                v,
                "Kafka's OAuthBearerValidatorCallbackHandler (signed JWTs) and \
                 OAuthBearerUnsecuredValidatorCallbackHandler are supported",
            ));
        }
    }
    let clock_skew = match get("sasl.oauthbearer.clock.skew.seconds") {
        None => Duration::from_secs(30),
        Some((k, v)) => Duration::from_secs(crate::parse_i64(&k, v, 0)? as u64),
    };
    let sub_claim_name = get("sasl.oauthbearer.sub.claim.name")
        .map_or_else(|| "sub".to_string(), |(_, v)| v.to_string());
    if unsecured {
        return Ok(OAuthBearerConfig {
            jwks_file: None,
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name,
            clock_skew,
        });
    }
    let (key, url) = get("sasl.oauthbearer.jwks.endpoint.url").ok_or_else(|| {
        ConfigError::invalid(
            "sasl.oauthbearer.jwks.endpoint.url",
            "",
            format!(
                "listener {listener} offers OAUTHBEARER and needs the issuer's keys: a file: URL \
                 of a JWKS file (or, for development only, Kafka's unsecured validator named in \
                 listener.name.{}.oauthbearer.sasl.server.callback.handler.class)",
                listener.to_ascii_lowercase()
            ),
        )
    })?;
    let path = url
        .strip_prefix("file://")
        .or_else(|| url.strip_prefix("file:"))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ConfigError::invalid(
                &key,
                url,
                "only file: URLs are supported; fetch the JWKS into a file",
            )
        })?;
    let expected_audience = get("sasl.oauthbearer.expected.audience")
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    Ok(OAuthBearerConfig {
        jwks_file: Some(PathBuf::from(path)),
        expected_audience,
        expected_issuer: get("sasl.oauthbearer.expected.issuer").map(|(_, v)| v.to_string()),
        sub_claim_name,
        clock_skew,
    })
}

/// The `user_NAME="password"` entries of a JAAS configuration (inline or a file).
pub fn parse_plain_users(jaas: &str) -> BTreeMap<String, String> {
    jaas_options(jaas)
        .into_iter()
        .filter_map(|(name, value)| {
            let user = name.strip_prefix("user_")?;
            (!user.is_empty()).then(|| (user.to_string(), value))
        })
        .collect()
}

/// The value of option `name` (`name="value"`) in a JAAS configuration, such as the
/// `username` and `password` a login module logs in with.
pub(crate) fn jaas_option(jaas: &str, name: &str) -> Option<String> {
    jaas_options(jaas)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Every `name="value"` option of a JAAS configuration, in order; a backslash escapes the
/// next character of a value.
fn jaas_options(jaas: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = jaas;
    while let Some(at) = rest.find('=') {
        let (before, after) = (&rest[..at], &rest[at + 1..]);
        // The option's name: the word right before `=`, after whitespace, `{` or `;`.
        let name = before
            .trim_end()
            .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ';')
            .next()
            .unwrap_or_default()
            .trim();
        let Some(quoted) = after.trim_start().strip_prefix('"') else {
            rest = after;
            continue;
        };
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let Some(end) = end else { break };
        if !name.is_empty() {
            out.push((name.to_string(), value));
        }
        rest = &quoted[end + 1..];
    }
    out
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
    fn jaas_options_allow_spaces_around_the_equals_sign_and_escapes() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required
            username = "broker" password="p\"w" user_alice ="a=b" xuser_mallory="no";"#;
        assert_eq!(jaas_option(jaas, "username").as_deref(), Some("broker"));
        assert_eq!(jaas_option(jaas, "password").as_deref(), Some("p\"w"));
        assert_eq!(
            parse_plain_users(jaas),
            BTreeMap::from([("alice".to_string(), "a=b".to_string())])
        );
    }

    #[test]
    fn plain_users_come_from_the_jaas_entries() {
        let users = parse_plain_users(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="a\"b c";"#,
        );
        assert_eq!(users.len(), 2);
        assert_eq!(users["admin"], "admin-secret");
        assert_eq!(users["alice"], "a\"b c");
        let file = "KafkaServer {\n  PlainLoginModule required\n  user_bob=\"pw\";\n};\n";
        assert_eq!(parse_plain_users(file)["bob"], "pw");
    }

    #[test]
    fn listener_settings_and_mechanisms() {
        let p = props(&[
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            (
                "listener.name.sasl_ssl.plain.sasl.jaas.config",
                r#"PlainLoginModule required user_alice="pw";"#,
            ),
            ("listener.name.sasl_ssl.connections.max.reauth.ms", "5000"),
        ]);
        let c = sasl_config("SASL_SSL", &p).unwrap();
        assert_eq!(
            c.mechanisms,
            vec![SaslMechanism::Plain, SaslMechanism::ScramSha512]
        );
        assert_eq!(c.plain_users["alice"], "pw");
        assert_eq!(c.max_reauth, Some(Duration::from_millis(5000)));
        assert!(is_sasl_property(
            "listener.name.sasl_ssl.plain.sasl.jaas.config"
        ));
        assert!(is_sasl_property(
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"
        ));
        assert!(!is_sasl_property("listener.name.sasl_ssl.ssl.key.password"));
    }

    #[test]
    fn bad_settings_are_named() {
        let e = sasl_config("SASL_PLAINTEXT", &props(&[])).unwrap_err();
        assert!(e.to_string().contains("sasl.enabled.mechanisms"), "{e}");
        let e = sasl_config(
            "SASL_PLAINTEXT",
            &props(&[("sasl.enabled.mechanisms", "GSSAPI")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("GSSAPI"), "{e}");
        let e = sasl_config(
            "SASL_PLAINTEXT",
            &props(&[("sasl.enabled.mechanisms", "PLAIN")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("plain.sasl.jaas.config"), "{e}");
        let e = sasl_config(
            "SASL_PLAINTEXT",
            &props(&[("sasl.enabled.mechanisms", "OAUTHBEARER")]),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("sasl.oauthbearer.jwks.endpoint.url"),
            "{e}"
        );
        let e = sasl_config(
            "SASL_PLAINTEXT",
            &props(&[
                ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                (
                    "sasl.oauthbearer.jwks.endpoint.url",
                    "https://idp/.well-known/jwks.json",
                ),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("file: URLs"), "{e}");
        let c = sasl_config(
            "SASL_PLAINTEXT",
            &props(&[
                ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                (
                    "sasl.oauthbearer.jwks.endpoint.url",
                    "file:///etc/jwks.json",
                ),
                ("sasl.oauthbearer.expected.audience", "kafka, other"),
            ]),
        )
        .unwrap();
        let o = c.oauthbearer.unwrap();
        assert_eq!(o.jwks_file, Some(PathBuf::from("/etc/jwks.json")));
        assert_eq!(o.expected_audience, vec!["kafka", "other"]);
    }
}
