//! Signs the front door's access tokens: RFC 9068 `at+jwt` with the first configured key
//! (ES256 or EdDSA, by ring); every configured key is published in the JWKS for rotation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcpgate_config::{Algorithm, SigningKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::secrets::random_secret;

/// Who a token is for and what it carries.
#[derive(Debug, Clone)]
pub struct AccessClaims<'a> {
    pub sub: &'a str,
    /// The route's resource URL (RFC 8707 / RFC 9068 §3).
    pub audience: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub name: Option<&'a str>,
    pub groups: &'a [String],
    /// The refresh family the token belongs to (revocation reaches its access tokens too).
    pub family: &'a str,
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// The signing key in use and the published key set.
pub struct Signer {
    issuer: String,
    kid: String,
    pair: Pair,
    rng: SystemRandom,
    jwks: Value,
}

impl Signer {
    pub fn new(issuer: &str, keys: &[SigningKey]) -> Result<Signer, String> {
        let first = keys.first().ok_or("no signing key")?;
        let rng = SystemRandom::new();
        let pair = match first.alg {
            Algorithm::ES256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, first.pkcs8(), &rng)
                    .map_err(|e| format!("signing key: {e}"))?,
            ),
            Algorithm::EdDSA => Pair::EdDsa(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(first.pkcs8())
                    .map_err(|e| format!("signing key: {e}"))?,
            ),
            other => return Err(format!("{other:?} keys cannot sign here")),
        };
        let jwks = json!({ "keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>() });
        Ok(Signer {
            issuer: issuer.to_owned(),
            kid: first.kid.clone(),
            pair,
            rng,
            jwks,
        })
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// An access token valid for `ttl` from now.
    pub fn access_token(&self, c: &AccessClaims<'_>, ttl: Duration) -> Result<String, String> {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer, "sub": c.sub, "aud": c.audience, "client_id": c.client_id,
            "scope": c.scope, "iat": now, "nbf": now, "exp": now + ttl.as_secs(),
            "jti": random_secret(), "sid": c.family, "groups": c.groups,
        });
        if let Some(email) = c.email {
            claims["email"] = email.into();
            claims["email_verified"] = c.email_verified.into();
        }
        if let Some(name) = c.name {
            claims["name"] = name.into();
        }
        self.sign(&claims)
    }

    fn sign(&self, claims: &Value) -> Result<String, String> {
        let alg = match self.pair {
            Pair::Es256(_) => "ES256",
            Pair::EdDsa(_) => "EdDSA",
        };
        let header = json!({ "typ": "at+jwt", "alg": alg, "kid": self.kid });
        let input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let signature = match &self.pair {
            // FIXED signing is r‖s, which is what JWS ES256 wants (RFC 7518 §3.4).
            Pair::Es256(k) => k
                .sign(&self.rng, input.as_bytes())
                .map_err(|e| format!("signing: {e}"))?
                .as_ref()
                .to_vec(),
            Pair::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
