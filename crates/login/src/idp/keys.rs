//! The IdP's ID-token signing keys: a JWKS parsed into the auth crate's ring verification keys
//! (the same parsing every issuer's keys get), and the rule for which key may verify which
//! algorithm. Symmetric (`oct`) keys, encryption keys and unknown key
//! types are dropped at parse time, so HMAC (and `none`) can never verify an ID token.

use mcpgate_auth::keys::VerifyKey;
use mcpgate_config::Algorithm;
use serde_json::{Map, Value};

/// Parses a JWKS document. Unusable keys are skipped; no `keys` array is an error.
pub(crate) fn parse_jwks(doc: &Map<String, Value>) -> Result<Vec<VerifyKey>, String> {
    let Some(Value::Array(keys)) = doc.get("keys") else {
        return Err("JWKS has no \"keys\" array".into());
    };
    Ok(keys.iter().filter_map(VerifyKey::from_jwk).collect())
}

/// The keys that may verify a token with `kid` and `alg`. Without a `kid`, only when exactly one
/// key fits (no trial verification across keys).
pub(crate) fn candidates<'k>(
    keys: &'k [VerifyKey],
    kid: Option<&str>,
    alg: Algorithm,
) -> Vec<&'k VerifyKey> {
    let fits = keys.iter().filter(|k| k.can_verify(alg));
    match kid {
        Some(kid) => fits.filter(|k| k.kid.as_deref() == Some(kid)).collect(),
        None => {
            let all: Vec<&VerifyKey> = fits.collect();
            if all.len() == 1 {
                all
            } else {
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ec(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    fn jwks(keys: Vec<Value>) -> Vec<VerifyKey> {
        parse_jwks(json!({ "keys": keys }).as_object().unwrap()).unwrap()
    }

    #[test]
    fn symmetric_and_encryption_keys_are_dropped() {
        let keys = jwks(vec![
            json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
                   "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            ec("a"),
        ]);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("a"));
    }

    #[test]
    fn selection_by_kid_and_algorithm() {
        let keys = jwks(vec![ec("a"), ec("b")]);
        assert_eq!(candidates(&keys, Some("a"), Algorithm::ES256).len(), 1);
        assert!(candidates(&keys, Some("a"), Algorithm::RS256).is_empty());
        assert!(candidates(&keys, Some("zz"), Algorithm::ES256).is_empty());
        // Two keys fit and the token names none: refuse rather than try both.
        assert!(candidates(&keys, None, Algorithm::ES256).is_empty());
        assert_eq!(candidates(&keys[..1], None, Algorithm::ES256).len(), 1);
    }
}
