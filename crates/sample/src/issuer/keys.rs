//! The demo issuer's signing keys: ES256 (P-256) key generation with rcgen,
//! the published JWKS, and JWS compact serialization of arbitrary
//! header/claims JSON.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    /// The public JWK, including `kid`, `alg` and `use`.
    jwk: Jwk,
    /// Whether the public key is listed in the JWKS.
    published: bool,
}

impl SigningKey {
    fn generate() -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("P-256 key generation");
        let encoding = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .expect("a fresh P-256 key converts to a JWK");
        // RFC 7638 thumbprint as kid: stable, unique, and URL-safe.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .expect("JWK thumbprint");
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        SigningKey {
            kid,
            encoding,
            jwk,
            published: true,
        }
    }
}

/// All keys the issuer ever had; the last one is current (signs tokens).
pub(crate) struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    pub fn new() -> KeyRing {
        KeyRing {
            keys: vec![SigningKey::generate()],
        }
    }

    fn current(&self) -> &SigningKey {
        self.keys.last().expect("the key ring is never empty")
    }

    pub fn current_kid(&self) -> String {
        self.current().kid.clone()
    }

    /// Adds a fresh key and makes it current; older keys stay published.
    pub fn rotate(&mut self) -> String {
        self.keys.push(SigningKey::generate());
        self.current_kid()
    }

    /// Stops publishing key `kid` in the JWKS. Retiring the current key is
    /// allowed: it keeps signing, which mints tokens with an unknown kid.
    pub fn retire(&mut self, kid: &str) {
        for key in self.keys.iter_mut().filter(|k| k.kid == kid) {
            key.published = false;
        }
    }

    /// The JWKS document (`{"keys": [...]}`) of the published keys.
    pub fn jwks(&self) -> Value {
        let keys: Vec<&Jwk> = self
            .keys
            .iter()
            .filter(|k| k.published)
            .map(|k| &k.jwk)
            .collect();
        json!({ "keys": keys })
    }

    /// The JOSE header used for access tokens signed by the current key.
    pub fn access_token_header(&self) -> Value {
        json!({ "alg": "ES256", "typ": "at+jwt", "kid": self.current().kid })
    }

    /// The JOSE header of ID tokens signed by the current key.
    pub fn id_token_header(&self) -> Value {
        json!({ "alg": "ES256", "typ": "JWT", "kid": self.current().kid })
    }

    /// JWS compact serialization of `header`.`claims`, ES256-signed with the
    /// current key whatever `header` says (so tests can forge headers).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let message = format!("{}.{}", part(header), part(claims));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &self.current().encoding,
            Algorithm::ES256,
        )
        .expect("ES256 signing with a valid key");
        format!("{message}.{signature}")
    }
}
