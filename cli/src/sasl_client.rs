//! SASL authentication of a new connection (SaslHandshake, then SaslAuthenticate): PLAIN,
//! and SCRAM-SHA-256/512 as RFC 5802 describes the client side (no well-kept crate does
//! the client without pulling in a second TLS or async stack); the key math is
//! `sluice_protocol::scram`, which the broker's side uses too.

use base64::Engine;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use rand::Rng;
use sluice_protocol::scram::{encode_saslname, xor, ScramHash};

use crate::connection::Connection;
use crate::error::CliError;
use crate::security::{Mechanism, SaslCredentials};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Authenticates `conn` with `creds`; a refusal carries the broker's error and message.
pub(crate) async fn authenticate(
    conn: &mut Connection,
    creds: &SaslCredentials,
) -> Result<(), CliError> {
    let mechanism = creds.mechanism.name();
    let version = conn.version::<SaslHandshakeRequest>()?;
    let resp = conn
        .send(
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
            version,
        )
        .await?;
    let addr = conn.addr().to_string();
    let context = || format!("SASL {mechanism} with {addr}");
    if resp.error_code != 0 {
        let enabled: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(CliError::Kafka {
            context: context(),
            code: resp.error_code,
            message: Some(format!("the broker enables {}", enabled.join(", "))),
        });
    }
    match creds.mechanism {
        Mechanism::Plain => {
            let token = format!("\0{}\0{}", creds.username, creds.password);
            exchange(conn, token.into_bytes(), &context).await?;
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let mut scram = Scram::new(creds, nonce());
            let server_first = exchange(conn, scram.client_first(), &context).await?;
            let client_final = scram
                .client_final(&server_first)
                .map_err(|why| protocol(conn, why))?;
            let server_final = exchange(conn, client_final, &context).await?;
            scram
                .check_server_final(&server_final)
                .map_err(|why| protocol(conn, why))?;
        }
    }
    Ok(())
}

fn protocol(conn: &Connection, reason: String) -> CliError {
    CliError::Protocol {
        addr: conn.addr().to_string(),
        api: "SaslAuthenticate",
        reason,
    }
}

/// One SaslAuthenticate round trip: our bytes out, the broker's back.
async fn exchange(
    conn: &mut Connection,
    bytes: Vec<u8>,
    context: &impl Fn() -> String,
) -> Result<Vec<u8>, CliError> {
    let version = conn.version::<SaslAuthenticateRequest>()?;
    let resp = conn
        .send(
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
            version,
        )
        .await?;
    CliError::check(resp.error_code, resp.error_message.as_ref(), context)?;
    Ok(resp.auth_bytes.to_vec())
}

/// A random printable nonce (no `,`).
fn nonce() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The client side of one SCRAM exchange.
struct Scram {
    hash: ScramHash,
    username: String,
    password: String,
    client_nonce: String,
    /// Set by `client_final`: what the server's signature must be.
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    fn new(creds: &SaslCredentials, client_nonce: String) -> Self {
        Scram {
            hash: if creds.mechanism == Mechanism::ScramSha512 {
                ScramHash::Sha512
            } else {
                ScramHash::Sha256
            },
            username: encode_saslname(&creds.username),
            password: creds.password.clone(),
            client_nonce,
            server_signature: None,
        }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.username, self.client_nonce)
    }

    fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare()).into_bytes()
    }

    /// The client-final message for the server-first message.
    fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| "the SCRAM server-first message is not UTF-8".to_string())?;
        let attr = |name: &str| {
            text.split(',')
                .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                .ok_or_else(|| format!("the SCRAM server-first message has no {name}: {text:?}"))
        };
        let nonce = attr("r")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("the SCRAM server nonce does not extend the client's".to_string());
        }
        let salt = B64
            .decode(attr("s")?)
            .map_err(|_| "the SCRAM salt is not base64".to_string())?;
        let iterations: u32 = attr("i")?
            .parse()
            .map_err(|_| "the SCRAM iteration count is not a number".to_string())?;
        let hash = self.hash;
        let salted = hash.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = hash.client_key(&salted);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare());
        let signature = hash.hmac(&hash.stored_key(&client_key), auth_message.as_bytes());
        let proof = xor(&client_key, &signature);
        let server_key = hash.server_key(&salted);
        self.server_signature = Some(hash.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server's signature: the broker knew the password too.
    fn check_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the broker refused the SCRAM proof: {e}"));
        }
        let got = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.trim()).ok())
            .ok_or_else(|| format!("unexpected SCRAM server-final message {text:?}"))?;
        if Some(&got) != self.server_signature.as_ref() {
            return Err(
                "the broker's SCRAM signature is wrong: it does not know the password".to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let creds = SaslCredentials {
            mechanism: Mechanism::ScramSha256,
            username: "user".into(),
            password: "pencil".into(),
        };
        let mut s = Scram::new(&creds, "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            String::from_utf8(s.client_final(server_first).unwrap()).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            s.check_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
        assert!(s.check_server_final(b"v=AAAA").is_err());
    }
}
