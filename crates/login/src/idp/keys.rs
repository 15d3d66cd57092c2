//! The IdP's ID-token signing keys: a JWKS parsed into ring verification keys, and the rule for
//! which key may verify which algorithm. Symmetric (`oct`) keys, encryption keys and unknown key
//! types are dropped at parse time, so HMAC (and `none`) can never verify an ID token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use mcpgate_config::Algorithm;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn verifies(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => alg == ES256,
            KeyKind::EcP384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

enum Material {
    /// Big-endian modulus and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed EC point `04 || x || y`, or the Ed25519 public key.
    Point(Vec<u8>),
}

/// One usable verification key.
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    kind: KeyKind,
    /// The JWK's own `alg`, when it pins one.
    alg: Option<Algorithm>,
    material: Material,
}

impl VerifyKey {
    pub fn can_verify(&self, alg: Algorithm) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// Checks `signature` over `message` for `alg` (with `can_verify` already true).
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature as sig;
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &sig::RsaParameters = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                sig::RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            Material::Point(point) => {
                let verify: &dyn sig::VerificationAlgorithm = match alg {
                    Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                    Algorithm::EdDSA => &sig::ED25519,
                    _ => return false,
                };
                sig::UnparsedPublicKey::new(verify, point)
                    .verify(message, signature)
                    .is_ok()
            }
        }
    }
}

/// Parses a JWKS document. Unusable keys are skipped; no `keys` array is an error.
pub(crate) fn parse_jwks(doc: &Map<String, Value>) -> Result<Vec<VerifyKey>, String> {
    let Some(Value::Array(keys)) = doc.get("keys") else {
        return Err("JWKS has no \"keys\" array".into());
    };
    Ok(keys.iter().filter_map(parse_key).collect())
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

fn parse_key(raw: &Value) -> Option<VerifyKey> {
    let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return None;
        }
    }
    let b64 = |v: &str| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok();
    let (kind, material) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => (
            KeyKind::Rsa,
            Material::Rsa {
                n: b64(&p.n)?,
                e: b64(&p.e)?,
            },
        ),
        AlgorithmParameters::EllipticCurve(p) => {
            let (kind, len) = match p.curve {
                EllipticCurve::P256 => (KeyKind::EcP256, 32),
                EllipticCurve::P384 => (KeyKind::EcP384, 48),
                _ => return None,
            };
            let (x, y) = (b64(&p.x)?, b64(&p.y)?);
            if x.len() != len || y.len() != len {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (kind, Material::Point(point))
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            let x = b64(&p.x)?;
            if x.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, Material::Point(x))
        }
        // Symmetric keys never verify an ID token here; nor does anything else.
        _ => return None,
    };
    let alg = match raw.get("alg") {
        None => None,
        Some(Value::String(s)) => Some(Algorithm::parse(s)?),
        Some(_) => return None,
    };
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        kind,
        alg,
        material,
    })
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
