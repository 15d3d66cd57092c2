//! The demo issuer as an OpenID provider, over real HTTP: discovery, the sign-in page and its
//! refusals, the code grant (PKCE, single use, client authentication), the refresh grant
//! (rotation, disabled users) and userinfo. ID tokens are verified with jsonwebtoken against
//! the JWKS the issuer serves.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{client, form, loopback};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use mcpgate_sample::{DemoIssuer, IssuerOptions};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const REDIRECT: &str = "http://127.0.0.1:7/cb";
const VERIFIER: &str = "a-verifier-that-is-long-enough-for-rfc-7636-pkce-0123456789";

fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The standard authorize parameters with `changes` applied (`None` removes one).
fn authorize_query(changes: &[(&str, Option<&str>)]) -> String {
    let challenge = challenge(VERIFIER);
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", "demo-client"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in changes {
        params.retain(|(name, _)| name != k);
        if let Some(v) = v {
            params.push((k.to_string(), v.to_string()));
        }
    }
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

async fn authorize(issuer: &DemoIssuer, query: &str) -> reqwest::Response {
    browser()
        .get(format!("{}?{query}", issuer.authorization_url()))
        .send()
        .await
        .unwrap()
}

fn location_query(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn txn_of(html: &str) -> String {
    let start = html.find(r#"name="txn" value=""#).unwrap() + 18;
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_owned()
}

async fn choose(issuer: &DemoIssuer, txn: &str, user: &str) -> reqwest::Response {
    form(
        browser().post(issuer.authorization_url()),
        &[("txn", txn), ("user", user)],
    )
    .send()
    .await
    .unwrap()
}

/// A code for `user` from the standard authorize request.
async fn code_for(issuer: &DemoIssuer, user: &str) -> String {
    let page = authorize(issuer, &authorize_query(&[])).await;
    assert_eq!(page.status(), 200);
    let txn = txn_of(&page.text().await.unwrap());
    let answer = choose(issuer, &txn, user).await;
    assert_eq!(answer.status(), 303);
    let q = location_query(&answer);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], issuer.issuer_url());
    q["code"].clone()
}

async fn redeem(issuer: &DemoIssuer, pairs: &[(&str, &str)]) -> (u16, Value) {
    let response = form(
        client()
            .post(issuer.token_url())
            .basic_auth("demo-client", Some("demo-secret")),
        pairs,
    )
    .send()
    .await
    .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn code_pairs(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]
}

async fn id_token_claims(issuer: &DemoIssuer, token: &str) -> Value {
    let jwks: JwkSet = client()
        .get(issuer.jwks_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let key = DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["demo-client"]);
    validation.set_issuer(&[issuer.issuer_url()]);
    decode::<Value>(token, &key, &validation).unwrap().claims
}

#[tokio::test]
async fn discovery_advertises_the_code_flow() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let meta: Value = client()
        .get(format!(
            "{}/.well-known/openid-configuration",
            issuer.issuer_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["authorization_endpoint"], issuer.authorization_url());
    assert_eq!(meta["userinfo_endpoint"], issuer.userinfo_url());
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        meta["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let grants = meta["grant_types_supported"].as_array().unwrap();
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(grants.contains(&json!(g)), "{g}");
    }
    // No client registration (the Entra / Google situation).
    assert!(meta.get("registration_endpoint").is_none());
    issuer.shutdown().await;
}

#[tokio::test]
async fn bad_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    for changes in [
        vec![("client_id", Some("someone-else"))],
        vec![("client_id", None)],
        vec![("redirect_uri", Some("http://evil.example/cb"))],
        vec![("redirect_uri", Some("https://127.0.0.1/cb"))],
        vec![("redirect_uri", Some("http://127.0.0.1:7/cb#frag"))],
        vec![("redirect_uri", None)],
    ] {
        let response = authorize(&issuer, &authorize_query(&changes)).await;
        assert_eq!(response.status(), 400, "{changes:?}");
        assert!(response.headers().get("location").is_none());
    }
    // A repeated parameter is refused outright (RFC 6749 §3.1).
    let query = format!("{}&state=again", authorize_query(&[]));
    assert_eq!(authorize(&issuer, &query).await.status(), 400);
    issuer.shutdown().await;
}

#[tokio::test]
async fn other_refusals_go_back_to_the_client_with_state_and_iss() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    for (changes, error) in [
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (vec![("code_challenge", None)], "invalid_request"),
        (vec![("code_challenge", Some("short"))], "invalid_request"),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (vec![("nonce", None)], "invalid_request"),
        (vec![("scope", Some("email"))], "invalid_scope"),
    ] {
        let response = authorize(&issuer, &authorize_query(&changes)).await;
        assert_eq!(response.status(), 303, "{changes:?}");
        let q = location_query(&response);
        assert_eq!(q["error"], error, "{changes:?}");
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], issuer.issuer_url());
        assert!(!q.contains_key("code"));
    }
    issuer.shutdown().await;
}

