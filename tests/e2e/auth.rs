//! End-to-end token checks: the real gateway, a real JWKS issuer (the sample crate's), a real
//! MCP upstream. Challenges, audience binding, no token passthrough, key rotation, readiness.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use mcpgate_sample::{DemoIssuer, McpServerOptions, SampleMcpServer};
use serde_json::{json, Value};

struct Setup {
    issuer: DemoIssuer,
    up: SampleMcpServer,
    gw: Gw,
}

async fn setup() -> Setup {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let issuer = DemoIssuer::start(loopback).await.unwrap();
    let up = SampleMcpServer::start(loopback, McpServerOptions::default())
        .await
        .unwrap();
    let yaml = format!(
        "public_url: http://127.0.0.1:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\nadmin:\n  bind: 127.0.0.1:{{admin}}\nissuers:\n  - name: local\n    issuer: {}\n    jwks_uri: {}\n    algorithms: [ES256]\n    jwks_refresh: {{ unknown_kid_cooldown: 1s }}\nroutes:\n  - name: main\n    path: /mcp\n    upstream:\n      url: {}\n    auth:\n      issuers: [local]\n",
        issuer.issuer_url(),
        issuer.jwks_url(),
        up.url()
    );
    let mut gw = Gw::start(&yaml);
    gw.ready().await;
    Setup { issuer, up, gw }
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
async fn key_rotation_causes_no_rejection() {
    let s = setup().await;
    let c = client();
    let url = resource(&s.gw);
    let ping = jsonrpc(1, "ping", json!({}));
    let old = s
        .issuer
        .mint_default(&url, "mcp:read", Duration::from_secs(300));
    assert_eq!(
        mcp_post(&c, &url, &ping)
            .bearer_auth(&old)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.issuer.rotate();
    let new = s
        .issuer
        .mint_default(&url, "mcp:read", Duration::from_secs(300));
    for token in [&new, &old, &new] {
        let r = mcp_post(&c, &url, &ping)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", s.gw.log());
    }
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
