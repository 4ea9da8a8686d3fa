//! OAUTHBEARER (RFC 7628, KIP-255): the client's one message carries a JWT, validated as
//! Kafka's OAuthBearerValidatorCallbackHandler does: signature by a key of the issuer's
//! JWKS, `exp` (and `nbf`, `iat`) within the clock skew, the expected audience and issuer
//! when configured, and the principal from the subject claim.

use std::path::Path;

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use sluice_config::OAuthBearerConfig;

use super::Step;

/// Reads a JWKS file.
pub(super) fn load_jwks(path: &Path) -> anyhow::Result<JwkSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading JWKS file {}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JWKS (RFC 7517) document", path.display()))?;
    if set.keys.is_empty() {
        anyhow::bail!("{} holds no keys", path.display());
    }
    Ok(set)
}

/// The token of a client's first message: `gs2-header ^A auth=Bearer TOKEN ^A ... ^A^A`.
fn bearer_token(message: &[u8]) -> Option<&str> {
    let message = std::str::from_utf8(message).ok()?;
    let (gs2, rest) = message.split_once('\u{1}')?;
    if !gs2.starts_with("n,") && !gs2.starts_with("y,") {
        return None;
    }
    let rest = rest.strip_suffix("\u{1}\u{1}")?;
    rest.split('\u{1}').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        if k != "auth" {
            return None;
        }
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("Bearer")
            .then_some(token.trim())
    })
}

/// Validates the client's message; the session ends with the token.
pub(super) fn authenticate(config: &OAuthBearerConfig, jwks: &JwkSet, message: &[u8]) -> Step {
    let Some(token) = bearer_token(message) else {
        return Step::failure(
            None,
            "Authentication failed: invalid OAUTHBEARER client message",
        );
    };
    let fail = |reason: String| Step::failure(None, format!("Authentication failed: {reason}"));
    let header = match jsonwebtoken::decode_header(token) {
        Ok(h) => h,
        Err(e) => return fail(format!("the token is not a JWT: {e}")),
    };
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    };
    let Some(jwk) = jwk else {
        return fail(format!(
            "no key of the issuer matches the token's key id {:?}",
            header.kid.as_deref().unwrap_or("")
        ));
    };
    let key = match DecodingKey::from_jwk(jwk) {
        Ok(k) => k,
        Err(e) => return fail(format!("the issuer's key cannot be used: {e}")),
    };
    let mut validation = Validation::new(header.alg);
    validation.leeway = config.clock_skew.as_secs();
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    if config.expected_audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&config.expected_audience);
    }
    if let Some(issuer) = &config.expected_issuer {
        validation.set_issuer(&[issuer]);
    }
    let claims = match jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return fail(format!("the token is not valid: {e}")),
    };
    let Some(subject) = claims
        .get(&config.sub_claim_name)
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
    else {
        return fail(format!(
            "the token has no `{}` claim to name its principal",
            config.sub_claim_name
        ));
    };
    let expiry_ms = claims
        .get("exp")
        .and_then(|e| e.as_f64())
        .map(|e| (e * 1000.0) as i64);
    Step::Success {
        response: Vec::new(),
        principal: format!("User:{subject}"),
        credential_expiry_ms: expiry_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_the_client_message() {
        assert_eq!(
            bearer_token(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01"),
            Some("abc.def.ghi")
        );
        assert_eq!(
            bearer_token(b"n,a=alice,\x01host=x\x01auth=Bearer t\x01ext=1\x01\x01"),
            Some("t")
        );
        assert_eq!(bearer_token(b"n,,\x01auth=Basic t\x01\x01"), None);
        assert_eq!(bearer_token(b"n,,\x01auth=Bearer t\x01"), None);
        assert_eq!(bearer_token(b"garbage"), None);
    }
}
