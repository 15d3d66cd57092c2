//! Entry points for the coverage-guided fuzz targets in `fuzz/`: the JWT and JWKS parsers are
//! crate-private (only `TokenValidator`, which is async and fetches keys, is public), so these
//! wrappers run the same pure steps validation runs on attacker bytes, in the same order.
//! Not an API: hidden from the docs and free to change with the fuzz targets.

use mcpgate_config::Algorithm;
use serde_json::Value;

use crate::error::AuthErrorKind;
use crate::keys::{KeySet, Lookup};
use crate::{jwt, principal};

/// What a token decoded to, for the fuzz target's assertions.
#[derive(Debug)]
pub struct DecodedJwt {
    pub alg: Option<Algorithm>,
    pub kid: Option<String>,
    pub issuer_hint: Option<String>,
}

/// Decode `token` as `TokenValidator::validate` does before it needs keys: JWS shape, strict
/// header and claims, header and type checks, then the claim checks that need no configuration
/// (times, audience, required claims).
pub fn jwt_decode(token: &str) -> Result<DecodedJwt, AuthErrorKind> {
    if !jwt::looks_like_jwt(token) {
        return Err(AuthErrorKind::Malformed);
    }
    let parsed = jwt::parse(token)?;
    parsed.check_header()?;
    let alg = parsed.algorithm(&Algorithm::ALL).ok();
    let _ = parsed.check_type(true);
    let _ = parsed.check_type(false);
    let claims = &parsed.claims;
    let _ = principal::check_times(claims, principal::now_secs(), 60, true);
    let aud = principal::audiences(claims)?;
    let _ = principal::audience_accepted(&aud, "https://mcp.example.com/mcp", &[]);
    let required = ["sub".to_owned(), "realm_access.roles".to_owned()];
    let _ = principal::check_required(claims, &required, true);
    Ok(DecodedJwt {
        alg,
        kid: parsed.kid.clone(),
        issuer_hint: parsed.issuer_hint().map(str::to_owned),
    })
}

/// What a JWKS document yielded.
#[derive(Debug)]
pub struct JwksSummary {
    /// Keys kept as verification keys.
    pub usable: usize,
    /// Keys dropped (symmetric, encryption, unusable).
    pub skipped: usize,
}

/// Parse `doc` as a JWKS loaded from a file is parsed, then look every `kid` up for every
/// algorithm and run any key found over `signature` (attacker-chosen in a real token).
pub fn jwks_parse(doc: &[u8], signature: &[u8]) -> Result<JwksSummary, String> {
    let limits = mcpgate_json::Limits {
        max_depth: 32,
        max_bytes: crate::fetch::MAX_DOCUMENT,
    };
    let doc = mcpgate_json::parse_object(doc, limits).map_err(|e| e.to_string())?;
    let set = KeySet::parse(&doc)?;
    let kids: Vec<Option<&str>> = match doc.get("keys") {
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| k.get("kid").and_then(Value::as_str))
            .chain([None])
            .collect(),
        _ => vec![None],
    };
    for kid in kids {
        let _ = set.contains_kid(kid);
        for alg in Algorithm::ALL {
            if let Lookup::Found(key) = set.find(kid, alg) {
                let _ = key.verify(alg, b"header.claims", signature);
            }
        }
    }
    Ok(JwksSummary {
        usable: set.len(),
        skipped: set.skipped,
    })
}
