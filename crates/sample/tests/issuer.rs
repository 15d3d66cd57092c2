//! End-to-end tests of the demo issuer over real HTTP, verifying its tokens
//! with jsonwebtoken against the JWKS it serves.

mod common;

use std::time::Duration;

use common::{client, form, loopback};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use mcpgate_sample::{DemoIssuer, IssuerOptions};
use serde_json::{json, Value};

async fn fetch_jwks(issuer: &DemoIssuer) -> JwkSet {
    let response = client().get(issuer.jwks_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Verifies `token` against `jwks` as a resource server would.
fn verify(jwks: &JwkSet, token: &str, issuer: &str, audience: &str) -> Value {
    let header = decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    decode::<Value>(token, &key, &validation).unwrap().claims
}

#[tokio::test]
async fn minted_token_verifies_against_served_jwks() {
    let issuer = DemoIssuer::start_with(
        loopback(),
        IssuerOptions {
            jwks_max_age: Duration::from_secs(42),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(issuer.issuer_url(), format!("http://{}", issuer.addr));

    let response = client().get(issuer.jwks_url()).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=42");
    let raw: Value = response.json().await.unwrap();
    let key = &raw["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], issuer.current_kid().as_str());
    assert!(key["x"].is_string() && key["y"].is_string() && key.get("d").is_none());
    let jwks: JwkSet = serde_json::from_value(raw).unwrap();

    let token = issuer.mint_default(
        "http://gw/mcp",
        "mcp:tools mcp:resources",
        Duration::from_secs(60),
    );
    let header = decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let claims = verify(&jwks, &token, &issuer.issuer_url(), "http://gw/mcp");
    assert_eq!(claims["sub"], "demo-user");
    assert_eq!(claims["scope"], "mcp:tools mcp:resources");
    assert_eq!(claims["client_id"], "demo-client");
    assert_eq!(claims["groups"], json!(["mcp-users"]));
    assert_eq!(claims["email_verified"], true);
    assert!(claims["jti"].is_string());

    // `mint` signs exactly the caller's claims.
    let custom = issuer
        .mint(json!({"iss": issuer.issuer_url(), "aud": "a", "exp": 4_000_000_000u64, "x": 1}));
    assert_eq!(verify(&jwks, &custom, &issuer.issuer_url(), "a")["x"], 1);
    assert_eq!(issuer.jwks_fetches(), 1);
    issuer.shutdown().await;
}

#[tokio::test]
async fn rotation_keeps_old_key_until_retired() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let old_kid = issuer.current_kid();
    let old_token = issuer.mint_default("aud", "", Duration::from_secs(60));
    let new_kid = issuer.rotate();
    assert_ne!(new_kid, old_kid);
    assert_eq!(issuer.current_kid(), new_kid);
    let new_token = issuer.mint_default("aud", "", Duration::from_secs(60));
    assert_eq!(
        decode_header(&new_token).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );

    let jwks = fetch_jwks(&issuer).await;
    assert_eq!(jwks.keys.len(), 2);
    verify(&jwks, &old_token, &issuer.issuer_url(), "aud");
    verify(&jwks, &new_token, &issuer.issuer_url(), "aud");

    issuer.retire(&old_kid);
    let jwks = fetch_jwks(&issuer).await;
    assert_eq!(jwks.keys.len(), 1);
    assert!(jwks.find(&old_kid).is_none());
    assert!(jwks.find(&new_kid).is_some());
    issuer.shutdown().await;
}

#[tokio::test]
async fn outage_answers_503() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    issuer.set_available(false);
    let response = client().get(issuer.jwks_url()).send().await.unwrap();
    assert_eq!(response.status(), 503);
    issuer.set_available(true);
    let response = client().get(issuer.jwks_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(issuer.jwks_fetches(), 2);
    issuer.shutdown().await;
}

#[tokio::test]
async fn sign_raw_signs_forged_headers() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let token = issuer.sign_raw(
        json!({"alg": "ES256", "kid": "forged-kid", "typ": "JWT", "jku": "http://evil"}),
        json!({"sub": "mallory"}),
    );
    let header = decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("forged-kid"));
    assert_eq!(header.jku.as_deref(), Some("http://evil"));
    // The signature is still the current key's.
    let jwks = fetch_jwks(&issuer).await;
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = decode::<Value>(&token, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], "mallory");
    issuer.shutdown().await;
}

#[tokio::test]
async fn discovery_metadata_and_token_endpoint() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let http = client();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let meta: Value = http
            .get(format!("{}{path}", issuer.issuer_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["issuer"], issuer.issuer_url().as_str());
        assert_eq!(meta["jwks_uri"], issuer.jwks_url().as_str());
        assert_eq!(meta["token_endpoint"], issuer.token_url().as_str());
        assert_eq!(
            meta["introspection_endpoint"],
            issuer.introspection_url().as_str()
        );
    }
    let response = form(
        http.post(issuer.token_url()),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools"),
            ("resource", "http://gw/mcp"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let jwks = fetch_jwks(&issuer).await;
    let claims = verify(
        &jwks,
        body["access_token"].as_str().unwrap(),
        &issuer.issuer_url(),
        "http://gw/mcp",
    );
    assert_eq!(claims["scope"], "mcp:tools");

    let response = form(http.post(issuer.token_url()), &[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    issuer.shutdown().await;
}

#[tokio::test]
async fn introspection_reports_opaque_tokens() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let http = client();
    let introspect = |token: &str, user: &str, password: &str| {
        form(
            http.post(issuer.introspection_url())
                .basic_auth(user, Some(password)),
            &[("token", token)],
        )
        .send()
    };
    let token = issuer.mint_opaque(json!({
        "sub": "demo-user", "aud": "http://gw/mcp", "exp": 4_000_000_000u64,
        "scope": "mcp:tools", "client_id": "demo-client",
    }));
    let response = introspect(&token, "demo-client", "demo-secret")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["iss"], issuer.issuer_url().as_str());
    assert_eq!(body["sub"], "demo-user");
    assert_eq!(body["aud"], "http://gw/mcp");
    assert_eq!(body["scope"], "mcp:tools");

    let body: Value = introspect("unknown", "demo-client", "demo-secret")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"active": false}));

    let expired = issuer.mint_opaque(json!({"sub": "x", "exp": 1}));
    let body: Value = introspect(&expired, "demo-client", "demo-secret")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], false);

    issuer.revoke_opaque(&token);
    let body: Value = introspect(&token, "demo-client", "demo-secret")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], false);

    let response = introspect(&token, "demo-client", "wrong").await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let response = form(
        http.post(issuer.introspection_url()),
        &[("token", token.as_str())],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(issuer.introspections(), 6);
    issuer.shutdown().await;
}

#[tokio::test]
async fn introspection_delay_slows_answers() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    issuer.set_introspection_delay(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let request = client()
        .post(issuer.introspection_url())
        .basic_auth("demo-client", Some("demo-secret"));
    let response = form(request, &[("token", "x")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    issuer.shutdown().await;
}
