//! JWS compact parsing and signature verification for access tokens (RFC 7515, RFC 8725,
//! RFC 9068). Pure: no I/O. Header and claims are parsed with the strict JSON parser; keys named
//! in the header (`jwk`, `jku`, `x5u`, `x5c`) are never used; `crit` is refused because we
//! implement no extensions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcpgate_config::Algorithm;
use serde_json::{Map, Value};

use crate::error::AuthErrorKind;
use crate::keys::VerifyKey;

const JSON_LIMITS: mcpgate_json::Limits = mcpgate_json::Limits {
    max_depth: 16,
    max_bytes: 16 * 1024,
};

/// A JWS split into its parts, header and claims parsed but nothing verified yet.
pub(crate) struct UnverifiedJwt<'a> {
    /// `alg`, if present (checked against the issuer's allowlist later).
    pub alg_name: Option<String>,
    /// The header uses `crit`, or looks like JWE (`enc`) or compressed (`zip`).
    unsupported_header: bool,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// True when `token` has the JWS compact shape (three dot-separated parts).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

fn b64(part: &str) -> Result<Vec<u8>, AuthErrorKind> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthErrorKind::Malformed)
}

/// Split and parse `token`; header checks that need no issuer context happen here.
pub(crate) fn parse(token: &str) -> Result<UnverifiedJwt<'_>, AuthErrorKind> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthErrorKind::Malformed);
    };
    if h.is_empty() || c.is_empty() || s.is_empty() {
        return Err(AuthErrorKind::Malformed);
    }
    // The signature must be canonical base64url too (no padding, no `+/`, no stray bits).
    let signature = b64(s)?;
    let header =
        mcpgate_json::parse_object(&b64(h)?, JSON_LIMITS).map_err(|_| AuthErrorKind::Malformed)?;
    let claims =
        mcpgate_json::parse_object(&b64(c)?, JSON_LIMITS).map_err(|_| AuthErrorKind::Malformed)?;
    let unsupported_header =
        header.contains_key("crit") || header.contains_key("enc") || header.contains_key("zip");
    let alg_name = match header.get("alg") {
        Some(Value::String(a)) => Some(a.clone()),
        Some(_) => return Err(AuthErrorKind::Malformed),
        None => None,
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(AuthErrorKind::Malformed),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(AuthErrorKind::Malformed),
    };
    Ok(UnverifiedJwt {
        alg_name,
        unsupported_header,
        kid,
        typ,
        claims,
        signing_input: &token[..h.len() + 1 + c.len()],
        signature,
    })
}

