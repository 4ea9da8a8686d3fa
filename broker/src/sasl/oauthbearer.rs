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

/// Validates the client's message against the issuer's keys, or as an unsigned token
/// when `jwks` is `None`; the session ends with the token.
pub(super) fn authenticate(
    config: &OAuthBearerConfig,
    jwks: Option<&JwkSet>,
    message: &[u8],
) -> Step {
    let Some(token) = bearer_token(message) else {
        return Step::failure(
            None,
            "Authentication failed: invalid OAUTHBEARER client message",
        );
    };
    let claims = match jwks {
        Some(jwks) => signed_claims(config, jwks, token),
        None => unsigned_claims(config, token),
    };
    let claims = match claims {
        Ok(c) => c,
        Err(reason) => return Step::failure(None, format!("Authentication failed: {reason}")),
    };
    let Some(subject) = claims
        .get(&config.sub_claim_name)
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
    else {
        return Step::failure(
            None,
            format!(
                "Authentication failed: the token has no `{}` claim to name its principal",
                config.sub_claim_name
            ),
        );
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

/// The claims of an unsigned token (`alg: none`, empty signature), as Kafka's unsecured
/// validator takes them: `exp` must lie ahead, within the clock skew.
fn unsigned_claims(config: &OAuthBearerConfig, token: &str) -> Result<serde_json::Value, String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(""), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the token is not an unsigned JWT".into());
    };
    let decode = |part: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|e| format!("the token is not an unsigned JWT: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("the token is not an unsigned JWT: {e}"))
    };
    if decode(header)?.get("alg").and_then(|a| a.as_str()) != Some("none") {
        return Err("the token is signed, but this listener takes only unsigned tokens".into());
    }
    let claims = decode(payload)?;
    let exp = claims
        .get("exp")
        .and_then(|e| e.as_f64())
        .ok_or("the token has no `exp` claim")?;
    let now = sluice_storage::now_ms() as f64 / 1000.0;
    if exp + config.clock_skew.as_secs_f64() < now {
        return Err("the token is not valid: ExpiredSignature".into());
    }
    Ok(claims)
}

/// The claims of a token signed by a key of the issuer's JWKS.
fn signed_claims(
    config: &OAuthBearerConfig,
    jwks: &JwkSet,
    token: &str,
) -> Result<serde_json::Value, String> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| format!("the token is not a JWT: {e}"))?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    };
    let jwk = jwk.ok_or_else(|| {
        format!(
            "no key of the issuer matches the token's key id {:?}",
            header.kid.as_deref().unwrap_or("")
        )
    })?;
    let key =
        DecodingKey::from_jwk(jwk).map_err(|e| format!("the issuer's key cannot be used: {e}"))?;
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
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("the token is not valid: {e}"))
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
