//! JWT validation against a real JWKS endpoint: the attack battery (every hostile token refused
//! for the right reason), caching, key rotation, unknown-`kid` single flight and rate limiting,
//! key removal, JWKS outage (stale window, then fail closed), readiness, file and discovery keys.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use mcpgate_auth::{AuthErrorKind, RouteTrust, TokenValidator};
use serde_json::{json, Value};

const RESOURCE: &str = "https://mcp.example.com/github/mcp";
const ISSUER_PEM: &[u8] = include_bytes!("fixtures/rsa-issuer.pem");
const ATTACKER_PEM: &[u8] = include_bytes!("fixtures/rsa-attacker.pem");

struct Idp {
    rsa: TestKey,
    ec: TestKey,
    server: JwksServer,
    iss: String,
}

impl Idp {
    async fn start() -> Idp {
        let rsa = TestKey::rsa("rsa-1", ISSUER_PEM);
        let ec = TestKey::ec("ec-1");
        let server = JwksServer::start(&[&rsa, &ec]).await;
        let iss = server.url("");
        Idp {
            rsa,
            ec,
            server,
            iss,
        }
    }

    /// `main` (trusted by the route) and `other` (configured, not trusted), sharing the JWKS.
    fn validator(&self, refresh: &str) -> TokenValidator {
        validator(&format!(
            "  - name: main\n    issuer: {iss}\n    jwks_uri: {jwks}\n    algorithms: [RS256, ES256]\n    required_claims: [exp, sub]\n    leeway: 30s\n    audiences: ['api://corp-tools']\n    jwks_refresh: {refresh}\n  - name: other\n    issuer: {iss}/other\n    jwks_uri: {jwks}\n",
            iss = self.iss,
            jwks = self.server.url("/jwks"),
        ))
    }

    fn claims(&self, overrides: Value) -> Value {
        let now = now();
        let mut c = json!({"iss": self.iss, "sub": "alice", "aud": RESOURCE, "exp": now + 300, "iat": now, "scope": "mcp:read mcp:write", "email": "alice@example.com", "email_verified": true, "groups": ["mcp-users"]});
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }
}

fn trust() -> RouteTrust {
    RouteTrust::new(vec!["main".into()], RESOURCE.into())
}

const DEFAULT_REFRESH: &str = "{unknown_kid_cooldown: 30s}";

#[tokio::test]
async fn valid_tokens_become_principals() {
    let idp = Idp::start().await;
    let v = idp.validator(DEFAULT_REFRESH);
    for key in [&idp.rsa, &idp.ec] {
        let token = key.sign(key.header(), idp.claims(json!({})));
        let p = v
            .validate(&token, &trust())
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e:?}", key.alg));
        assert_eq!(p.issuer, idp.iss);
        assert_eq!(p.issuer_name, "main");
        assert_eq!(p.subject.as_deref(), Some("alice"));
        assert_eq!(p.scopes, vec!["mcp:read", "mcp:write"]);
        assert_eq!(p.audience, vec![RESOURCE]);
        assert_eq!(p.email.as_deref(), Some("alice@example.com"));
        assert!(p.email_verified);
        assert_eq!(p.groups, vec!["mcp-users"]);
        assert_eq!(p.token_hash, mcpgate_auth::token_hash(&token));
        assert!(!p.token_hash.is_empty() && !token.contains(&p.token_hash));
    }
    // Accepted variants: `JWT`/absent typ, aud arrays, a configured extra audience, a trailing
    // slash, a kid-less token when exactly one key fits, expiry within leeway.
    let now = now();
    let ok = [
        idp.rsa.sign(
            json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}),
            idp.claims(json!({})),
        ),
        idp.rsa.sign(
            json!({"alg": "RS256", "kid": "rsa-1"}),
            idp.claims(json!({"aud": ["x", RESOURCE]})),
        ),
        idp.rsa.sign(
            idp.rsa.header(),
            idp.claims(json!({"aud": "api://corp-tools"})),
        ),
        idp.rsa.sign(
            idp.rsa.header(),
            idp.claims(json!({"aud": format!("{RESOURCE}/")})),
        ),
        idp.rsa.sign(json!({"alg": "RS256"}), idp.claims(json!({}))),
        idp.ec
            .sign(idp.ec.header(), idp.claims(json!({"exp": now - 10}))),
    ];
    for (i, t) in ok.iter().enumerate() {
        assert!(
            v.validate(t, &trust()).await.is_ok(),
            "variant {i}: {:?}",
            v.validate(t, &trust()).await
        );
    }
}

