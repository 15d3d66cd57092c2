//! The ID token (OpenID Connect Core §3.1.3.7): splitting the JWS, the header rules (asymmetric
//! algorithms only, no `crit`), the claim checks (iss, aud, azp, exp, iat, nbf, nonce), and the
//! [`User`] built from verified claims or from a userinfo answer.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mcpgate_config::Algorithm;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use super::{IdpError, User};

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub(crate) const LEEWAY_SECS: u64 = 60;
/// An ID token issued further back than this is refused even if it has not expired: it was
/// just minted by the token endpoint, so an old one is a replay.
const MAX_AGE_SECS: u64 = 10 * 60;

/// A compact JWS, split and decoded but not yet verified.
pub(crate) struct UnverifiedIdToken {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `header.payload`, the signed bytes.
    pub signing_input: String,
    pub signature: Vec<u8>,
    pub claims: Map<String, Value>,
}

/// What the claims must say.
pub(crate) struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The authorize request's nonce; `None` on refresh (OpenID Connect Core §12.2).
    pub nonce: Option<&'a str>,
    pub now: u64,
}

pub(crate) fn invalid(detail: impl Into<String>) -> IdpError {
    IdpError {
        reason: "id_token_invalid",
        detail: detail.into(),
    }
}

/// Splits and decodes the token; refuses HS*, `none`, unknown algorithms and `crit`.
pub(crate) fn parse(token: &str) -> Result<UnverifiedIdToken, IdpError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "not a compact JWS (encrypted ID tokens are not supported)",
        ));
    };
    let header = decode_object(h).ok_or_else(|| invalid("header is not base64url JSON"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::parse)
        .ok_or_else(|| invalid("alg is not an accepted asymmetric algorithm"))?;
    // RFC 7515 §4.1.11: we understand no extension, so any `crit` must be refused.
    if header.contains_key("crit") {
        return Err(invalid("header has crit"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(invalid("kid is not a string")),
    };
    let claims = decode_object(p).ok_or_else(|| invalid("payload is not base64url JSON"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| invalid("signature is not base64url"))?;
    Ok(UnverifiedIdToken {
        alg,
        kid,
        signing_input: format!("{h}.{p}"),
        signature,
        claims,
    })
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// OpenID Connect Core §3.1.3.7 steps 2–11 (the signature is checked by the caller).
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected,
) -> Result<(), IdpError> {
    // Step 2: the issuer, exactly.
    if claims.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
        return Err(invalid("iss is not the configured issuer"));
    }
    check_audience(claims, expected.client_id)?;
    check_times(claims, expected.now)?;
    if let Some(nonce) = expected.nonce {
        check_nonce(claims, nonce)?;
    }
    match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        _ => Err(invalid("sub missing")),
    }
}

/// Steps 3–5: `aud` holds our client id; several audiences need `azp` naming us; an `azp`, if
/// present, must be us.
fn check_audience(claims: &Map<String, Value>, client_id: &str) -> Result<(), IdpError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(invalid("aud missing")),
    };
    if !audiences.contains(&client_id) {
        return Err(invalid("aud does not contain the client id"));
    }
    let azp = claims.get("azp").map(|v| v.as_str());
    match azp {
        Some(Some(a)) if a != client_id => Err(invalid("azp is another client")),
        Some(None) => Err(invalid("azp is not a string")),
        None if audiences.len() > 1 => Err(invalid("several audiences and no azp")),
        _ => Ok(()),
    }
}

/// Steps 9–10: not expired, issued recently (not in the future), and `nbf` if present.
fn check_times(claims: &Map<String, Value>, now: u64) -> Result<(), IdpError> {
    let time = |name: &str| claims.get(name).map(numeric_date);
    let exp = time("exp")
        .flatten()
        .ok_or_else(|| invalid("exp missing or not a number"))?;
    if exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(invalid("expired"));
    }
    let iat = time("iat")
        .flatten()
        .ok_or_else(|| invalid("iat missing or not a number"))?;
    if iat > now + LEEWAY_SECS {
        return Err(invalid("iat is in the future"));
    }
    if iat.saturating_add(MAX_AGE_SECS + LEEWAY_SECS) < now {
        return Err(invalid("issued too long ago"));
    }
    match time("nbf") {
        None => Ok(()),
        Some(Some(nbf)) if nbf <= now + LEEWAY_SECS => Ok(()),
        Some(Some(_)) => Err(invalid("not valid yet (nbf)")),
        Some(None) => Err(invalid("nbf is not a number")),
    }
}

fn numeric_date(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
}

/// Step 11: the nonce we sent, compared in constant time (it binds the token to this browser).
fn check_nonce(claims: &Map<String, Value>, nonce: &str) -> Result<(), IdpError> {
    let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if bool::from(got.as_bytes().ct_eq(nonce.as_bytes())) && !nonce.is_empty() {
        return Ok(());
    }
    Err(IdpError {
        reason: "id_token_nonce_mismatch",
        detail: "the ID token's nonce is not this sign-in's".into(),
    })
}

