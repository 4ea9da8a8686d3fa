//! Kafka's PEM key and trust stores (`ssl.keystore.type=PEM`, KIP-651), which brokers and
//! clients read alike: certificates, and a private key that may be an encrypted PKCS#8
//! key opened with `ssl.key.password`. Callers read the file; this parses its text.

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why a PEM store does not give what was asked of it.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// A `CERTIFICATE` block is not valid PEM.
    #[error("a CERTIFICATE block does not parse: {0}")]
    BadCertificate(pem::Error),
    /// The store holds no `CERTIFICATE` block.
    #[error("no CERTIFICATE block")]
    NoCertificate,
    /// The key is encrypted and no password was given.
    #[error("the key is encrypted and ssl.key.password is not set")]
    NoPassword,
    /// The `ENCRYPTED PRIVATE KEY` block is not an encrypted PKCS#8 key.
    #[error("ENCRYPTED PRIVATE KEY: {0}")]
    BadEncryptedKey(String),
    /// The password does not decrypt the key.
    #[error("the key does not decrypt with ssl.key.password")]
    WrongPassword,
    /// No private key block parses.
    #[error("no private key ({0})")]
    NoKey(pem::Error),
}

/// The `CERTIFICATE` blocks of a store, at least one.
pub fn certificates(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::BadCertificate)?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certs)
}

/// The private key of a store: an `ENCRYPTED PRIVATE KEY` (PKCS#8, decrypted with
/// `password`) or a plain PKCS#8, PKCS#1 or SEC1 key.
pub fn private_key(
    text: &[u8],
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, PemError> {
    // rustls-pki-types skips encrypted blocks, so they are found here and given to pkcs8.
    const BEGIN: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &[u8] = b"-----END ENCRYPTED PRIVATE KEY-----";
    let find = |needle: &[u8]| text.windows(needle.len()).position(|w| w == needle);
    if let (Some(start), Some(end)) = (find(BEGIN), find(END)) {
        let password = password.ok_or(PemError::NoPassword)?;
        let block = text
            .get(start..end + END.len())
            .ok_or_else(|| PemError::BadEncryptedKey("malformed".to_string()))?;
        let (_, der) = pkcs8::der::pem::decode_vec(block)
            .map_err(|e| PemError::BadEncryptedKey(e.to_string()))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| PemError::BadEncryptedKey(e.to_string()))?;
        let plain = info
            .decrypt(password)
            .map_err(|_| PemError::WrongPassword)?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(text).map_err(PemError::NoKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stores_say_what_is_missing() {
        assert!(matches!(certificates(b""), Err(PemError::NoCertificate)));
        assert!(matches!(private_key(b"", None), Err(PemError::NoKey(_))));
        let encrypted =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            private_key(encrypted, None),
            Err(PemError::NoPassword)
        ));
        assert!(matches!(
            private_key(encrypted, Some("x")),
            Err(PemError::BadEncryptedKey(_))
        ));
    }
}