/// Build the hostile tokens: each with the exact reason it must be refused for.
fn battery(idp: &Idp) -> Vec<(&'static str, String, AuthErrorKind)> {
    use AuthErrorKind::*;
    let attacker = TestKey::rsa("rsa-1", ATTACKER_PEM);
    let attacker_ec = TestKey::ec("ec-1");
    let good = idp.claims(json!({}));
    // Tokens naming unknown kids claim to be issued two minutes ago, before the keys were
    // fetched: a kid those keys lack is then unknown for certain (401). With a recent `iat` the
    // answer is "retry later" while the cooldown runs — see `garbage_kids_*` below.
    let earlier = idp.claims(json!({"iat": now() - 120}));
    let good_text = good.to_string();
    let valid = idp.rsa.sign(idp.rsa.header(), good.clone());
    let (valid_input, valid_sig) = valid.rsplit_once('.').unwrap();
    let ec_valid = idp.ec.sign(idp.ec.header(), good.clone());
    let (ec_input, _) = ec_valid.rsplit_once('.').unwrap();
    let now = now();
    let hs = |alg: &str, secret: &[u8]| {
        let input = format!(
            "{}.{}",
            b64(json!({"alg": alg, "kid": "rsa-1"}).to_string()),
            b64(&good_text)
        );
        let algo = match alg {
            "HS256" => jsonwebtoken::Algorithm::HS256,
            "HS384" => jsonwebtoken::Algorithm::HS384,
            _ => jsonwebtoken::Algorithm::HS512,
        };
        let sig = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(secret),
            algo,
        )
        .unwrap();
        format!("{input}.{sig}")
    };
    let rsa_public_pem = {
        // The classic RS256→HS256 confusion: the public key (as published) used as an HMAC secret.
        serde_json::to_vec(&idp.rsa.jwk).unwrap()
    };
    let unsigned = |header: Value, claims: &Value| {
        format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
    };
    let with_sig = |input: &str, sig: &[u8]| format!("{input}.{}", b64(sig));
    let sign = |claims: Value| idp.rsa.sign(idp.rsa.header(), claims);
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));

    vec![
        // Algorithm games (RFC 8725 §2.1, §3.1).
        (
            "alg none, empty signature",
            unsigned(json!({"alg": "none"}), &good),
            Malformed,
        ),
        (
            "alg none, junk signature",
            format!("{}{}", unsigned(json!({"alg": "none"}), &good), b64("junk")),
            UnsupportedAlgorithm,
        ),
        (
            "alg None",
            format!(
                "{}{}",
                unsigned(json!({"alg": "None", "kid": "rsa-1"}), &good),
                b64("junk")
            ),
            UnsupportedAlgorithm,
        ),
        (
            "alg nOnE",
            format!("{}{}", unsigned(json!({"alg": "nOnE"}), &good), b64("junk")),
            UnsupportedAlgorithm,
        ),
        (
            "HS256 with the RSA JWK as secret",
            hs("HS256", &rsa_public_pem),
            UnsupportedAlgorithm,
        ),
        (
            "HS256 with the RSA modulus as secret",
            hs("HS256", idp.rsa.jwk["n"].as_str().unwrap().as_bytes()),
            UnsupportedAlgorithm,
        ),
        ("HS384", hs("HS384", b"secret"), UnsupportedAlgorithm),
        ("HS512", hs("HS512", b"secret"), UnsupportedAlgorithm),
        (
            "alg missing",
            idp.rsa.sign(json!({"kid": "rsa-1"}), good.clone()),
            UnsupportedAlgorithm,
        ),
        (
            "alg not in the allowlist (PS256)",
            idp.rsa
                .sign(json!({"alg": "PS256", "kid": "rsa-1"}), good.clone()),
            UnsupportedAlgorithm,
        ),
        (
            "alg lower-case",
            idp.rsa
                .sign(json!({"alg": "rs256", "kid": "rsa-1"}), good.clone()),
            UnsupportedAlgorithm,
        ),
        (
            "alg RS256 on the EC key",
            idp.rsa
                .sign(json!({"alg": "RS256", "kid": "ec-1"}), good.clone()),
            KeyMismatch,
        ),
        (
            "alg ES256 on the RSA key",
            idp.ec
                .sign(json!({"alg": "ES256", "kid": "rsa-1"}), good.clone()),
            KeyMismatch,
        ),
        // Keys named by the token (RFC 8725 §3.10): never fetched, never used.
        (
            "embedded jwk, attacker kid",
            attacker.sign(
                json!({"alg": "RS256", "kid": "evil", "jwk": attacker.jwk}),
                earlier.clone(),
            ),
            UnknownKey,
        ),
        (
            "embedded jwk, real kid",
            attacker.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "jwk": attacker.jwk}),
                good.clone(),
            ),
            BadSignature,
        ),
        (
            "jku to attacker",
            attacker.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "jku": idp.server.url("/attacker")}),
                good.clone(),
            ),
            BadSignature,
        ),
        (
            "jku with unknown kid",
            attacker.sign(
                json!({"alg": "RS256", "kid": "evil2", "jku": idp.server.url("/attacker")}),
                earlier.clone(),
            ),
            UnknownKey,
        ),
        (
            "x5u to attacker",
            attacker.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "x5u": idp.server.url("/attacker")}),
                good.clone(),
            ),
            BadSignature,
        ),
        (
            "x5c attacker chain",
            attacker.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "x5c": ["MIIB"]}),
                good.clone(),
            ),
            BadSignature,
        ),
        (
            "attacker EC key, real kid",
            attacker_ec.sign(json!({"alg": "ES256", "kid": "ec-1"}), good.clone()),
            BadSignature,
        ),
        // kid games.
        (
            "kid path traversal",
            idp.rsa.sign(
                json!({"alg": "RS256", "kid": "../../../../dev/null"}),
                earlier.clone(),
            ),
            UnknownKey,
        ),
        (
            "kid SQL injection",
            idp.rsa.sign(
                json!({"alg": "RS256", "kid": "' OR '1'='1"}),
                earlier.clone(),
            ),
            UnknownKey,
        ),
        (
            "kid not a string",
            idp.rsa
                .sign(json!({"alg": "RS256", "kid": 1}), good.clone()),
            Malformed,
        ),
        (
            "kid huge",
            idp.rsa.sign(
                json!({"alg": "RS256", "kid": "k".repeat(8000)}),
                earlier.clone(),
            ),
            UnknownKey,
        ),
        // Signature games.
        (
            "payload tampered",
            format!(
                "{}.{}.{valid_sig}",
                valid_input.split('.').next().unwrap(),
                b64(idp.claims(json!({"sub": "admin"})).to_string())
            ),
            BadSignature,
        ),
        (
            "header tampered",
            format!(
                "{}.{}.{valid_sig}",
                b64(json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}).to_string()),
                valid_input.split('.').nth(1).unwrap()
            ),
            BadSignature,
        ),
        ("signature empty", format!("{valid_input}."), Malformed),
        (
            "signature truncated",
            with_sig(
                valid_input,
                &URL_SAFE_NO_PAD.decode(valid_sig).unwrap()[..248],
            ),
            BadSignature,
        ),
        (
            "signature from another token",
            format!("{}.{valid_sig}", ec_input),
            BadSignature,
        ),
        (
            "ECDSA all-zero signature (CVE-2022-21449)",
            with_sig(ec_input, &[0u8; 64]),
            BadSignature,
        ),
        (
            "ECDSA DER-encoded junk",
            with_sig(ec_input, &[0x30, 0x44, 0x02, 0x20, 1, 2, 3]),
            BadSignature,
        ),
        ("signature padded base64", format!("{valid}="), Malformed),
        (
            "signature standard base64 alphabet",
            format!(
                "{valid_input}.{}",
                valid_sig.replace('-', "+").replace('_', "/") + "+/"
            ),
            Malformed,
        ),
        // Issuer and audience (RFC 9068 §4, RFC 8707).
        (
            "iss unknown",
            sign(idp.claims(json!({"iss": "https://evil.example"}))),
            UntrustedIssuer,
        ),
        (
            "iss with trailing slash",
            sign(idp.claims(json!({"iss": format!("{}/", idp.iss)}))),
            UntrustedIssuer,
        ),
        (
            "iss configured but not trusted by the route",
            sign(idp.claims(json!({"iss": format!("{}/other", idp.iss)}))),
            UntrustedIssuer,
        ),
        (
            "iss missing",
            sign(idp.claims(json!({"iss": null}))),
            Malformed,
        ),
        (
            "iss not a string",
            sign(idp.claims(json!({"iss": [idp.iss]}))),
            Malformed,
        ),
        (
            "aud another resource",
            sign(idp.claims(json!({"aud": "https://mcp.example.com/other/mcp"}))),
            WrongAudience,
        ),
        (
            "aud a prefix of the resource",
            sign(idp.claims(json!({"aud": "https://mcp.example.com/github"}))),
            WrongAudience,
        ),
        (
            "aud extended resource",
            sign(idp.claims(json!({"aud": format!("{RESOURCE}x")}))),
            WrongAudience,
        ),
        (
            "aud missing",
            sign(idp.claims(json!({"aud": null}))),
            WrongAudience,
        ),
        (
            "aud array without the resource",
            sign(idp.claims(json!({"aud": ["a", "b"]}))),
            WrongAudience,
        ),
        (
            "aud a number",
            sign(idp.claims(json!({"aud": 7}))),
            Malformed,
        ),
        // Time.
        (
            "expired beyond leeway",
            sign(idp.claims(json!({"exp": now - 31}))),
            Expired,
        ),
        (
            "exp missing",
            sign(idp.claims(json!({"exp": null}))),
            MissingClaim,
        ),
        (
            "exp a string",
            sign(idp.claims(json!({"exp": (now + 300).to_string()}))),
            Malformed,
        ),
        (
            "nbf in the future",
            sign(idp.claims(json!({"nbf": now + 120}))),
            NotYetValid,
        ),
        (
            "iat in the future",
            sign(idp.claims(json!({"iat": now + 120}))),
            IssuedInFuture,
        ),
        (
            "required sub missing",
            sign(idp.claims(json!({"sub": null}))),
            MissingClaim,
        ),
        // Header semantics.
        (
            "crit header",
            idp.rsa.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1}),
                good.clone(),
            ),
            UnsupportedHeader,
        ),
        (
            "unencoded payload (b64:false)",
            idp.rsa.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "b64": false, "crit": ["b64"]}),
                good.clone(),
            ),
            UnsupportedHeader,
        ),
        (
            "typ dpop+jwt",
            idp.rsa.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "typ": "dpop+jwt"}),
                good.clone(),
            ),
            UnsupportedHeader,
        ),
        (
            "typ logout+jwt",
            idp.rsa.sign(
                json!({"alg": "RS256", "kid": "rsa-1", "typ": "logout+jwt"}),
                good.clone(),
            ),
            UnsupportedHeader,
        ),
        // Parser differentials and shape.
        (
            "duplicate aud claim",
            idp.rsa.sign_text(
                &idp.rsa.header().to_string(),
                &format!(
                    r#"{{"iss":"{}","sub":"a","exp":{},"aud":"{RESOURCE}","aud":"https://evil"}}"#,
                    idp.iss,
                    now + 300
                ),
            ),
            Malformed,
        ),
        (
            "duplicate alg header",
            idp.rsa
                .sign_text(r#"{"alg":"RS256","kid":"rsa-1","alg":"none"}"#, &good_text),
            Malformed,
        ),
        (
            "duplicate iss via escape",
            idp.rsa.sign_text(
                &idp.rsa.header().to_string(),
                &format!(
                    r#"{{"iss":"{}","\u0069ss":"x","sub":"a","exp":{},"aud":"{RESOURCE}"}}"#,
                    idp.iss,
                    now + 300
                ),
            ),
            Malformed,
        ),
        (
            "claims an array",
            idp.rsa.sign_text(&idp.rsa.header().to_string(), "[1,2]"),
            Malformed,
        ),
        (
            "claims nested too deep",
            idp.rsa
                .sign_text(&idp.rsa.header().to_string(), &format!(r#"{{"x":{deep}}}"#)),
            Malformed,
        ),
        (
            "header not JSON",
            format!("{}.{}.{valid_sig}", b64("not json"), b64(&good_text)),
            Malformed,
        ),
        (
            "header padded base64",
            format!(
                "{}=.{}.{valid_sig}",
                b64(idp.rsa.header().to_string()),
                b64(&good_text)
            ),
            Malformed,
        ),
        ("two segments", valid_input.to_string(), Malformed),
        (
            "JWE compact (five segments)",
            format!("{valid}.a.b"),
            Malformed,
        ),
        ("not a JWT at all", "opaque-looking-token".into(), Malformed),
        (
            "symmetric JWKS key is never used",
            hs("HS256", b"published-oct-secret").replace(
                &b64(json!({"alg": "HS256", "kid": "rsa-1"}).to_string()),
                &b64(json!({"alg": "HS256", "kid": "oct-1"}).to_string()),
            ),
            UnsupportedAlgorithm,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_battery_is_refused_for_the_right_reason() {
    let idp = Idp::start().await;
    // Publish an `oct` key too: it must be dropped at parse time.
    let mut doc = json!({"keys": [idp.rsa.jwk, idp.ec.jwk, {"kty": "oct", "kid": "oct-1", "k": b64("published-oct-secret")}]});
    idp.server.set_document(doc.take());
    let v = idp.validator(DEFAULT_REFRESH);
    let cases = battery(&idp);
    assert!(cases.len() >= 60, "battery has {} tokens", cases.len());
    let mut failures = Vec::new();
    for (name, token, want) in &cases {
        // Twice: the second answer must not come from a cache that forgot the reason.
        for attempt in 0..2 {
            match v.validate(token, &trust()).await {
                Err(e) if e.kind == *want => {}
                other => failures.push(format!(
                    "{name} (attempt {attempt}): want {want:?}, got {:?}",
                    other.map(|p| p.subject.clone())
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} refused wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        idp.server.attacker_fetches(),
        0,
        "jku/x5u must never be followed"
    );
    // All the unknown kids above caused at most one extra fetch (rate limited).
    assert!(
        idp.server.fetches() <= 2,
        "JWKS fetched {} times",
        idp.server.fetches()
    );
}

#[tokio::test]
async fn repeat_tokens_are_served_from_the_cache_and_audience_is_checked_per_route() {
    let idp = Idp::start().await;
    let v = idp.validator(DEFAULT_REFRESH);
    let token = idp.ec.sign(idp.ec.header(), idp.claims(json!({})));
    let first = v.validate(&token, &trust()).await.unwrap();
    let second = v.validate(&token, &trust()).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second check reused the verified result"
    );
    // The cached result is still bound to its audience and issuer per route.
    let other_route = RouteTrust::new(
        vec!["main".into()],
        "https://mcp.example.com/other/mcp".into(),
    );
    assert_eq!(
        v.validate(&token, &other_route).await.unwrap_err().kind,
        AuthErrorKind::WrongAudience
    );
    let untrusting = RouteTrust::new(vec!["other".into()], RESOURCE.into());
    assert_eq!(
        v.validate(&token, &untrusting).await.unwrap_err().kind,
        AuthErrorKind::UntrustedIssuer
    );
    assert!(v.validate(&token, &trust()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_is_picked_up_with_one_shared_refetch() {
    let idp = Idp::start().await;
    let v = idp.validator(DEFAULT_REFRESH);
    v.start_background();
    assert!(v.wait_ready(Duration::from_secs(10)).await);
    let before = idp.server.fetches();
    // The IdP rotates: a new key appears and tokens start using it.
    let rotated = TestKey::ec("ec-2");
    idp.server.publish(&[&idp.rsa, &idp.ec, &rotated]);
    let token = rotated.sign(rotated.header(), idp.claims(json!({})));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.validate(&token, &trust()).await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            Ok(()),
            "no request is rejected during rotation"
        );
    }
    assert_eq!(
        idp.server.fetches() - before,
        1,
        "50 concurrent requests shared one refetch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_kids_cannot_hammer_the_jwks_endpoint() {
    let idp = Idp::start().await;
    let v = idp.validator(DEFAULT_REFRESH);
    let ok = idp.rsa.sign(idp.rsa.header(), idp.claims(json!({})));
    v.validate(&ok, &trust()).await.unwrap();
    let before = idp.server.fetches();
    let garbage = |i: usize, claims: Value| {
        idp.ec.sign(
            json!({"alg": "ES256", "kid": format!("random-{i}")}),
            claims,
        )
    };
    // Recent `iat`: it could be a key published since our fetch, so while the 30 s cooldown runs
    // (longer than a request is held) the answer is "retry later" — never a pass, never a fetch.
    for i in 0..100 {
        let kind = v
            .validate(&garbage(i, idp.claims(json!({}))), &trust())
            .await
            .unwrap_err()
            .kind;
        assert!(
            matches!(
                kind,
                AuthErrorKind::UnknownKey | AuthErrorKind::UnknownKeyPending
            ),
            "{kind:?}"
        );
    }
    // Issued before our keys were fetched: certainly unknown, refused without any fetch.
    for i in 100..200 {
        let old = idp.claims(json!({"iat": now() - 120}));
        assert_eq!(
            v.validate(&garbage(i, old), &trust())
                .await
                .unwrap_err()
                .kind,
            AuthErrorKind::UnknownKey
        );
    }
    assert!(
        idp.server.fetches() - before <= 1,
        "one refetch per cooldown, however many unknown kids"
    );
}

/// `count` tokens with random kids and a current `iat`, validated concurrently; all refused.
async fn garbage_burst(idp: &Idp, v: &TokenValidator, count: usize) -> Vec<AuthErrorKind> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let token = idp.ec.sign(
                json!({"alg": "ES256", "kid": format!("garbage-{i}-{}", now())}),
                idp.claims(json!({})),
            );
            let v = v.clone();
            tokio::spawn(async move { v.validate(&token, &trust()).await.map(|_| ()) })
        })
        .collect();
    let mut kinds = Vec::new();
    for t in tasks {
        kinds.push(
            t.await
                .unwrap()
                .expect_err("garbage is never accepted")
                .kind,
        );
    }
    kinds
}

/// Issue 12, class 10: garbage kids used to spend the refetch budget, so a token signed with a
/// key the IdP had just published was refused (401) until the cooldown passed.
#[tokio::test(flavor = "multi_thread")]
async fn garbage_kids_cannot_get_a_fresh_rotation_refused() {
    let cooldown = Duration::from_secs(2);
    let idp = Idp::start().await;
    let v = idp.validator("{unknown_kid_cooldown: 2s}");
    v.start_background();
    assert!(v.wait_ready(Duration::from_secs(10)).await);
    let started = Instant::now();
    let startup = idp.server.fetches() as usize; // one per configured issuer

    // The attacker goes first and keeps going: garbage spends the cooldown's one fetch.
    let kinds = garbage_burst(&idp, &v, 50).await;
    assert!(
        kinds.iter().all(|k| *k == AuthErrorKind::UnknownKey),
        "held until a fetch could rule, then refused as unknown: {kinds:?}"
    );
    let more: Vec<String> = (0..40)
        .map(|i| {
            idp.ec.sign(
                json!({"alg": "ES256", "kid": format!("more-garbage-{i}")}),
                idp.claims(json!({})),
            )
        })
        .collect();
    let attack = {
        let v = v.clone();
        tokio::spawn(async move {
            let mut refused = Vec::new();
            for token in more {
                let v = v.clone();
                refused.push(tokio::spawn(async move {
                    v.validate(&token, &trust()).await.unwrap_err().kind
                }));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for r in refused {
                assert_eq!(r.await.unwrap(), AuthErrorKind::UnknownKey);
            }
        })
    };

    // The IdP rotates, and at once a client presents a token signed with the new key.
    let rotated = TestKey::ec("ec-rotated");
    idp.server.publish(&[&idp.rsa, &idp.ec, &rotated]);
    let token = rotated.sign(rotated.header(), idp.claims(json!({})));
    let asked = Instant::now();
    let p = v.validate(&token, &trust()).await;
    assert_eq!(
        p.map(|p| p.subject.clone()),
        Ok(Some("alice".into())),
        "the fresh key's token is accepted on its first try"
    );
    assert!(
        asked.elapsed() <= cooldown + Duration::from_millis(1500),
        "delayed by at most one cooldown: {:?}",
        asked.elapsed()
    );
    attack.await.unwrap();

    // Meanwhile the IdP never saw more than one fetch per cooldown.
    let times = idp.server.fetch_times();
    let on_demand = &times[startup..];
    assert!(!on_demand.is_empty());
    // Measured where the requests arrive, so allow for connection set-up jitter; without the
    // limit the gaps would be near zero.
    for pair in on_demand.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= cooldown - Duration::from_millis(500),
            "two fetches {gap:?} apart (cooldown {cooldown:?}); all: {:?}",
            on_demand
                .iter()
                .map(|t| *t - on_demand[0])
                .collect::<Vec<_>>()
        );
    }
    let budget = started.elapsed().as_secs_f64() / cooldown.as_secs_f64();
    assert!(
        (on_demand.len() as f64) <= budget.ceil() + 1.0,
        "{} on-demand fetches in {:?}",
        on_demand.len(),
        started.elapsed()
    );
}

/// With a cooldown longer than a request may be held, a possibly-new key gets "retry later"
/// (503 + Retry-After), never "unknown key" (401): the client keeps its token and retries.
#[tokio::test(flavor = "multi_thread")]
async fn with_a_long_cooldown_a_fresh_key_is_told_to_retry_not_refused() {
    let idp = Idp::start().await;
    let v = idp.validator("{unknown_kid_cooldown: 5m}");
    v.start_background();
    assert!(v.wait_ready(Duration::from_secs(10)).await);
    let before = idp.server.fetches();
    let kinds = garbage_burst(&idp, &v, 20).await;
    assert!(kinds.iter().all(|k| matches!(
        k,
        AuthErrorKind::UnknownKey | AuthErrorKind::UnknownKeyPending
    )));
    assert_eq!(
        idp.server.fetches() - before,
        1,
        "the garbage got one fetch, which spent the cooldown"
    );
    let rotated = TestKey::ec("ec-rotated");
    idp.server.publish(&[&idp.rsa, &idp.ec, &rotated]);
    let token = rotated.sign(rotated.header(), idp.claims(json!({})));
    let e = v.validate(&token, &trust()).await.unwrap_err();
    assert_eq!(e.kind, AuthErrorKind::UnknownKeyPending);
    assert!(e.kind.is_unavailable(), "503 + Retry-After, not 401");
    assert_eq!(idp.server.fetches() - before, 1, "and no extra fetch");
}

/// Poll `validate` until it returns `want`, for at most `limit`; returns how long it took.
async fn until(
    v: &TokenValidator,
    token: &str,
    want: Result<(), AuthErrorKind>,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = v
            .validate(token, &trust())
            .await
            .map(|_| ())
            .map_err(|e| e.kind);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still {got:?} after {limit:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_key_revokes_cached_tokens_at_the_next_refresh() {
    let idp = Idp::start().await;
    let v = idp.validator("{min_interval: 1s, max_interval: 1s}");
    v.start_background();
    assert!(v.wait_ready(Duration::from_secs(10)).await);
    let token = idp.ec.sign(idp.ec.header(), idp.claims(json!({})));
    v.validate(&token, &trust()).await.unwrap();
    idp.server.publish(&[&idp.rsa]);
    until(
        &v,
        &token,
        Err(AuthErrorKind::UnknownKey),
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jwks_outage_uses_last_keys_for_the_stale_window_then_fails_closed() {
    let idp = Idp::start().await;
    let v = idp.validator("{min_interval: 1s, max_interval: 1s, stale_window: 2s}");
    v.start_background();
    assert!(v.wait_ready(Duration::from_secs(10)).await);
    let cached = idp.rsa.sign(idp.rsa.header(), idp.claims(json!({})));
    v.validate(&cached, &trust()).await.unwrap();
    idp.server.set_available(false);
    let outage = Instant::now();
    // Within the window both a cached and a fresh token still pass.
    let fresh = idp
        .ec
        .sign(idp.ec.header(), idp.claims(json!({"sub": "bob"})));
    assert!(v.validate(&fresh, &trust()).await.is_ok());
    // Then both fail closed with "keys unavailable" (a 503), never pass, never a 401.
    until(
        &v,
        &cached,
        Err(AuthErrorKind::KeysUnavailable),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        v.validate(&fresh, &trust()).await.unwrap_err().kind,
        AuthErrorKind::KeysUnavailable
    );
    let failed_after = outage.elapsed();
    assert!(
        failed_after >= Duration::from_secs(1),
        "keys dropped too early: {failed_after:?}"
    );
    // Recovery without a restart.
    idp.server.set_available(true);
    until(&v, &cached, Ok(()), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_keys_fail_closed_and_keep_readiness_down() {
    let idp = Idp::start().await;
    idp.server.set_available(false);
    let v = idp.validator(DEFAULT_REFRESH);
    v.start_background();
    assert!(!v.wait_ready(Duration::from_millis(300)).await);
    let token = idp.rsa.sign(idp.rsa.header(), idp.claims(json!({})));
    let e = v.validate(&token, &trust()).await.unwrap_err();
    assert_eq!(e.kind, AuthErrorKind::KeysUnavailable);
    assert!(e.kind.is_unavailable());
    idp.server.set_available(true);
    assert!(
        v.wait_ready(Duration::from_secs(10)).await,
        "ready once the JWKS answers"
    );
    until(&v, &token, Ok(()), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_garbage_jwks_are_refused() {
    let idp = Idp::start().await;
    let v = idp.validator(DEFAULT_REFRESH);
    let token = idp.rsa.sign(idp.rsa.header(), idp.claims(json!({})));
    idp.server
        .set_document(json!({"keys": [idp.rsa.jwk], "padding": "x".repeat(600 * 1024)}));
    assert_eq!(
        v.validate(&token, &trust()).await.unwrap_err().kind,
        AuthErrorKind::KeysUnavailable
    );
    let v = idp.validator(DEFAULT_REFRESH);
    idp.server.set_document(json!({"keys": "nope"}));
    assert_eq!(
        v.validate(&token, &trust()).await.unwrap_err().kind,
        AuthErrorKind::KeysUnavailable
    );
}

#[tokio::test]
async fn keys_from_a_file() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({"keys": [idp.rsa.jwk]}).to_string()).unwrap();
    let v = validator(&format!(
        "  - name: main\n    issuer: {}\n    jwks_file: {}\n    algorithms: [RS256]\n",
        idp.iss,
        path.display()
    ));
    let token = idp.rsa.sign(idp.rsa.header(), idp.claims(json!({})));
    let p = v.validate(&token, &trust()).await.unwrap();
    assert_eq!(p.subject.as_deref(), Some("alice"));
    assert_eq!(idp.server.fetches(), 0, "no network for file keys");
}

#[tokio::test]
async fn keys_by_discovery_from_the_issuer_metadata() {
    let issuer = mcpgate_sample::DemoIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let v = validator(&format!(
        "  - name: main\n    issuer: {}\n    discovery: true\n    algorithms: [ES256]\n",
        issuer.issuer_url()
    ));
    let token = issuer.mint_default(RESOURCE, "mcp:read", Duration::from_secs(300));
    let p = v.validate(&token, &trust()).await.unwrap();
    assert_eq!(p.issuer, issuer.issuer_url());
    assert_eq!(p.client_id.as_deref(), Some("demo-client"));
    assert!(issuer.jwks_fetches() >= 1);
}
