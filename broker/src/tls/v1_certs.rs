//! Client certificates in X.509 version 1 (no extensions, as `openssl x509 -req` makes
//! without `-extfile`) are refused by rustls' WebPKI verifier, which the JVM accepts. They
//! stay refused: a v1 certificate cannot say whether it is a CA or what it may be used
//! for, and WebPKI has no safe path for one. This verifier only puts the reason in words
//! an operator can act on into the refusal (logged with the peer when the handshake fails).

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme,
};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

/// Why a v1 client certificate is refused, and how to re-issue it.
#[derive(thiserror::Error)]
#[error(
    "the client certificate {which}\"{subject}\" is X.509 version 1 (it has no extensions), \
     which Sluice's TLS stack does not accept; re-issue it as X.509 v3, e.g. sign the CSR \
     with `openssl x509 -req ... -extfile v3.ext` where v3.ext holds \
     `basicConstraints=CA:FALSE` and `extendedKeyUsage=clientAuth`"
)]
pub(crate) struct V1Certificate {
    /// "" for the client's own certificate, "chain entry " for an intermediate.
    which: &'static str,
    subject: String,
}

// rustls shows an `Other` certificate error by its Debug form: make that the explanation.
impl std::fmt::Debug for V1Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Delegates to the WebPKI verifier and explains a refusal caused by a v1 certificate.
#[derive(Debug)]
pub(crate) struct ExplainV1Certificates(pub(crate) Arc<dyn ClientCertVerifier>);

/// The subject of `cert` if it parses as an X.509 v1 certificate.
fn v1_subject(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    (parsed.version() == X509Version::V1).then(|| parsed.subject().to_string())
}

impl ClientCertVerifier for ExplainV1Certificates {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.0
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| {
                let v1 = std::iter::once(("", end_entity))
                    .chain(intermediates.iter().map(|c| ("chain entry ", c)))
                    .find_map(|(which, c)| v1_subject(c).map(|subject| (which, subject)));
                match v1 {
                    Some((which, subject)) => Error::InvalidCertificate(CertificateError::Other(
                        OtherError(Arc::new(V1Certificate { which, subject })),
                    )),
                    None => e,
                }
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
