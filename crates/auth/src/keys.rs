//! A parsed JWKS: the verification keys of one issuer, indexed by `kid`, and the rules for which
//! key may verify which algorithm. Symmetric (`oct`) keys, encryption keys and key types we
//! cannot use are dropped at parse time, so HMAC can never be selected.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use mcpgate_config::Algorithm;
use serde_json::{Map, Value};

/// Which algorithms a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
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

/// One usable verification key (also the login front door's, for its IdP's ID tokens).
pub struct VerifyKey {
    pub kid: Option<String>,
    pub(crate) kind: KeyKind,
    /// The JWK's own `alg`, when it pins one.
    pub(crate) alg: Option<Algorithm>,
    /// The public key in the form ring verifies with.
    pub(crate) material: KeyMaterial,
}

/// Public key bytes, decoded once at JWKS load.
pub(crate) enum KeyMaterial {
    /// Big-endian modulus and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed point `04 || x || y` (P-256 / P-384) or the Ed25519 public key.
    Point(Vec<u8>),
}

impl VerifyKey {
    /// Check `signature` over `message` for `alg` (the caller has checked `can_verify`).
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature as sig;
        match (&self.material, alg) {
            (KeyMaterial::Rsa { n, e }, _) => {
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
            (KeyMaterial::Point(point), _) => {
                let verify_alg: &dyn sig::VerificationAlgorithm = match alg {
                    Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                    Algorithm::EdDSA => &sig::ED25519,
                    _ => return false,
                };
                sig::UnparsedPublicKey::new(verify_alg, point)
                    .verify(message, signature)
                    .is_ok()
            }
        }
    }
}

impl VerifyKey {
    /// A JWK as a verification key; `None` for keys that never verify a token here (symmetric,
    /// encryption-only, unknown types, wrong sizes).
    pub fn from_jwk(raw: &Value) -> Option<VerifyKey> {
        parse_key(raw)
    }

    /// Whether this key may verify `alg` (its type fits, and its own `alg` if it pins one).
    pub fn can_verify(&self, alg: Algorithm) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// The outcome of looking a key up.
pub(crate) enum Lookup {
    Found(Arc<VerifyKey>),
    /// The `kid` exists but none of its keys can verify the algorithm.
    Mismatch,
    NotFound,
}

/// An issuer's usable keys.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Vec<Arc<VerifyKey>>>,
    all: Vec<Arc<VerifyKey>>,
    /// Keys in the document that were skipped (symmetric, encryption, unsupported).
    pub skipped: usize,
}

impl KeySet {
    /// Parse a JWKS document (`{"keys": [...]}`). Unusable keys are skipped, not fatal; a document
    /// without a `keys` array is an error.
    pub fn parse(doc: &Map<String, Value>) -> Result<KeySet, String> {
        let Some(Value::Array(keys)) = doc.get("keys") else {
            return Err("JWKS has no \"keys\" array".into());
        };
        let mut set = KeySet::default();
        for raw in keys {
            match parse_key(raw) {
                Some(k) => {
                    let k = Arc::new(k);
                    if let Some(kid) = &k.kid {
                        set.by_kid.entry(kid.clone()).or_default().push(k.clone());
                    }
                    set.all.push(k);
                }
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// The key for a token's `kid` and `alg`. A token without `kid` may use the issuer's key only
    /// when exactly one key can verify its algorithm (no trial verification across keys).
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let candidates: &[Arc<VerifyKey>] = match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(keys) => keys,
                None => return Lookup::NotFound,
            },
            None => {
                let mut usable = self.all.iter().filter(|k| k.can_verify(alg));
                return match (usable.next(), usable.next()) {
                    (Some(k), None) => Lookup::Found(k.clone()),
                    _ => Lookup::NotFound,
                };
            }
        };
        candidates
            .iter()
            .find(|k| k.can_verify(alg))
            .map_or(Lookup::Mismatch, |k| Lookup::Found(k.clone()))
    }