/// The user from verified ID-token claims or a userinfo answer (`sub` required).
pub(crate) fn user(claims: Map<String, Value>, groups_claim: &str) -> Result<User, IdpError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let sub = text("sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("sub missing"))?;
    // Some IdPs send `"email_verified": "true"`; anything else is unverified.
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let groups = match claims.get(groups_claim) {
        Some(Value::String(g)) => vec![g.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(User {
        sub,
        email: text("email"),
        email_verified,
        name: text("name"),
        groups,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn claims(extra: Value) -> Map<String, Value> {
        let mut c = json!({"iss": "https://idp", "sub": "u1", "aud": "cid",
                           "exp": NOW + 300, "iat": NOW, "nonce": "n-1"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c.as_object().unwrap().clone()
    }

    fn check(c: &Map<String, Value>, nonce: Option<&str>) -> Result<(), &'static str> {
        let expected = Expected {
            issuer: "https://idp",
            client_id: "cid",
            nonce,
            now: NOW,
        };
        check_claims(c, &expected).map_err(|e| e.reason)
    }

    fn detail(c: &Map<String, Value>) -> String {
        let expected = Expected {
            issuer: "https://idp",
            client_id: "cid",
            nonce: Some("n-1"),
            now: NOW,
        };
        check_claims(c, &expected).unwrap_err().detail
    }

    #[test]
    fn a_good_token_passes() {
        assert_eq!(check(&claims(json!({})), Some("n-1")), Ok(()));
        // Extreme numbers neither overflow nor pass where they should not.
        let c = claims(json!({"exp": u64::MAX, "iat": u64::MAX}));
        assert_eq!(check(&c, Some("n-1")), Err("id_token_invalid"));
        assert_eq!(
            check(&claims(json!({"exp": u64::MAX})), Some("n-1")),
            Ok(())
        );
        // Several audiences with azp naming us.
        let c = claims(json!({"aud": ["cid", "other"], "azp": "cid"}));
        assert_eq!(check(&c, Some("n-1")), Ok(()));
        // Refresh: no nonce expected, a stale one ignored.
        assert_eq!(check(&claims(json!({"nonce": null})), None), Ok(()));
    }

    #[test]
    fn each_claim_rule_refuses() {
        let bad = [
            (json!({"iss": "https://idp/"}), "iss"),
            (json!({"iss": null}), "iss"),
            (json!({"aud": "other"}), "aud does not"),
            (json!({"aud": null}), "aud missing"),
            (json!({"aud": ["cid", "other"]}), "no azp"),
            (json!({"azp": "other"}), "azp is another"),
            (json!({"exp": NOW - LEEWAY_SECS}), "expired"),
            (json!({"exp": "soon"}), "exp missing"),
            (json!({"exp": -1}), "exp missing"),
            (json!({"iat": null}), "iat missing"),
            (json!({"iat": NOW + 3600}), "future"),
            (json!({"iat": NOW - 3600}), "too long ago"),
            (json!({"nbf": NOW + 3600}), "nbf"),
            (json!({"sub": ""}), "sub"),
        ];
        for (extra, why) in bad {
            let d = detail(&claims(extra.clone()));
            assert!(d.contains(why), "{extra}: {d}");
        }
    }

    #[test]
    fn nonce_must_match_exactly() {
        let c = claims(json!({}));
        assert_eq!(check(&c, Some("n-2")), Err("id_token_nonce_mismatch"));
        assert_eq!(check(&c, Some("n-")), Err("id_token_nonce_mismatch"));
        let c = claims(json!({"nonce": null}));
        assert_eq!(check(&c, Some("n-1")), Err("id_token_nonce_mismatch"));
    }

    #[test]
    fn header_rules() {
        let b = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let body = b(json!({"sub": "x"}));
        for header in [
            json!({"alg": "HS256"}),
            json!({"alg": "none"}),
            json!({"alg": "ES256", "crit": ["exp"]}),
            json!({"alg": "ES256", "kid": 7}),
        ] {
            let token = format!("{}.{body}.c2ln", b(header.clone()));
            assert!(parse(&token).is_err(), "{header}");
        }
        assert!(parse(&format!("{}.{body}.c2ln", b(json!({"alg": "ES256"})))).is_ok());
        assert!(parse("a.b.c.d.e").is_err());
    }

    #[test]
    fn user_from_claims() {
        let c = claims(
            json!({"email": "a@x", "email_verified": "true", "name": "A",
                              "roles": "admins"}),
        );
        let u = user(c, "roles").unwrap();
        assert_eq!(u.sub, "u1");
        assert!(u.email_verified);
        assert_eq!(u.groups, vec!["admins".to_string()]);
        assert_eq!(u.claims["nonce"], "n-1");
        let u = user(
            claims(json!({"email_verified": "yes", "groups": ["a", 1, "b"]})),
            "groups",
        )
        .unwrap();
        assert!(!u.email_verified);
        assert_eq!(u.groups, vec!["a".to_string(), "b".to_string()]);
        assert!(user(claims(json!({"sub": null})), "groups").is_err());
    }
}
