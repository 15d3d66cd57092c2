//! The validated caller: what a token says about who is calling, normalised across JWTs and
//! introspection answers, plus the claim checks both share (times, audience, required claims).

use std::time::{SystemTime, UNIX_EPOCH};

use mcpgate_config::Issuer;
use serde_json::{Map, Value};

use crate::error::AuthErrorKind;

/// Who is calling, as established by a validated token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The issuer's `iss` value (exactly as configured).
    pub issuer: String,
    /// The configured name of the issuer that vouched for the token.
    pub issuer_name: String,
    pub subject: Option<String>,
    /// `client_id` (RFC 9068 / RFC 7662), else `azp`.
    pub client_id: Option<String>,
    /// From `scope` (space-separated) or `scp` (string or array).
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    /// `exp` in seconds since the epoch, when the token has one.
    pub expires_at: Option<u64>,
    pub email: Option<String>,
    pub email_verified: bool,
    /// From the issuer's configured groups claim (string or array; dotted paths reach nested claims).
    pub groups: Vec<String>,
    /// Every claim, for policy on arbitrary claims.
    pub claims: Map<String, Value>,
    /// Short hash of the token for logs and audit events (never the token).
    pub token_hash: String,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Look a claim up by exact name first (namespaced claims like `https://x.io/groups` contain
    /// dots), then as a dotted path into nested objects (`realm_access.roles`).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        lookup_claim(&self.claims, name)
    }
}

pub(crate) fn lookup_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A NumericDate claim: absent, or a non-negative finite number (fractions truncated).
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<u64>, AuthErrorKind> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                    _ => Err(AuthErrorKind::Malformed),
                }
            }
        }
        Some(_) => Err(AuthErrorKind::Malformed),
    }
}

/// Check `exp`, `nbf` and `iat` against `now` with `leeway` seconds of skew; returns `exp`.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
    exp_required: bool,
) -> Result<Option<u64>, AuthErrorKind> {
    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    match exp {
        None if exp_required => return Err(AuthErrorKind::MissingClaim),
        Some(exp) if now >= exp.saturating_add(leeway) => return Err(AuthErrorKind::Expired),
        _ => {}
    }
    if matches!(nbf, Some(nbf) if nbf > now.saturating_add(leeway)) {
        return Err(AuthErrorKind::NotYetValid);
    }
    if matches!(iat, Some(iat) if iat > now.saturating_add(leeway)) {
        return Err(AuthErrorKind::IssuedInFuture);
    }
    Ok(exp)
}

/// `aud` as a list: a string or an array of strings; anything else is malformed.
pub(crate) fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, AuthErrorKind> {
    match claims.get("aud") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(AuthErrorKind::Malformed)
            })
            .collect(),
        Some(_) => Err(AuthErrorKind::Malformed),
    }
}

/// Does any of the token's audiences name `resource` or one of the issuer's extra audiences?
/// A single trailing `/` is not significant (`https://x/mcp` = `https://x/mcp/`).
pub(crate) fn audience_accepted(token_aud: &[String], resource: &str, extra: &[String]) -> bool {
    // Borrowed slices, not owned copies: this runs on every request, cached tokens included.
    fn norm(s: &str) -> &str {
        s.strip_suffix('/').unwrap_or(s)
    }
    let resource = norm(resource);
    token_aud.iter().any(|a| {
        let a = norm(a);
        a == resource || extra.iter().any(|e| norm(e) == a)
    })
}

