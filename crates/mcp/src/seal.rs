//! Sealed session ids: the `Mcp-Session-Id` a client sees is the upstream's id, route, owner and
//! creation time under AES-256-GCM, so any replica holding the key ring — or this one after a
//! restart — can tell who owns a session without a shared store.
//!
//! Wire form: `s1.` + base64url(no padding) of `key id (4) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
//! The key id is the first 4 bytes of SHA-256 over a label and the key, so a ring can be
//! reordered freely; the version and key id are authenticated as associated data. Nonces are
//! random (96 bits): NIST SP 800-38D §8.3 allows 2³² invocations per key with random nonces,
//! far beyond the sessions a key seals between rotations.
//!
//! Legacy HTTP+SSE (2024-11-05) names its session in the query of the `endpoint` URL, under a
//! name each SDK picks (`sessionId`, `session_id`). The whole query is sealed instead, into one
//! parameter, [`LEGACY_PARAM`]; a POST carrying it gets the upstream's own query back. A sealed
//! query and a sealed `Mcp-Session-Id` are different kinds: neither opens as the other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::session::SessionOwner;

/// The query parameter that carries a sealed legacy endpoint query.
pub const LEGACY_PARAM: &str = "mcpgate_session";

/// The version prefix of every sealed id this code mints.
const PREFIX: &str = "s1.";
const KEY_ID_LEN: usize = 4;
const TAG_LEN: usize = 16;
/// Upper bound on what is worth trying to decode (an upstream id plus names is far smaller).
const MAX_SEALED_LEN: usize = 4096;

/// Why a presented id is not a session of the caller's. Clients are told none of this (every
/// case is the same 404); the reason goes to the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsealed {
    /// Not a sealed id, tampered with, truncated, another version, or sealed with a key no
    /// longer in the ring.
    #[error("not a session id this gateway sealed")]
    Unknown,
    /// Sealed for another route.
    #[error("sealed for another route")]
    ForeignRoute,
    /// Sealed for another principal.
    #[error("sealed for another owner")]
    NotOwner,
    /// Older than the configured maximum age.
    #[error("older than the maximum age")]
    Expired,
}

impl Unsealed {
    /// The stable reason for audit lines and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Unsealed::Unknown => "session_unknown",
            Unsealed::ForeignRoute => "session_foreign",
            Unsealed::NotOwner => "session_owner_mismatch",
            Unsealed::Expired => "session_expired",
        }
    }
}

/// The system's random generator failed; nothing can be sealed.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a session nonce")]
pub struct SealFailed;

/// What a sealed id carries. Short field names: the id travels in a header on every request.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The upstream's own session id.
    u: String,
    /// Route name.
    r: String,
    /// Owner's issuer.
    i: String,
    /// Owner's subject (`sub:…` or `token:…`, see [`crate::session::owner`]).
    s: String,
    /// Creation time, Unix seconds.
    t: u64,
    /// What `u` is.
    k: Kind,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An `Mcp-Session-Id`.
    #[serde(rename = "h")]
    Header,
    /// The query of a legacy `endpoint` URL.
    #[serde(rename = "q")]
    LegacyQuery,
}

