//! The declarations of the TLS and SASL properties a listener's security settings read
//! (`tls.rs`, `sasl.rs`), each also under `listener.name.<listener>.`. The key and trust
//! stores are Kafka's `SslConfigs.RECONFIGURABLE_CONFIGS`: dynamic only under a prefix.

use crate::def::{BrokerProp, KafkaDefault, Role, UnderListener};
use crate::describe::ConfigType;
use crate::dynamic::DynamicMode::PerBroker;

/// A security property; with `dynamic`, Kafka also updates it per broker at run time.
const fn security(
    name: &'static str,
    config_type: ConfigType,
    dynamic: bool,
    default: KafkaDefault,
    doc: &'static str,
) -> BrokerProp {
    BrokerProp {
        name,
        config_type: Some(config_type),
        default,
        dynamic: if dynamic { Some(PerBroker) } else { None },
        doc,
        role: Role::Security,
        synonyms: &[],
        under_listener: UnderListener::PerBroker,
    }
}

use ConfigType::{List, Long, Password, String as Str};
use KafkaDefault::{Null, Sluice, Value};
use UnderListener::Required;

/// TLS and SASL properties.
#[rustfmt::skip]
pub(crate) static SECURITY_PROPS: &[BrokerProp] = &[
    security("ssl.keystore.type", Str, true, Value("JKS"), "Only PEM: a key store in another format must be converted.").under_listener(Required),
    security("ssl.keystore.location", Str, true, Null, "PEM file of the listener's certificate chain and private key; reloaded when it changes.").under_listener(Required),
    security("ssl.keystore.password", Password, true, Null, "Not needed for PEM key stores.").under_listener(Required),
    security("ssl.key.password", Password, true, Null, "Password of an encrypted PKCS#8 private key.").under_listener(Required),
    security("ssl.truststore.type", Str, true, Value("JKS"), "Only PEM: a trust store in another format must be converted.").under_listener(Required),
    security("ssl.truststore.location", Str, true, Null, "PEM file of the CA certificates client certificates are checked against.").under_listener(Required),
    security("ssl.truststore.password", Password, true, Null, "Not needed for PEM trust stores.").under_listener(Required),
    security("ssl.client.auth", Str, true, Value("none"), "required, requested or none: whether clients present a certificate."),
    security("ssl.enabled.protocols", List, true, Value("TLSv1.2,TLSv1.3"), "TLS versions offered."),
    security("ssl.protocol", Str, true, Value("TLSv1.3"), "Accepted for compatibility; ssl.enabled.protocols decides."),
    security("ssl.principal.mapping.rules", List, false, Sluice, "Rules mapping a client certificate's subject to a principal, as Kafka's."),
    security("ssl.endpoint.identification.algorithm", Str, true, Value("https"), "https: a broker connecting to another over the inter-broker listener checks that its certificate names its advertised host; empty: it does not. A server does not check client host names."),
    security("ssl.cipher.suites", List, true, Value(""), "Accepted for compatibility; rustls's safe defaults are used."),
    security("sasl.enabled.mechanisms", List, true, Value("GSSAPI"), "SASL mechanisms offered: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER."),
    security("connections.max.reauth.ms", Long, false, Sluice, "How long an authenticated session lasts before the client must re-authenticate (KIP-368)."),
    security("plain.sasl.users.file", Str, false, Sluice, "File of user_NAME=\"password\" entries for PLAIN (Sluice's own)."),
    security("sasl.oauthbearer.jwks.endpoint.url", Str, false, Sluice, "Where OAUTHBEARER's signing keys are fetched from."),
    security("sasl.oauthbearer.jwks.endpoint.refresh.ms", Long, false, Sluice, "How often the signing keys are fetched again."),
    security("sasl.oauthbearer.expected.audience", List, false, Sluice, "Audiences a token must name."),
    security("sasl.oauthbearer.expected.issuer", Str, false, Sluice, "Issuer a token must name."),
    security("sasl.oauthbearer.sub.claim.name", Str, false, Sluice, "The claim that names the principal."),
    security("sasl.oauthbearer.scope.claim.name", Str, false, Sluice, "The claim that holds the scopes."),
    security("sasl.oauthbearer.clock.skew.seconds", ConfigType::Int, false, Sluice, "Leeway on a token's exp, nbf and iat."),
];

/// The declaration of a property a listener's security settings read.
pub(crate) fn security_prop(name: &str) -> Option<&'static BrokerProp> {
    SECURITY_PROPS.iter().find(|p| p.name == name)
}
