//! End-to-end token checks: the real gateway, a real JWKS issuer (the sample crate's), a real
//! MCP upstream. Challenges, audience binding, no token passthrough, key rotation, readiness.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use common::*;
use mcpgate_sample::DemoIssuer;
use serde_json::{json, Value};

type Setup = Stack;

async fn setup() -> Setup {
    stack(|issuer, up| {
        format!(
        "public_url: http://127.0.0.1:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\nadmin:\n  bind: 127.0.0.1:{{admin}}\nissuers:\n  - name: local\n    issuer: {}\n    jwks_uri: {}\n    algorithms: [ES256]\n    jwks_refresh: {{ unknown_kid_cooldown: 1s }}\n    introspection:\n      endpoint: {}/introspect\n      client_id: demo-client\n      client_secret: demo-secret\n      timeout: 1s\nroutes:\n  - name: main\n    path: /mcp\n    upstream:\n      url: {}\n    auth:\n      issuers: [local]\n",
        issuer.issuer_url(),
        issuer.jwks_url(),
        issuer.issuer_url(),
        up.url()
        )
    })
    .await
}

fn resource(gw: &Gw) -> String {
    gw.url("/mcp")
}

#[tokio::test(flavor = "multi_thread")]
async fn challenge_valid_token_and_no_passthrough() {
    let s = setup().await;
    let c = client();
    let url = resource(&s.gw);
    let ping = jsonrpc(1, "ping", json!({}));

    let r = mcp_post(&c, &url, &ping).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let metadata = format!(
        "http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp",
        s.gw.port
    );
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata}\"")),
        "{challenge}"
    );
    assert_eq!(s.up.stats.requests(), 0, "nothing reached the upstream");

    // The challenge's metadata URL serves RFC 9728 metadata naming this resource and its issuer.
    let doc = c
        .get(&metadata)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    assert_eq!(doc.headers()["access-control-allow-origin"], "*");
    let doc: Value = doc.json().await.unwrap();
    assert_eq!(
        doc["resource"],
        url.as_str(),
        "resource equals the URL the client used"
    );
    assert_eq!(doc["authorization_servers"], json!([s.issuer.issuer_url()]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));

    let token = s
        .issuer
        .mint_default(&url, "mcp:read", Duration::from_secs(300));
    let r = mcp_post(&c, &url, &ping)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        s.up.stats.last_headers().get("authorization").is_none(),
        "no token passthrough"
    );
    assert!(
        !s.gw.log().contains(&token),
        "the token never appears in logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_tokens_are_refused_with_invalid_token() {
    let s = setup().await;
    let c = client();
    let url = resource(&s.gw);
    let ping = jsonrpc(1, "ping", json!({}));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let other_audience = s.issuer.mint_default(
        "http://127.0.0.1:1/other",
        "mcp:read",
        Duration::from_secs(300),
    );
    let expired = s.issuer.mint(json!({
        "iss": s.issuer.issuer_url(), "sub": "u", "aud": url, "exp": now - 3600, "iat": now - 7200
    }));
    let garbage = "not.a.jwt".to_string();
    for (name, token) in [
        ("wrong audience", other_audience),
        ("expired", expired),
        ("garbage", garbage),
    ] {
        let r = mcp_post(&c, &url, &ping)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}");
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["jsonrpc"], "2.0", "{name}");
    }
    let r = mcp_post(&c, &url, &ping)
        .header("authorization", "Bearer a b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "malformed Authorization header");
    assert_eq!(s.up.stats.requests(), 0, "nothing reached the upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_mid_traffic_causes_no_rejection() {
    let s = setup().await;
    let url = resource(&s.gw);
    let issuer = std::sync::Arc::new(s.issuer);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Four clients call continuously, each with a freshly minted token (so the newest key).
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (issuer, stop, url) = (issuer.clone(), stop.clone(), url.clone());
            tokio::spawn(async move {
                let c = client();
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let token = issuer.mint_default(&url, "mcp:read", Duration::from_secs(300));
                    let r = mcp_post(&c, &url, &jsonrpc(1, "ping", json!({})))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    if r.status() == 200 {
                        ok += 1;
                    } else {
                        failed.push(r.status().as_u16());
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    // Rotate three times while traffic flows; retire the oldest key each time. Rotations are
    // spaced beyond the unknown-kid cooldown (1 s here), as real IdPs rotate days apart.
    let mut old = issuer.current_kid();
    for _ in 0..3 {
        let (since, before) = (std::time::Instant::now(), s.up.stats.requests());
        while s.up.stats.requests() < before + 20 || since.elapsed() < Duration::from_millis(1100) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        issuer.rotate();
        issuer.retire(&old);
        old = issuer.current_kid();
    }
    let before = s.up.stats.requests();
    while s.up.stats.requests() < before + 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = 0;
    for w in workers {
        let (ok, failed) = w.await.unwrap();
        assert!(failed.is_empty(), "rejected during rotation: {failed:?}");
        total += ok;
    }
    assert!(total >= 80, "{total} requests went through");
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_waits_for_the_first_jwks_fetch() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let issuer = DemoIssuer::start(loopback).await.unwrap();
    issuer.set_available(false);
    let yaml = format!(
        "public_url: http://127.0.0.1:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\nadmin:\n  bind: 127.0.0.1:{{admin}}\nissuers:\n  - name: local\n    issuer: {}\n    jwks_uri: {}\n    algorithms: [ES256]\n    jwks_refresh: {{ min_interval: 1s, max_interval: 1s }}\nroutes:\n  - name: main\n    path: /mcp\n    upstream:\n      url: http://127.0.0.1:1/mcp\n    auth:\n      issuers: [local]\n",
        issuer.issuer_url(),
        issuer.jwks_url()
    );
    let mut gw = Gw::start(&yaml);
    let c = client();
    // Up but not ready while the keys cannot be fetched; and requests fail closed meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = c.get(gw.admin("/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.get(gw.admin("/readyz")).send().await.unwrap().status(),
        503
    );
    let token = issuer.mint_default(&gw.url("/mcp"), "mcp:read", Duration::from_secs(300));
    let r = mcp_post(&c, &gw.url("/mcp"), &jsonrpc(1, "ping", json!({})))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        503,
        "no keys yet: fail closed with 503, never pass"
    );
    assert!(r.headers().contains_key("retry-after"));
    issuer.set_available(true);
    gw.ready().await;
}

/// Forged and malformed tokens through the real gateway: every one is a 401 `invalid_token`
/// (or 400 for a malformed header), nothing reaches the upstream, the reason and a token hash
/// are logged (never the token), and the gateway keeps serving valid requests.
#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_are_refused_and_the_gateway_stays_healthy() {
    let s = setup().await;
    let c = client();
    let url = resource(&s.gw);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iss = s.issuer.issuer_url();
    let kid = s.issuer.current_kid();
    let good = json!({"iss": iss, "sub": "u", "aud": url, "exp": now + 300, "iat": now});
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let valid = s.issuer.mint(good.clone());
    let strip = |t: String| format!("{}.AAAA", t.rsplit_once('.').unwrap().0);
    let (input, sig) = valid.rsplit_once('.').unwrap();
    let mut forged: Vec<String> = vec![
        format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&good.to_string())),
        s.issuer
            .sign_raw(json!({"alg": "HS256", "kid": kid}), good.clone()),
        s.issuer
            .sign_raw(json!({"alg": "RS256", "kid": kid}), good.clone()),
        s.issuer
            .sign_raw(json!({"alg": "ES256", "kid": "nope"}), good.clone()),
        s.issuer.sign_raw(
            json!({"alg": "ES256", "kid": "attacker", "jku": "http://127.0.0.1:1/jwks"}),
            good.clone(),
        ),
        s.issuer.sign_raw(
            json!({"alg": "ES256", "kid": kid, "crit": ["x"]}),
            good.clone(),
        ),
        s.issuer
            .mint(with("aud", json!("http://127.0.0.1:1/other"))),
        s.issuer.mint(with("aud", json!(null))),
        s.issuer.mint(with("iss", json!("https://evil.example"))),
        s.issuer.mint(with("exp", json!(now - 3600))),
        s.issuer.mint(with("exp", json!(null))),
        s.issuer.mint(with("nbf", json!(now + 3600))),
        s.issuer.mint(with("iat", json!(now + 3600))),
        format!("{input}.{}", &sig[..sig.len() / 2]),
        format!(
            "{}.{}.{sig}",
            input.split('.').next().unwrap(),
            b64(&with("sub", json!("admin")).to_string())
        ),
        format!(
            "{}.{}.{sig}",
            b64("{not json"),
            input.split('.').nth(1).unwrap()
        ),
        format!(
            "{}.{}.{sig}",
            b64(&format!(r#"{{"alg":"ES256","kid":"{kid}","alg":"none"}}"#)),
            input.split('.').nth(1).unwrap()
        ),
        format!("{valid}="),
        format!("{valid}.extra"),
        "a.b.c".into(),
        "opaque-but-unknown-to-the-idp".into(),
        strip(s.issuer.mint(with("sub", json!("\u{0}admin\u{202e}")))),
        strip(valid.clone()),
    ];
    // Unicode look-alikes in the token are not token68: a malformed header (400), not a crash.
    let unicode = format!("{input}.{sig}\u{2024}");
    for i in 0..20 {
        forged.push(s.issuer.sign_raw(
            json!({"alg": "ES256", "kid": format!("random-{i}")}),
            good.clone(),
        ));
    }
    assert!(forged.len() >= 40);
    for token in &forged {
        let r = mcp_post(&c, &url, &jsonrpc(1, "ping", json!({})))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{token}");
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains("resource_metadata="), "{challenge}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["code"].is_i64(), "{body}");
    }
    let value =
        reqwest::header::HeaderValue::from_bytes(format!("Bearer {unicode}").as_bytes()).unwrap();
    let r = c
        .post(&url)
        .header("authorization", value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let huge = "a".repeat(20 * 1024);
    let r = mcp_post(&c, &url, &jsonrpc(1, "ping", json!({})))
        .bearer_auth(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "an oversized token is a malformed credential"
    );
    assert_eq!(
        s.up.stats.requests(),
        0,
        "nothing forged reached the upstream"
    );

    // Still healthy and serving.
    assert_eq!(
        c.get(s.gw.admin("/healthz")).send().await.unwrap().status(),
        200
    );
    let r = mcp_post(&c, &url, &jsonrpc(2, "ping", json!({})))
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The log names reasons and token hashes, never a token.
    let log = s.gw.log();
    for reason in [
        "bad_signature",
        "expired",
        "wrong_audience",
        "unknown_key",
        "unsupported_algorithm",
        "unsupported_header",
        // A JWT from an issuer without keys here goes to the route's introspection endpoint.
        "inactive",
    ] {
        assert!(log.contains(reason), "log lacks {reason}");
    }
    let expired = &forged[9];
    assert!(
        log.contains(&mcpgate_auth::token_hash(expired)),
        "the refused token's hash is logged"
    );
    for token in &forged {
        assert!(!log.contains(token.as_str()), "a token leaked into the log");
    }
}

/// Opaque tokens through the gateway: introspected once, cached, and an introspection outage
/// is a 503 with Retry-After (the token may be fine), never a pass.
#[tokio::test(flavor = "multi_thread")]
async fn opaque_tokens_are_introspected_and_an_idp_outage_is_a_503() {
    let s = setup().await;
    let c = client();
    let url = resource(&s.gw);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = s
        .issuer
        .mint_opaque(json!({"sub": "svc", "aud": url, "exp": now + 600, "scope": "mcp:read"}));
    for id in 0..5 {
        let r = mcp_post(&c, &url, &jsonrpc(id, "ping", json!({})))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(s.issuer.introspections(), 1, "cached after the first call");
    assert!(
        s.up.stats.last_headers().get("authorization").is_none(),
        "no token passthrough"
    );

    let inactive = "definitely-not-a-live-token";
    let r = mcp_post(&c, &url, &jsonrpc(1, "ping", json!({})))
        .bearer_auth(inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The IdP becomes too slow (timeout 1 s): fail closed with 503.
    s.issuer.set_introspection_delay(Duration::from_secs(3));
    let fresh = s.issuer.mint_opaque(json!({"sub": "svc2", "aud": url}));
    let r = mcp_post(&c, &url, &jsonrpc(1, "ping", json!({})))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // The cached token keeps working through the outage.
    let r = mcp_post(&c, &url, &jsonrpc(1, "ping", json!({})))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