#[tokio::test]
async fn configured_redirect_uris_match_exactly() {
    let options = IssuerOptions {
        redirect_uris: vec![REDIRECT.into()],
        ..Default::default()
    };
    let issuer = DemoIssuer::start_with(loopback(), options).await.unwrap();
    assert_eq!(
        authorize(&issuer, &authorize_query(&[])).await.status(),
        200
    );
    for other in ["http://127.0.0.1:7/cb/", "http://127.0.0.1:8/cb"] {
        let q = authorize_query(&[("redirect_uri", Some(other))]);
        assert_eq!(authorize(&issuer, &q).await.status(), 400, "{other}");
    }
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_sign_in_page_is_single_use_and_refuses_disabled_users() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let page = authorize(&issuer, &authorize_query(&[])).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in to the demo identity provider"));
    assert!(html.contains("alice@example.com") && html.contains("bob@example.com"));
    // Nothing of the request but the transaction id is in the page.
    assert!(!html.contains("st-1") && !html.contains(&challenge(VERIFIER)));
    let txn = txn_of(&html);
    assert_eq!(choose(&issuer, &txn, "mallory").await.status(), 400);
    // The failed attempt used the transaction up.
    assert_eq!(choose(&issuer, &txn, "alice").await.status(), 400);

    issuer.disable_user("bob");
    let page = authorize(&issuer, &authorize_query(&[])).await;
    let txn = txn_of(&page.text().await.unwrap());
    let refused = choose(&issuer, &txn, "bob").await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("disabled"));
    issuer.enable_user("bob");
    code_for(&issuer, "bob").await;
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_code_grant_issues_a_verified_id_token_once() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let code = code_for(&issuer, "alice").await;
    let (status, body) = redeem(&issuer, &code_pairs(&code)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].is_string());
    let claims = id_token_claims(&issuer, body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["groups"], json!(["mcp-admins"]));

    // The access token works at userinfo and is introspectable.
    let access = body["access_token"].as_str().unwrap();
    let info: Value = client()
        .get(issuer.userinfo_url())
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["groups"], json!(["mcp-admins"]));
    let unknown = client()
        .get(issuer.userinfo_url())
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);

    // Single use.
    let (status, body) = redeem(&issuer, &code_pairs(&code)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_code_grant_checks_pkce_redirect_uri_and_the_client() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let cases: [(&str, &str); 3] = [
        (
            "code_verifier",
            "another-verifier-that-is-long-enough-for-rfc-7636-0000",
        ),
        ("code_verifier", ""),
        ("redirect_uri", "http://127.0.0.1:7/other"),
    ];
    for (name, value) in cases {
        let code = code_for(&issuer, "alice").await;
        let mut pairs = code_pairs(&code);
        pairs.retain(|(k, _)| *k != name);
        pairs.push((name, value));
        let (status, body) = redeem(&issuer, &pairs).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{name}"
        );
        // A failed attempt used the code up.
        let (status, _) = redeem(&issuer, &code_pairs(&code)).await;
        assert_eq!(status, 400);
    }

    let code = code_for(&issuer, "alice").await;
    let token = |builder: reqwest::RequestBuilder, extra: &[(&str, &str)]| {
        let mut pairs = code_pairs(&code);
        pairs.extend_from_slice(extra);
        form(builder, &pairs).send()
    };
    let http = client();
    // No authentication, a public client's bare id (not allowed here), a wrong secret, and
    // two methods at once.
    for response in [
        token(http.post(issuer.token_url()), &[]).await.unwrap(),
        token(
            http.post(issuer.token_url()),
            &[("client_id", "demo-client")],
        )
        .await
        .unwrap(),
        token(
            http.post(issuer.token_url())
                .basic_auth("demo-client", Some("wrong")),
            &[],
        )
        .await
        .unwrap(),
        token(
            http.post(issuer.token_url())
                .basic_auth("demo-client", Some("demo-secret")),
            &[("client_secret", "demo-secret")],
        )
        .await
        .unwrap(),
    ] {
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    // client_secret_post works, and the code was not used by the refused attempts.
    let ok = token(
        http.post(issuer.token_url()),
        &[
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_refresh_grant_rotates_and_stops_for_disabled_users() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let code = code_for(&issuer, "bob").await;
    let (_, body) = redeem(&issuer, &code_pairs(&code)).await;
    let first = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let issuer = &issuer;
        async move {
            redeem(
                issuer,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let (status, body) = refresh(first.clone()).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let claims = id_token_claims(&issuer, body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "bob");
    assert!(claims.get("nonce").is_none());
    // The old token is gone.
    let (status, body) = refresh(first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    issuer.disable_user("bob");
    let (status, body) = refresh(second.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    issuer.enable_user("bob");
    let (status, _) = refresh(second).await;
    assert_eq!(status, 200);
    issuer.shutdown().await;
}
