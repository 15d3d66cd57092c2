//! Opaque tokens through RFC 7662 introspection against a real introspection endpoint (the
//! sample issuer): active/inactive, claim checks, the audience requirement, caching bounded by
//! `exp`, negative caching, single flight, both client authentication methods, fail-closed on an
//! unavailable IdP, and the bound on concurrent calls (against a slow test endpoint).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use mcpgate_auth::{AuthErrorKind, RouteTrust, TokenValidator};
use mcpgate_sample::{DemoIssuer, IssuerOptions};
use serde_json::json;

const RESOURCE: &str = "https://mcp.example.com/github/mcp";

fn trust() -> RouteTrust {
    RouteTrust::new(vec!["idp".into()], RESOURCE.into())
}

async fn issuer() -> DemoIssuer {
    DemoIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn introspecting(issuer: &DemoIssuer, extra: &str) -> TokenValidator {
    validator(&format!(
        "  - name: idp\n    issuer: {}\n    introspection:\n      endpoint: {}\n      client_id: demo-client\n      client_secret: demo-secret\n      cache_ttl: 5m\n      negative_cache_ttl: 10s\n      timeout: 1s\n{extra}",
        issuer.issuer_url(),
        issuer.introspection_url()
    ))
}

#[tokio::test]
async fn active_tokens_become_principals_and_are_cached() {
    let idp = issuer().await;
    let v = introspecting(&idp, "");
    let token = idp.mint_opaque(json!({"sub": "carol", "scope": "mcp:read", "aud": RESOURCE, "exp": now() + 600, "client_id": "cli", "email": "carol@example.com", "email_verified": true}));
    let p = v.validate(&token, &trust()).await.unwrap();
    assert_eq!(p.subject.as_deref(), Some("carol"));
    assert_eq!(p.scopes, vec!["mcp:read"]);
    assert_eq!(p.client_id.as_deref(), Some("cli"));
    assert_eq!(p.issuer_name, "idp");
    for _ in 0..5 {
        v.validate(&token, &trust()).await.unwrap();
    }
    assert_eq!(
        idp.introspections(),
        1,
        "repeat requests are answered from the cache"
    );
    // The cache is shared across routes, but the audience is still checked per route.
    let other = RouteTrust::new(vec!["idp".into()], "https://mcp.example.com/other".into());
    assert_eq!(
        v.validate(&token, &other).await.unwrap_err().kind,
        AuthErrorKind::WrongAudience
    );
    assert_eq!(idp.introspections(), 1);
}

#[tokio::test]
async fn inactive_and_failing_claims_are_refused_and_negatively_cached() {
    let idp = issuer().await;
    let v = introspecting(&idp, "");
    assert_eq!(
        v.validate("never-issued", &trust()).await.unwrap_err().kind,
        AuthErrorKind::Inactive
    );
    assert_eq!(
        v.validate("never-issued", &trust()).await.unwrap_err().kind,
        AuthErrorKind::Inactive
    );
    assert_eq!(idp.introspections(), 1, "the negative answer is cached");
    let now = now();
    let cases = [
        (
            json!({"sub": "a", "iss": "https://evil.example"}),
            AuthErrorKind::UntrustedIssuer,
        ),
        (
            json!({"sub": "a", "aud": "https://elsewhere"}),
            AuthErrorKind::WrongAudience,
        ),
        (
            json!({"sub": "a", "nbf": now + 600}),
            AuthErrorKind::NotYetValid,
        ),
        (json!({"sub": "a", "aud": 5}), AuthErrorKind::Malformed),
    ];
    for (claims, want) in cases {
        let token = idp.mint_opaque(claims.clone());
        assert_eq!(
            v.validate(&token, &trust()).await.unwrap_err().kind,
            want,
            "{claims}"
        );
    }
}

/// Issue 12, class 6: an active answer without an audience used to pass on every route.
#[tokio::test]
async fn answers_without_an_audience_are_refused_like_jwts_unless_opted_in() {
    let idp = issuer().await;
    let v = introspecting(&idp, "");
    let missing = idp.mint_opaque(json!({"sub": "a", "scope": "mcp:read"}));
    // ORY Hydra answers `"aud": []` for tokens minted without an audience.
    let empty = idp.mint_opaque(json!({"sub": "a", "scope": "mcp:read", "aud": []}));
    for token in [&missing, &empty] {
        for _ in 0..2 {
            // Twice: the cached answer must not forget the rule.
            let e = v.validate(token, &trust()).await.unwrap_err();
            assert_eq!(e.kind, AuthErrorKind::WrongAudience);
            assert!(!e.kind.is_unavailable(), "a refusal (401), not a 503");
        }
    }
    assert_eq!(
        idp.introspections(),
        2,
        "refused from the cache the second time"
    );
    // The same reason a JWT without a matching `aud` gets, and a matching `aud` still passes.
    let named = idp.mint_opaque(json!({"sub": "a", "aud": [RESOURCE]}));
    assert!(v.validate(&named, &trust()).await.is_ok());

    // An issuer that must accept audience-less answers says so per issuer.
    let lenient = introspecting(&idp, "      accept_missing_audience: true\n");
    for token in [&missing, &empty] {
        let p = lenient.validate(token, &trust()).await.unwrap();
        assert_eq!(p.subject.as_deref(), Some("a"));
    }
    // Opting in covers only a missing audience, never a wrong one.
    let elsewhere = idp.mint_opaque(json!({"sub": "a", "aud": "https://elsewhere"}));
    assert_eq!(
        lenient
            .validate(&elsewhere, &trust())
            .await
            .unwrap_err()
            .kind,
        AuthErrorKind::WrongAudience
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_results_never_outlive_the_token() {
    let idp = issuer().await;
    let v = introspecting(&idp, "");
    let token = idp.mint_opaque(json!({"sub": "a", "aud": RESOURCE, "exp": now() + 2}));
    v.validate(&token, &trust()).await.unwrap();
    let start = Instant::now();
    loop {
        match v.validate(&token, &trust()).await {
            Ok(_) => assert!(
                start.elapsed() < Duration::from_secs(5),
                "accepted long after exp"
            ),
            Err(e) => {
                assert!(
                    matches!(e.kind, AuthErrorKind::Expired | AuthErrorKind::Inactive),
                    "{e:?}"
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_share_one_introspection() {
    let idp = issuer().await;
    idp.set_introspection_delay(Duration::from_millis(300));
    // One call slot: the 100 share the one call and so the one slot; none is shed.
    let v = introspecting(&idp, "      max_concurrent: 1\n");
    let token = idp.mint_opaque(json!({"sub": "a", "aud": RESOURCE, "exp": now() + 600}));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move {
                v.validate(&token, &trust())
                    .await
                    .map(|p| p.subject.clone())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(Some("a".into())));
    }
    assert_eq!(
        idp.introspections(),
        1,
        "100 concurrent requests, one introspection call"
    );
}

#[tokio::test]
async fn client_secret_post_works_too() {
    let idp = issuer().await;
    let v = introspecting(&idp, "");
    let post = validator(&format!(
        "  - name: idp\n    issuer: {}\n    introspection:\n      endpoint: {}\n      client_id: demo-client\n      client_secret: demo-secret\n      auth_method: client_secret_post\n",
        idp.issuer_url(),
        idp.introspection_url()
    ));
    let token = idp.mint_opaque(json!({"sub": "p", "aud": RESOURCE}));
    assert!(post.validate(&token, &trust()).await.is_ok());
    assert!(v.validate(&token, &trust()).await.is_ok());
}

#[tokio::test]
async fn an_unavailable_idp_is_a_503_never_a_pass_or_a_401() {
    // Wrong client credentials: the IdP refuses us, so we cannot know — unavailable.
    let idp = issuer().await;
    let bad_creds = validator(&format!(
        "  - name: idp\n    issuer: {}\n    introspection:\n      endpoint: {}\n      client_id: demo-client\n      client_secret: wrong\n",
        idp.issuer_url(),
        idp.introspection_url()
    ));
    let token = idp.mint_opaque(json!({"sub": "a", "aud": RESOURCE}));
    assert_eq!(
        bad_creds.validate(&token, &trust()).await.unwrap_err().kind,
        AuthErrorKind::IdpUnavailable
    );

    // Too slow: the timeout (1 s) fires.
    let v = introspecting(&idp, "");
    idp.set_introspection_delay(Duration::from_secs(3));
    let started = Instant::now();
    assert_eq!(
        v.validate(&token, &trust()).await.unwrap_err().kind,
        AuthErrorKind::IdpUnavailable
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the introspection timeout bounds the wait"
    );
    // Failures are not cached: once the IdP answers again, the token passes.
    idp.set_introspection_delay(Duration::ZERO);
    assert!(v.validate(&token, &trust()).await.is_ok());

    // Gone entirely.
    let url = idp.introspection_url();
    let iss = idp.issuer_url();
    idp.shutdown().await;
    let gone = validator(&format!("  - name: idp\n    issuer: {iss}\n    introspection:\n      endpoint: {url}\n      client_id: demo-client\n      client_secret: demo-secret\n"));
    let e = gone.validate(&token, &trust()).await.unwrap_err();
    assert_eq!(e.kind, AuthErrorKind::IdpUnavailable);
    assert!(e.kind.is_unavailable());
}

#[tokio::test]
async fn jwts_from_an_introspection_only_issuer_are_introspected() {
    let idp = DemoIssuer::start_with("127.0.0.1:0".parse().unwrap(), IssuerOptions::default())
        .await
        .unwrap();
    let v = introspecting(&idp, "");
    // The demo issuer does not know this JWT as an opaque token: inactive, not "unknown key".
    let jwt = idp.mint_default(RESOURCE, "mcp:read", Duration::from_secs(60));
    assert_eq!(
        v.validate(&jwt, &trust()).await.unwrap_err().kind,
        AuthErrorKind::Inactive
    );
    assert_eq!(idp.introspections(), 1);
}

/// A validator for the slow test endpoint with at most `bound` calls in flight.
fn bounded(peer: &IntrospectionServer, bound: usize) -> TokenValidator {
    validator(&format!(
        "  - name: idp\n    issuer: https://idp.example.com\n    introspection:\n      endpoint: {}\n      client_id: c\n      client_secret: s\n      timeout: 5s\n      max_concurrent: {bound}\n",
        peer.url()
    ))
}

/// Issue 12, class 11: 300 distinct junk bearer strings used to mean 300 calls at once at the IdP.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_introspection_is_bounded_and_the_excess_is_shed_with_a_503() {
    let peer = IntrospectionServer::start(Duration::from_millis(400)).await;
    let v = bounded(&peer, 4);
    let junk: Vec<String> = (0..300).map(|i| format!("junk-{i}")).collect();
    let tasks: Vec<_> = junk
        .iter()
        .map(|token| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.validate(&token, &trust()).await.map(|_| ()) })
        })
        .collect();
    let mut kinds: HashMap<AuthErrorKind, u64> = HashMap::new();
    for t in tasks {
        let kind = t.await.unwrap().expect_err("junk is never accepted").kind;
        *kinds.entry(kind).or_default() += 1;
    }
    assert!(
        peer.max_in_flight() <= 4,
        "the IdP saw {} calls at once",
        peer.max_in_flight()
    );
    let (inactive, busy) = (
        kinds.remove(&AuthErrorKind::Inactive).unwrap_or(0),
        kinds.remove(&AuthErrorKind::IntrospectionBusy).unwrap_or(0),
    );
    assert!(kinds.is_empty(), "unexpected reasons: {kinds:?}");
    assert!(busy > 0, "the excess was shed, not queued without end");
    assert!(
        AuthErrorKind::IntrospectionBusy.is_unavailable(),
        "shed → 503 + Retry-After"
    );
    assert_eq!(
        inactive,
        peer.calls(),
        "every answered token was asked once"
    );
    assert_eq!(inactive + busy, 300);

    // Shedding is not remembered: once the burst is over, a shed token is judged normally.
    peer.set_delay(Duration::ZERO);
    let calls = peer.calls();
    for token in &junk {
        assert_eq!(
            v.validate(token, &trust()).await.unwrap_err().kind,
            AuthErrorKind::Inactive
        );
    }
    assert_eq!(
        peer.calls() - calls,
        busy,
        "only the shed ones were asked again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_waits_briefly_for_a_slot_instead_of_failing() {
    let peer = IntrospectionServer::start(Duration::from_millis(150)).await;
    peer.activate("good", json!({"sub": "g", "aud": RESOURCE}));
    let v = bounded(&peer, 1);
    // One slow call in flight holds the only slot; the next waits for it rather than failing.
    let first = {
        let v = v.clone();
        tokio::spawn(async move { v.validate("junk", &trust()).await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let p = v.validate("good", &trust()).await.unwrap();
    assert_eq!(p.subject.as_deref(), Some("g"));
    assert_eq!(
        first.await.unwrap().unwrap_err().kind,
        AuthErrorKind::Inactive
    );
    assert_eq!(peer.max_in_flight(), 1);
}
