//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks them: no channel
//! binding, credentials (salt, iterations, stored key, server key) from the broker's
//! credential store, and the same failure for an unknown user as for a wrong password.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::Rng;
use sluice_protocol::scram::{decode_saslname, xor};
use sluice_storage::ScramCredential;

use crate::scram_store::ScramStore;
use subtle::ConstantTimeEq;

use super::Step;

/// The fewest PBKDF2 iterations Kafka accepts for a SCRAM credential.
pub(crate) const MIN_ITERATIONS: i32 = 4096;
/// The most PBKDF2 iterations Kafka accepts in AlterUserScramCredentials.
pub(crate) const MAX_ITERATIONS: i32 = 16384;

pub(crate) use sluice_protocol::scram::ScramHash;

/// The stored credential for a salted password: what the server needs, and no more.
pub(crate) fn credential(
    hash: ScramHash,
    salt: &[u8],
    iterations: i32,
    salted_password: &[u8],
) -> ScramCredential {
    ScramCredential {
        salt: salt.to_vec(),
        iterations,
        stored_key: hash.stored_key(&hash.client_key(salted_password)),
        server_key: hash.server_key(salted_password),
    }
}

/// A random printable nonce (no `,`).
fn nonce() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// One SCRAM exchange on one connection.
pub(crate) struct ScramServer {
    hash: ScramHash,
    state: State,
}

enum State {
    ClientFirst,
    ClientFinal {
        user: String,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        /// `None` for an unknown user: the exchange goes on and fails at the proof.
        credential: Option<ScramCredential>,
    },
    Done,
}

impl ScramServer {
    /// A new exchange for `hash`'s mechanism.
    pub(crate) fn new(hash: ScramHash) -> Self {
        ScramServer {
            hash,
            state: State::ClientFirst,
        }
    }