    pub fn contains_kid(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.by_kid.contains_key(kid),
            None => !self.all.is_empty(),
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
            KeyMaterial::Rsa {
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
            (kind, KeyMaterial::Point(point))
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            let x = b64(&p.x)?;
            if x.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, KeyMaterial::Point(x))
        }
        // Symmetric keys are never verification keys for us; nor is anything else.
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

    // A real P-256 public key (x, y) and a real 2048-bit RSA modulus are not needed for lookup
    // rules; any coordinates of the right length are enough (points are checked when verifying).
    fn ec(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }
    fn rsa(kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"})
    }

    fn set(keys: Vec<Value>) -> KeySet {
        KeySet::parse(json!({"keys": keys}).as_object().unwrap()).unwrap()
    }

    #[test]
    fn selects_by_kid_and_algorithm() {
        let s = set(vec![ec("a"), rsa("b")]);
        assert_eq!(s.len(), 2);
        assert!(matches!(
            s.find(Some("a"), Algorithm::ES256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            s.find(Some("b"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        // alg must fit the key type and the key's own alg.
        assert!(matches!(
            s.find(Some("a"), Algorithm::RS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("b"), Algorithm::PS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("b"), Algorithm::ES256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("zz"), Algorithm::ES256),
            Lookup::NotFound
        ));
    }

    #[test]
    fn kidless_tokens_need_exactly_one_candidate() {
        let s = set(vec![ec("a"), rsa("b")]);
        assert!(matches!(s.find(None, Algorithm::ES256), Lookup::Found(_)));
        let s = set(vec![ec("a"), ec("c")]);
        assert!(matches!(s.find(None, Algorithm::ES256), Lookup::NotFound));
    }

    #[test]
    fn symmetric_encryption_and_unknown_keys_are_dropped() {
        let s = set(vec![
            json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "P-256", "kid": "e", "use": "enc", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            json!({"kty": "EC", "crv": "P-256", "kid": "o", "key_ops": ["encrypt"], "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            json!({"kty": "RSA", "kid": "r", "alg": "HS256", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "weird"}),
            json!("not an object"),
            ec("ok"),
        ]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.skipped, 6);
        assert!(matches!(
            s.find(Some("h"), Algorithm::ES256),
            Lookup::NotFound
        ));
    }

    #[test]
    fn a_document_without_keys_is_an_error() {
        assert!(KeySet::parse(json!({"keys": {}}).as_object().unwrap()).is_err());
        assert!(KeySet::parse(json!({}).as_object().unwrap()).is_err());
        assert_eq!(set(vec![]).len(), 0);
    }

    #[test]
    fn ring_verifies_eddsa_and_es384_and_rejects_tampering() {
        use ring::rand::SystemRandom;
        use ring::signature::{
            EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING,
        };
        let rng = SystemRandom::new();
        let msg = b"header.claims";

        let ed = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode(ed.public_key().as_ref())});
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = ec.public_key().as_ref();
        let ec_jwk = json!({"kty": "EC", "crv": "P-384", "kid": "p384",
            "x": URL_SAFE_NO_PAD.encode(&point[1..49]), "y": URL_SAFE_NO_PAD.encode(&point[49..])});
        let s = set(vec![ed_jwk, ec_jwk]);

        let Lookup::Found(k) = s.find(Some("ed"), Algorithm::EdDSA) else {
            panic!("ed key")
        };
        let sig = ed.sign(msg);
        assert!(k.verify(Algorithm::EdDSA, msg, sig.as_ref()));
        assert!(!k.verify(Algorithm::EdDSA, b"header.claimz", sig.as_ref()));

        let Lookup::Found(k) = s.find(Some("p384"), Algorithm::ES384) else {
            panic!("p384 key")
        };
        let sig = ec.sign(&rng, msg).unwrap();
        assert!(k.verify(Algorithm::ES384, msg, sig.as_ref()));
        let mut bad = sig.as_ref().to_vec();
        bad[10] ^= 1;
        assert!(!k.verify(Algorithm::ES384, msg, &bad));
        assert!(matches!(
            s.find(Some("p384"), Algorithm::ES256),
            Lookup::Mismatch
        ));
    }
}
