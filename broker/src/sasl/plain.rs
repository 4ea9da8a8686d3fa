//! PLAIN (RFC 4616): one message, `authzid NUL authcid NUL password`, checked against
//! the listener's configured users.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::Step;

/// Checks one PLAIN message against `users`.
pub(super) fn authenticate(users: &BTreeMap<String, String>, message: &[u8]) -> Step {
    let mut parts = message.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Step::failure(None, "Authentication failed: invalid SASL/PLAIN message");
    };
    let (Ok(authzid), Ok(user)) = (std::str::from_utf8(authzid), std::str::from_utf8(user)) else {
        return Step::failure(None, "Authentication failed: invalid SASL/PLAIN message");
    };
    if user.is_empty() {
        return Step::failure(None, "Authentication failed: username not specified");
    }
    if !authzid.is_empty() && authzid != user {
        return Step::failure(
            Some(user),
            "Authentication failed: Client requested an authorization id that is different from username",
        );
    }
    // The same answer for an unknown user and a wrong password, and a comparison that
    // takes as long for both.
    let expected = users.get(user).map(String::as_bytes);
    let matches = match expected {
        Some(e) => bool::from(e.ct_eq(password)),
        None => {
            let _ = password.ct_eq(password);
            false
        }
    };
    if matches {
        Step::Success {
            response: Vec::new(),
            principal: format!("User:{user}"),
            credential_expiry_ms: None,
        }
    } else {
        Step::failure(
            Some(user),
            "Authentication failed: Invalid username or password",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("alice".to_string(), "secret".to_string())].into()
    }

    #[test]
    fn right_password_wrong_password_unknown_user() {
        assert!(matches!(
            authenticate(&users(), b"\0alice\0secret"),
            Step::Success { principal, .. } if principal == "User:alice"
        ));
        assert!(matches!(
            authenticate(&users(), b"alice\0alice\0secret"),
            Step::Success { .. }
        ));
        assert!(matches!(
            authenticate(&users(), b"\0alice\0wrong"),
            Step::Failure { .. }
        ));
        assert!(matches!(
            authenticate(&users(), b"\0bob\0secret"),
            Step::Failure { .. }
        ));
        assert!(matches!(
            authenticate(&users(), b"bob\0alice\0secret"),
            Step::Failure { .. }
        ));
        assert!(matches!(
            authenticate(&users(), b"alice-secret"),
            Step::Failure { .. }
        ));
    }
}