    fn invalid(&self, user: Option<&str>) -> Step {
        Step::failure(
            user,
            format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                self.hash.mechanism()
            ),
        )
    }

    /// Takes the client's next message.
    pub(crate) fn step(&mut self, credentials: &ScramStore, message: &[u8]) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => self.client_first(credentials, message),
            State::ClientFinal {
                user,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
                credential,
            } => {
                let Ok(message) = std::str::from_utf8(message) else {
                    return self.invalid(Some(&user));
                };
                let Some((without_proof, proof)) = message.rsplit_once(",p=") else {
                    return Step::failure(
                        Some(&user),
                        "Authentication failed: invalid SCRAM client-final message",
                    );
                };
                let mut attrs = without_proof.split(',');
                let channel = attrs.next().and_then(|a| a.strip_prefix("c="));
                let client_nonce = attrs.next().and_then(|a| a.strip_prefix("r="));
                // Kafka checks that the nonce ends with the server's: librdkafka before 2.1
                // sends its own nonce twice.
                if channel != Some(BASE64.encode(gs2_header.as_bytes()).as_str())
                    || !client_nonce.is_some_and(|n| n.ends_with(nonce.as_str()))
                {
                    return Step::failure(
                        Some(&user),
                        "Authentication failed: invalid SCRAM client-final message",
                    );
                }
                let (Ok(proof), Some(credential)) = (BASE64.decode(proof), credential) else {
                    return self.invalid(Some(&user));
                };
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let client_signature = self
                    .hash
                    .hmac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != client_signature.len() {
                    return self.invalid(Some(&user));
                }
                let client_key = xor(&proof, &client_signature);
                if !bool::from(
                    self.hash
                        .stored_key(&client_key)
                        .ct_eq(&credential.stored_key),
                ) {
                    return self.invalid(Some(&user));
                }
                let server_signature = self
                    .hash
                    .hmac(&credential.server_key, auth_message.as_bytes());
                Step::Success {
                    response: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
                    principal: format!("User:{user}"),
                    credential_expiry_ms: None,
                }
            }
            State::Done => Step::failure(None, "Authentication failed: SCRAM exchange is over"),
        }
    }

    fn client_first(&mut self, credentials: &ScramStore, message: &[u8]) -> Step {
        let bad = || {
            Step::failure(
                None,
                "Authentication failed: invalid SCRAM client-first message",
            )
        };
        let Ok(message) = std::str::from_utf8(message) else {
            return bad();
        };
        // gs2-header: a channel-binding flag, an optional authzid, then the bare message.
        let mut parts = message.splitn(3, ',');
        let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return bad();
        };
        if cbind.starts_with("p=") {
            return Step::failure(
                None,
                "Authentication failed: channel binding is not supported",
            );
        }
        if cbind != "n" && cbind != "y" {
            return bad();
        }
        let gs2_header = format!("{cbind},{authzid},");
        let mut user = None;
        let mut client_nonce = None;
        for (i, attr) in bare.split(',').enumerate() {
            match (i, attr.split_once('=')) {
                (0, Some(("n", name))) => user = decode_saslname(name),
                (1, Some(("r", n))) if !n.is_empty() => client_nonce = Some(n),
                (_, Some(("m", _))) => return bad(),
                (_, Some(("tokenauth", v))) if v.eq_ignore_ascii_case("true") => {
                    return Step::failure(
                        None,
                        "Authentication failed: delegation tokens are not supported",
                    )
                }
                (i, Some(_)) if i >= 2 => {}
                _ => return bad(),
            }
        }
        let (Some(user), Some(client_nonce)) = (user, client_nonce) else {
            return bad();
        };
        if let Some(a) = authzid.strip_prefix("a=") {
            if decode_saslname(a).as_deref() != Some(user.as_str()) {
                return Step::failure(
                    Some(&user),
                    "Authentication failed: Client requested an authorization id that is different from username",
                );
            }
        } else if !authzid.is_empty() {
            return bad();
        }
        let credential = match credentials.get(&user, self.hash.mechanism()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reading SCRAM credentials failed");
                return Step::failure(
                    Some(&user),
                    "Authentication failed: credentials could not be read",
                );
            }
        };
        // An unknown user is answered with a salt like any other, so that the answer does
        // not tell which users exist; the proof can never match.
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                self.hash
                    .hash(format!("sluice-unknown-user:{user}").as_bytes())[..16]
                    .to_vec(),
                MIN_ITERATIONS,
            ),
        };
        let nonce = format!("{client_nonce}{}", nonce());
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(&salt));
        let response = server_first.clone().into_bytes();
        self.state = State::ClientFinal {
            user,
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
            credential,
        };
        Step::Challenge(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SCRAM client, written from RFC 5802, to drive the server.
    fn client_final(
        hash: ScramHash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let attrs: Vec<&str> = server_first.split(',').collect();
        let nonce = attrs[0].strip_prefix("r=").unwrap();
        let salt = BASE64.decode(attrs[1].strip_prefix("s=").unwrap()).unwrap();
        let iterations: u32 = attrs[2].strip_prefix("i=").unwrap().parse().unwrap();
        let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = hash.client_key(&salted);
        let stored_key = hash.stored_key(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let proof = xor(&client_key, &hash.hmac(&stored_key, auth.as_bytes()));
        let server_key = hash.server_key(&salted);
        (
            format!("{without_proof},p={}", BASE64.encode(proof)),
            hash.hmac(&server_key, auth.as_bytes()),
        )
    }

    fn store(hash: ScramHash) -> (tempfile::TempDir, ScramStore) {
        let dir = tempfile::tempdir().unwrap();
        let c = sluice_storage::Credentials::open_offline(dir.path()).unwrap();
        let salted = hash.salted_password(b"pencil", b"saltsalt", 4096);
        let cred = credential(hash, b"saltsalt", 4096, &salted);
        c.apply(&[], &[("us,er".into(), hash.mechanism().into(), cred)])
            .unwrap();
        (dir, ScramStore::new(c))
    }

    fn run(hash: ScramHash, user: &str, password: &str) -> Step {
        let (_dir, creds) = store(hash);
        let mut server = ScramServer::new(hash);
        let bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
        let Step::Challenge(server_first) = server.step(&creds, format!("n,,{bare}").as_bytes())
        else {
            panic!("no challenge")
        };
        let server_first = String::from_utf8(server_first).unwrap();
        let (fin, signature) = client_final(hash, password, &bare, &server_first);
        let step = server.step(&creds, fin.as_bytes());
        if let Step::Success { response, .. } = &step {
            assert_eq!(
                response,
                format!("v={}", BASE64.encode(signature)).as_bytes()
            );
        }
        step
    }

    #[test]
    fn both_hashes_accept_the_password_and_refuse_others() {
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            assert!(matches!(
                run(hash, "us=2Cer", "pencil"),
                Step::Success { principal, .. } if principal == "User:us,er"
            ));
            assert!(matches!(run(hash, "us=2Cer", "pen"), Step::Failure { .. }));
            assert!(matches!(
                run(hash, "nobody", "pencil"),
                Step::Failure { .. }
            ));
        }
    }

    #[test]
    fn malformed_first_messages_fail() {
        let (_dir, creds) = store(ScramHash::Sha256);
        for m in [
            &b"p=tls-unique,,n=a,r=x"[..],
            b"n,,r=x",
            b"n,,n=a",
            b"n,,n=a,r=x,tokenauth=true",
            b"n,a=b,n=a,r=x",
            b"\xff",
        ] {
            let mut server = ScramServer::new(ScramHash::Sha256);
            assert!(
                matches!(server.step(&creds, m), Step::Failure { .. }),
                "{m:?}"
            );
        }
    }
}