struct RingKey {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

/// Seals and opens session ids with a key ring: the first key seals, every key opens.
pub struct SessionSealer {
    keys: Vec<RingKey>,
    max_age: Duration,
    rng: SystemRandom,
}

impl SessionSealer {
    /// `keys` must not be empty (configuration validation guarantees it); the first one seals.
    pub fn new(keys: &[[u8; 32]], max_age: Duration) -> SessionSealer {
        let keys = keys
            .iter()
            .map(|k| RingKey {
                id: key_id(k),
                key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k).expect("32-byte key")),
            })
            .collect();
        SessionSealer {
            keys,
            max_age,
            rng: SystemRandom::new(),
        }
    }

    /// The client-facing id for the upstream's `upstream_id`, minted at `now`.
    pub fn seal(
        &self,
        upstream_id: &str,
        route: &str,
        owner: &SessionOwner,
        now: SystemTime,
    ) -> Result<String, SealFailed> {
        self.seal_kind(Kind::Header, upstream_id, route, owner, now)
    }

    /// The upstream's own id behind `sealed`, if it is `owner`'s session on `route` and not
    /// older than the maximum age at `now`.
    pub fn open(
        &self,
        sealed: &str,
        route: &str,
        owner: &SessionOwner,
        now: SystemTime,
    ) -> Result<String, Unsealed> {
        self.open_kind(Kind::Header, sealed, route, owner, now)
    }

    /// A legacy `endpoint` URL (already pointing at the gateway) with its query sealed into
    /// [`LEGACY_PARAM`]; a URL without a query is returned as it is (nothing names a session).
    pub fn seal_endpoint(
        &self,
        endpoint: &str,
        route: &str,
        owner: &SessionOwner,
        now: SystemTime,
    ) -> Result<String, SealFailed> {
        let Some((path, query)) = endpoint.split_once('?') else {
            return Ok(endpoint.to_owned());
        };
        let sealed = self.seal_kind(Kind::LegacyQuery, query, route, owner, now)?;
        Ok(format!("{path}?{LEGACY_PARAM}={sealed}"))
    }

    /// The upstream's own query behind a request query carrying [`LEGACY_PARAM`]; `None` when
    /// the query has no such parameter (then it is not a sealed legacy session).
    pub fn open_endpoint_query(
        &self,
        query: &str,
        route: &str,
        owner: &SessionOwner,
        now: SystemTime,
    ) -> Option<Result<String, Unsealed>> {
        let mut sealed = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix(LEGACY_PARAM)?.strip_prefix('='));
        let first = sealed.next()?;
        if sealed.next().is_some() {
            // Two candidates: refuse rather than pick one.
            return Some(Err(Unsealed::Unknown));
        }
        Some(self.open_kind(Kind::LegacyQuery, first, route, owner, now))
    }

    fn seal_kind(
        &self,
        kind: Kind,
        upstream_id: &str,
        route: &str,
        owner: &SessionOwner,
        now: SystemTime,
    ) -> Result<String, SealFailed> {
        let sealing = self.keys.first().ok_or(SealFailed)?;
        let payload = Payload {
            u: upstream_id.to_owned(),
            r: route.to_owned(),
            i: owner.issuer.clone(),
            s: owner.subject.clone(),
            t: unix_secs(now),
            k: kind,
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealFailed)?;
        let mut body = serde_json::to_vec(&payload).map_err(|_| SealFailed)?;
        sealing
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&sealing.id)),
                &mut body,
            )
            .map_err(|_| SealFailed)?;
        let mut raw = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + body.len());
        raw.extend_from_slice(&sealing.id);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&body);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    fn open_kind(
        &self,
        kind: Kind,
        sealed: &str,
        route: &str,
        owner: &SessionOwner,
        now: SystemTime,
    ) -> Result<String, Unsealed> {
        let payload = self.decrypt(sealed).ok_or(Unsealed::Unknown)?;
        if payload.k != kind {
            return Err(Unsealed::Unknown);
        }
        if payload.r != route {
            return Err(Unsealed::ForeignRoute);
        }
        if payload.i != owner.issuer || payload.s != owner.subject {
            return Err(Unsealed::NotOwner);
        }
        // A creation time ahead of `now` (clocks of replicas a little apart) counts as age 0.
        let age = unix_secs(now).saturating_sub(payload.t);
        if Duration::from_secs(age) > self.max_age {
            return Err(Unsealed::Expired);
        }
        Ok(payload.u)
    }

    fn decrypt(&self, sealed: &str) -> Option<Payload> {
        if sealed.len() > MAX_SEALED_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (id, rest) = raw.split_at(KEY_ID_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        // Key ids are 32 bits: two keys of a ring may share one, so try each that matches.
        self.keys.iter().filter(|k| k.id == id).find_map(|k| {
            let mut buf = body.to_vec();
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let plain = k
                .key
                .open_in_place(nonce, Aad::from(aad(&k.id)), &mut buf)
                .ok()?;
            serde_json::from_slice(plain).ok()
        })
    }
}