/// Every configured required claim is present (`exp` is checked by [`check_times`]).
pub(crate) fn check_required(
    claims: &Map<String, Value>,
    required: &[String],
    skip_exp: bool,
) -> Result<(), AuthErrorKind> {
    for name in required {
        if skip_exp && name == "exp" {
            continue;
        }
        match lookup_claim(claims, name) {
            None | Some(Value::Null) => return Err(AuthErrorKind::MissingClaim),
            Some(_) => {}
        }
    }
    Ok(())
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    lookup_claim(claims, name)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Build the principal from already-validated claims.
pub(crate) fn build_principal(
    claims: Map<String, Value>,
    issuer: &Issuer,
    audience: Vec<String>,
    expires_at: Option<u64>,
    token_hash: String,
) -> Principal {
    let scopes = match claims.get("scope") {
        Some(v @ Value::String(_)) => string_list(Some(v)),
        _ => string_list(claims.get("scp")),
    };
    let email_verified = match lookup_claim(&claims, "email_verified") {
        Some(Value::Bool(b)) => *b,
        // Some IdPs (Cognito, older ADFS) send the string "true".
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Principal {
        issuer: issuer.issuer.clone(),
        issuer_name: issuer.name.clone(),
        subject: string_claim(&claims, "sub"),
        client_id: string_claim(&claims, "client_id").or_else(|| string_claim(&claims, "azp")),
        scopes,
        audience,
        expires_at,
        email: string_claim(&claims, &issuer.claims.email),
        email_verified,
        groups: string_list(lookup_claim(&claims, &issuer.claims.groups)),
        claims,
        token_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn time_checks_honour_leeway() {
        let now = 1_000_000;
        assert_eq!(
            check_times(&obj(json!({"exp": now + 10})), now, 0, true),
            Ok(Some(now + 10))
        );
        assert_eq!(
            check_times(&obj(json!({"exp": now})), now, 0, true),
            Err(AuthErrorKind::Expired)
        );
        assert_eq!(
            check_times(&obj(json!({"exp": now - 20})), now, 30, true),
            Ok(Some(now - 20))
        );
        assert_eq!(
            check_times(&obj(json!({"exp": now - 31})), now, 30, true),
            Err(AuthErrorKind::Expired)
        );
        assert_eq!(
            check_times(&obj(json!({})), now, 0, true),
            Err(AuthErrorKind::MissingClaim)
        );
        assert_eq!(check_times(&obj(json!({})), now, 0, false), Ok(None));
        assert_eq!(
            check_times(
                &obj(json!({"exp": now + 99, "nbf": now + 31})),
                now,
                30,
                true
            ),
            Err(AuthErrorKind::NotYetValid)
        );
        assert_eq!(
            check_times(
                &obj(json!({"exp": now + 99, "nbf": now + 30})),
                now,
                30,
                true
            ),
            Ok(Some(now + 99))
        );
        assert_eq!(
            check_times(
                &obj(json!({"exp": now + 99, "iat": now + 60})),
                now,
                30,
                true
            ),
            Err(AuthErrorKind::IssuedInFuture)
        );
        assert_eq!(
            check_times(&obj(json!({"exp": (now + 5) as f64 + 0.5})), now, 0, true),
            Ok(Some(now + 5))
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            json!({"exp": "999999999999"}),
            json!({"exp": -1}),
            json!({"exp": null}),
            json!({"exp": 1.0, "nbf": [1]}),
            json!({"exp": -0.5}),
        ] {
            assert_eq!(
                check_times(&obj(bad.clone()), 0, 0, true),
                Err(AuthErrorKind::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn audience_forms() {
        assert_eq!(
            audiences(&obj(json!({"aud": "a"}))),
            Ok(vec!["a".to_string()])
        );
        assert_eq!(
            audiences(&obj(json!({"aud": ["a", "b"]}))),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            audiences(&obj(json!({"aud": ["a", 1]}))),
            Err(AuthErrorKind::Malformed)
        );
        assert_eq!(
            audiences(&obj(json!({"aud": {"a": 1}}))),
            Err(AuthErrorKind::Malformed)
        );
        let aud = vec!["https://x/mcp/".to_string()];
        assert!(audience_accepted(&aud, "https://x/mcp", &[]));
        assert!(!audience_accepted(&aud, "https://x/mcp2", &[]));
        assert!(!audience_accepted(&aud, "https://x/mc", &[]));
        assert!(audience_accepted(
            &["api://corp".into()],
            "https://x/mcp",
            &["api://corp".into()]
        ));
        assert!(!audience_accepted(&[], "https://x/mcp", &[]));
    }

    #[test]
    fn claims_lookup_and_principal_fields() {
        let issuer = test_issuer();
        let claims = obj(json!({
            "sub": "u1", "azp": "cli", "scp": ["a", "b"], "email": "u@example.com", "email_verified": "true",
            "realm_access": {"roles": ["admin", "dev"]}, "https://x.io/tenant": "acme"
        }));
        let mut iss = issuer.clone();
        iss.claims.groups = "realm_access.roles".into();
        let p = build_principal(claims, &iss, vec![], Some(5), "h".into());
        assert_eq!(p.subject.as_deref(), Some("u1"));
        assert_eq!(p.client_id.as_deref(), Some("cli"));
        assert_eq!(p.scopes, vec!["a", "b"]);
        assert!(p.email_verified);
        assert_eq!(p.groups, vec!["admin", "dev"]);
        assert_eq!(p.claim("https://x.io/tenant"), Some(&json!("acme")));
        assert!(p.has_scope("b") && !p.has_scope("c"));
        let p = build_principal(
            obj(json!({"scope": "x  y", "scp": "z", "groups": "g"})),
            &issuer,
            vec![],
            None,
            "h".into(),
        );
        assert_eq!(p.scopes, vec!["x", "y"]);
        assert_eq!(p.groups, vec!["g"]);
        assert!(!p.email_verified);
    }

    #[test]
    fn required_claims() {
        let c = obj(json!({"sub": "u", "tenant": null, "a": {"b": 1}}));
        assert_eq!(
            check_required(&c, &["sub".into(), "a.b".into()], false),
            Ok(())
        );
        assert_eq!(
            check_required(&c, &["tenant".into()], false),
            Err(AuthErrorKind::MissingClaim)
        );
        assert_eq!(check_required(&c, &["exp".into()], true), Ok(()));
    }

    pub(crate) fn test_issuer() -> Issuer {
        mcpgate_config::parse_str(
            "public_url: http://x\nlisteners: [{bind: '127.0.0.1:1'}]\nissuers:\n  - name: t\n    issuer: https://t\n    jwks_uri: https://t/jwks\nroutes:\n  - {name: r, path: /mcp, upstream: {url: 'http://127.0.0.1:1/mcp'}, auth: {issuers: [t]}}\n",
            std::path::Path::new("."),
            &|_| None,
        )
        .expect("test config")
        .issuers
        .remove(0)
    }
}