impl UnverifiedJwt<'_> {
    /// The unverified `iss`, used only to pick which issuer's keys to try.
    pub fn issuer_hint(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// Refuse headers we must not ignore: `crit` (we implement no extensions), JWE, compression.
    pub fn check_header(&self) -> Result<(), AuthErrorKind> {
        if self.unsupported_header {
            Err(AuthErrorKind::UnsupportedHeader)
        } else {
            Ok(())
        }
    }

    /// The header's algorithm if the issuer allows it. `none` and HMAC are not even parsable.
    pub fn algorithm(&self, allowed: &[Algorithm]) -> Result<Algorithm, AuthErrorKind> {
        self.alg_name
            .as_deref()
            .and_then(Algorithm::parse)
            .filter(|a| allowed.contains(a))
            .ok_or(AuthErrorKind::UnsupportedAlgorithm)
    }

    /// RFC 9068 explicit typing: `at+jwt` always; plain `JWT` or no `typ` unless the issuer
    /// requires `at+jwt`; anything else (ID tokens marked as such, logout tokens, DPoP proofs) never.
    pub fn check_type(&self, require_at_jwt: bool) -> Result<(), AuthErrorKind> {
        let t = self.typ.as_deref().map(|t| t.to_ascii_lowercase());
        match t.as_deref() {
            Some("at+jwt" | "application/at+jwt") => Ok(()),
            None | Some("jwt" | "application/jwt") if !require_at_jwt => Ok(()),
            _ => Err(AuthErrorKind::UnsupportedHeader),
        }
    }

    /// Verify the signature with `key` for `alg` (ring, the crypto provider TLS uses too).
    pub fn verify(&self, key: &VerifyKey, alg: Algorithm) -> Result<(), AuthErrorKind> {
        if key.verify(alg, self.signing_input.as_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(AuthErrorKind::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &str) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }
    fn tok(h: &str, c: &str) -> String {
        format!("{}.{}.c2ln", enc(h), enc(c))
    }

    #[test]
    fn parses_header_and_claims() {
        let t = tok(
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"iss":"https://i","sub":"u"}"#,
        );
        let j = parse(&t).unwrap();
        assert_eq!(j.alg_name.as_deref(), Some("ES256"));
        assert!(j.check_header().is_ok());
        assert_eq!(j.kid.as_deref(), Some("k1"));
        assert_eq!(j.issuer_hint(), Some("https://i"));
        assert_eq!(j.algorithm(&[Algorithm::ES256]), Ok(Algorithm::ES256));
        assert_eq!(
            j.algorithm(&[Algorithm::RS256]),
            Err(AuthErrorKind::UnsupportedAlgorithm)
        );
        assert!(j.check_type(true).is_ok());
    }

    #[test]
    fn refuses_bad_shapes() {
        use AuthErrorKind::*;
        let cases: Vec<(String, AuthErrorKind)> = vec![
            ("a.b".into(), Malformed),
            ("a.b.c.d".into(), Malformed),
            (format!("{}..sig", enc(r#"{"alg":"ES256"}"#)), Malformed),
            ("!!!.e30.c2ln".into(), Malformed),
            (
                format!("{}=.{}.c2ln", enc(r#"{"alg":"ES256"}"#), enc("{}")),
                Malformed,
            ),
            (tok(r#"{"alg":"ES256","alg":"none"}"#, "{}"), Malformed),
            (
                tok(r#"{"alg":"ES256"}"#, r#"{"iss":"a","iss":"b"}"#),
                Malformed,
            ),
            (tok(r#"{"alg":"ES256"}"#, "[1]"), Malformed),
            (tok(r#"{"alg":5}"#, "{}"), Malformed),
            (tok(r#"{"alg":"ES256","kid":7}"#, "{}"), Malformed),
        ];
        for (t, want) in cases {
            assert_eq!(parse(&t).err(), Some(want), "{t}");
        }
    }

    #[test]
    fn unsupported_headers_and_missing_alg_are_refused_after_parsing() {
        for h in [
            r#"{"alg":"ES256","crit":["exp"]}"#,
            r#"{"alg":"ES256","enc":"A128GCM"}"#,
            r#"{"alg":"ES256","zip":"DEF"}"#,
        ] {
            assert_eq!(
                parse(&tok(h, "{}")).unwrap().check_header(),
                Err(AuthErrorKind::UnsupportedHeader),
                "{h}"
            );
        }
        let t = tok(r#"{"kid":"x"}"#, "{}");
        assert_eq!(
            parse(&t).unwrap().algorithm(&[Algorithm::ES256]),
            Err(AuthErrorKind::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn none_and_hmac_are_never_algorithms() {
        let all = Algorithm::ALL;
        for alg in ["none", "None", "HS256", "HS384", "HS512", "es256", ""] {
            let t = tok(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert_eq!(
                parse(&t).unwrap().algorithm(&all),
                Err(AuthErrorKind::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn explicit_typing() {
        let check = |typ: &str, require: bool| {
            let t = tok(&format!(r#"{{"alg":"ES256","typ":"{typ}"}}"#), "{}");
            parse(&t).unwrap().check_type(require)
        };
        assert!(check("at+JWT", true).is_ok());
        assert!(check("application/at+jwt", true).is_ok());
        assert!(check("JWT", false).is_ok());
        assert_eq!(check("JWT", true), Err(AuthErrorKind::UnsupportedHeader));
        assert_eq!(
            check("dpop+jwt", false),
            Err(AuthErrorKind::UnsupportedHeader)
        );
        assert_eq!(
            check("logout+jwt", false),
            Err(AuthErrorKind::UnsupportedHeader)
        );
        let t = tok(r#"{"alg":"ES256"}"#, "{}");
        let untyped = parse(&t).unwrap();
        assert!(untyped.check_type(false).is_ok());
        assert!(untyped.check_type(true).is_err());
    }
}