/// The version prefix and key id, authenticated with every sealed id.
fn aad(key_id: &[u8; KEY_ID_LEN]) -> Vec<u8> {
    [PREFIX.as_bytes(), key_id].concat()
}

/// A key's public name: not the key, not usable to find it (SHA-256 preimage resistance).
fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::new()
        .chain_update(b"mcpgate session key id\0")
        .chain_update(key)
        .finalize();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: [u8; 32] = [1; 32];
    const NEW: [u8; 32] = [2; 32];
    const DAY: Duration = Duration::from_secs(86_400);

    fn alice() -> SessionOwner {
        SessionOwner {
            issuer: "https://idp".into(),
            subject: "sub:alice".into(),
        }
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn the_owner_gets_the_upstream_id_back_on_the_same_route() {
        let s = SessionSealer::new(&[NEW], DAY);
        let sealed = s.seal("up-123", "main", &alice(), now()).unwrap();
        assert!(sealed.starts_with("s1."));
        assert!(!sealed.contains("up-123"), "the upstream id is not visible");
        assert!(
            sealed.bytes().all(|b| b.is_ascii_graphic()),
            "a valid Mcp-Session-Id (visible ASCII)"
        );
        assert_eq!(
            s.open(&sealed, "main", &alice(), now()),
            Ok("up-123".into())
        );
    }

    #[test]
    fn two_seals_of_one_session_differ() {
        let s = SessionSealer::new(&[NEW], DAY);
        let a = s.seal("up", "main", &alice(), now()).unwrap();
        let b = s.seal("up", "main", &alice(), now()).unwrap();
        assert_ne!(a, b, "random nonces");
    }

    #[test]
    fn another_owner_route_or_issuer_is_refused() {
        let s = SessionSealer::new(&[NEW], DAY);
        let sealed = s.seal("up", "main", &alice(), now()).unwrap();
        let bob = SessionOwner {
            subject: "sub:bob".into(),
            ..alice()
        };
        let other_issuer = SessionOwner {
            issuer: "https://other".into(),
            ..alice()
        };
        assert_eq!(
            s.open(&sealed, "main", &bob, now()),
            Err(Unsealed::NotOwner)
        );
        assert_eq!(
            s.open(&sealed, "main", &other_issuer, now()),
            Err(Unsealed::NotOwner)
        );
        assert_eq!(
            s.open(&sealed, "admin", &alice(), now()),
            Err(Unsealed::ForeignRoute)
        );
    }

    #[test]
    fn tampered_truncated_and_garbage_ids_are_unknown() {
        let s = SessionSealer::new(&[NEW], DAY);
        let sealed = s.seal("up", "main", &alice(), now()).unwrap();
        let mut refused = vec![
            String::new(),
            "s1.".into(),
            "garbage".into(),
            "up".into(),
            sealed[..sealed.len() - 1].to_string(),
            sealed[..20].to_string(),
            format!("{sealed}A"),
            sealed.replacen("s1.", "s2.", 1),
            sealed.replacen("s1.", "", 1),
            "s1.".to_string() + &"A".repeat(MAX_SEALED_LEN),
        ];
        // Flip every byte position of the binary part in turn.
        let raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x01;
            refused.push(format!("s1.{}", URL_SAFE_NO_PAD.encode(t)));
        }
        for bad in refused {
            assert_eq!(
                s.open(&bad, "main", &alice(), now()),
                Err(Unsealed::Unknown),
                "{bad}"
            );
        }
    }

    #[test]
    fn another_ring_cannot_open_it() {
        let sealed = SessionSealer::new(&[OLD], DAY)
            .seal("up", "main", &alice(), now())
            .unwrap();
        let other = SessionSealer::new(&[NEW], DAY);
        assert_eq!(
            other.open(&sealed, "main", &alice(), now()),
            Err(Unsealed::Unknown)
        );
    }

    #[test]
    fn rotation_opens_with_any_key_and_seals_with_the_first() {
        let before = SessionSealer::new(&[OLD], DAY);
        let old_session = before.seal("up-old", "main", &alice(), now()).unwrap();
        let rotated = SessionSealer::new(&[NEW, OLD], DAY);
        assert_eq!(
            rotated.open(&old_session, "main", &alice(), now()),
            Ok("up-old".into())
        );
        let new_session = rotated.seal("up-new", "main", &alice(), now()).unwrap();
        assert_eq!(
            before.open(&new_session, "main", &alice(), now()),
            Err(Unsealed::Unknown),
            "sealed with the new key"
        );
        let retired = SessionSealer::new(&[NEW], DAY);
        assert_eq!(
            retired.open(&old_session, "main", &alice(), now()),
            Err(Unsealed::Unknown)
        );
        assert_eq!(
            retired.open(&new_session, "main", &alice(), now()),
            Ok("up-new".into())
        );
    }

    #[test]
    fn ids_older_than_the_maximum_age_are_expired() {
        let s = SessionSealer::new(&[NEW], Duration::from_secs(60));
        let minted = now();
        let sealed = s.seal("up", "main", &alice(), minted).unwrap();
        let at = |secs| minted + Duration::from_secs(secs);
        assert_eq!(s.open(&sealed, "main", &alice(), at(60)), Ok("up".into()));
        assert_eq!(
            s.open(&sealed, "main", &alice(), at(62)),
            Err(Unsealed::Expired)
        );
        // Minted by a replica whose clock runs ahead: not refused for that.
        let ahead = s.seal("up", "main", &alice(), at(30)).unwrap();
        assert_eq!(s.open(&ahead, "main", &alice(), minted), Ok("up".into()));
    }

    #[test]
    fn legacy_endpoint_queries_are_sealed_whole_and_opened_back() {
        let s = SessionSealer::new(&[NEW], DAY);
        let endpoint = s
            .seal_endpoint("/mcp/messages?session_id=abc&x=1", "main", &alice(), now())
            .unwrap();
        let (path, query) = endpoint.split_once('?').unwrap();
        assert_eq!(path, "/mcp/messages");
        assert!(query.starts_with("mcpgate_session=s1.") && !query.contains("abc"));
        let opened = s.open_endpoint_query(query, "main", &alice(), now());
        assert_eq!(opened, Some(Ok("session_id=abc&x=1".into())));
        let bob = SessionOwner {
            subject: "sub:bob".into(),
            ..alice()
        };
        assert_eq!(
            s.open_endpoint_query(query, "main", &bob, now()),
            Some(Err(Unsealed::NotOwner))
        );
        assert_eq!(
            s.open_endpoint_query(&format!("{query}&{query}"), "main", &alice(), now()),
            Some(Err(Unsealed::Unknown)),
            "two sealed parameters"
        );
        assert_eq!(
            s.open_endpoint_query("sessionId=abc", "main", &alice(), now()),
            None
        );
        assert_eq!(
            s.seal_endpoint("/mcp/messages", "main", &alice(), now())
                .unwrap(),
            "/mcp/messages",
            "nothing to seal"
        );
    }

    #[test]
    fn a_sealed_query_is_no_session_id_and_back() {
        let s = SessionSealer::new(&[NEW], DAY);
        let header = s.seal("up", "main", &alice(), now()).unwrap();
        let endpoint = s
            .seal_endpoint("/m?sessionId=up", "main", &alice(), now())
            .unwrap();
        let query_token = endpoint.split_once('=').unwrap().1;
        assert_eq!(
            s.open(query_token, "main", &alice(), now()),
            Err(Unsealed::Unknown)
        );
        assert_eq!(
            s.open_endpoint_query(
                &format!("mcpgate_session={header}"),
                "main",
                &alice(),
                now()
            ),
            Some(Err(Unsealed::Unknown))
        );
    }

    #[test]
    fn every_refusal_has_its_own_stable_reason() {
        let reasons = [
            Unsealed::Unknown,
            Unsealed::ForeignRoute,
            Unsealed::NotOwner,
            Unsealed::Expired,
        ]
        .map(Unsealed::reason);
        assert_eq!(
            reasons,
            [
                "session_unknown",
                "session_foreign",
                "session_owner_mismatch",
                "session_expired"
            ]
        );
    }
}
