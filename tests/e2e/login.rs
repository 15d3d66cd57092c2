//! End to end: the login front door (issue 14) in the real binary — its metadata, the checks at
//! `/oauth/authorize` before anyone is sent to the IdP, dynamic registration, the token
//! endpoint's refusals, and whole logins through the demo OpenID provider.

mod common;

use std::path::Path;

use common::{client, write_file, Gw};
use serde_json::Value;

/// A fresh P-256 signing key (PKCS#8 PEM) in `dir`.
fn signing_key(dir: &Path, name: &str) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    write_file(dir, name, &key.serialize_pem())
        .display()
        .to_string()
}

/// A gateway whose `/mcp` route trusts the front door; the IdP is at `idp` (it need not run).
fn login_yaml(key: &str, idp: &str, upstream: &str, extra: &str) -> String {
    format!(
        r#"public_url: http://127.0.0.1:{{port}}
listeners:
  - bind: 127.0.0.1:{{port}}
admin:
  bind: 127.0.0.1:{{admin}}
login:
  signing_keys: [{key}]
  upstream:
    issuer: {idp}
    client_id: mcpgate
    client_secret: front-door-secret
  clients:
    registered:
      - client_id: team-cli
        redirect_uris: ["http://127.0.0.1/callback"]
        name: Team CLI
{extra}
routes:
  - name: tools
    path: /mcp
    upstream:
      url: {upstream}
    auth:
      issuers: [login]
      required_scopes: [mcp:read]
    tools:
      - match: "delete_*"
        scopes: [mcp:admin]
"#
    )
}

async fn gateway(extra: &str) -> Gw {
    let dir = tempfile::tempdir().unwrap();
    let key = signing_key(dir.path(), "login.pem");
    let yaml = login_yaml(
        &key,
        "http://127.0.0.1:9/idp",
        "http://127.0.0.1:9/mcp",
        extra,
    );
    let mut gw = Gw::start_in(dir, &yaml);
    gw.ready().await;
    gw
}

async fn get_json(url: &str) -> Value {
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `/oauth/authorize` with `params` on top of a valid request of `team-cli`.
fn authorize_url(gw: &Gw, overrides: &[(&str, Option<&str>)]) -> String {
    let resource = gw.url("/mcp");
    let mut params: Vec<(&str, Option<String>)> = vec![
        ("response_type", Some("code".into())),
        ("client_id", Some("team-cli".into())),
        (
            "redirect_uri",
            Some("http://127.0.0.1:5555/callback".into()),
        ),
        ("state", Some("client-state".into())),
        ("code_challenge", Some(CHALLENGE.into())),
        ("code_challenge_method", Some("S256".into())),
        ("resource", Some(resource)),
        ("scope", Some("mcp:read".into())),
    ];
    for (k, v) in overrides {
        params.retain(|(name, _)| name != k);
        params.push((k, v.map(str::to_owned)));
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?))))
        .finish();
    gw.url(&format!("/oauth/authorize?{query}"))
}

#[tokio::test]
async fn the_front_door_publishes_its_metadata_and_routes_point_at_it() {
    let gw = gateway("").await;
    let doc = get_json(&gw.url("/.well-known/oauth-authorization-server")).await;
    let issuer = gw.url("");
    assert_eq!(doc["issuer"], issuer.as_str());
    assert_eq!(
        doc["authorization_endpoint"],
        gw.url("/oauth/authorize").as_str()
    );
    assert_eq!(doc["token_endpoint"], gw.url("/oauth/token").as_str());
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(
        doc.get("registration_endpoint").is_none(),
        "DCR is off by default"
    );
    let scopes = doc["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&"mcp:admin".into()) && scopes.contains(&"mcp:read".into()));

    let prm = get_json(&gw.url("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(prm["authorization_servers"], serde_json::json!([issuer]));

    let jwks = get_json(&gw.url("/oauth/jwks")).await;
    let key = &jwks["keys"][0];
    assert_eq!(key["alg"], "ES256");
    assert!(key.get("d").is_none(), "never the private part");
}

#[tokio::test]
async fn authorize_refuses_what_it_cannot_redirect_with_a_page() {
    let gw = gateway("").await;
    let c = client();
    for (overrides, reason) in [
        (vec![("client_id", Some("nobody"))], "client_unknown"),
        (
            vec![("redirect_uri", Some("http://127.0.0.1:5555/elsewhere"))],
            "redirect_uri_mismatch",
        ),
        (
            vec![("redirect_uri", Some("https://evil.example/callback"))],
            "redirect_uri_mismatch",
        ),
        (vec![("redirect_uri", None)], "invalid_request"),
    ] {
        let r = c.get(authorize_url(&gw, &overrides)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{overrides:?}");
        assert!(
            r.headers().get("location").is_none(),
            "never redirected: {overrides:?}"
        );
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"));
        let body = r.text().await.unwrap();
        assert!(body.contains(reason), "{reason}: {body}");
    }
}

#[tokio::test]
async fn authorize_returns_other_errors_to_the_client_with_state_and_iss() {
    let gw = gateway("").await;
    let c = client();
    for (overrides, error) in [
        (vec![("code_challenge", None)], "invalid_request"),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (
            vec![("resource", Some("https://elsewhere.example/mcp"))],
            "invalid_target",
        ),
    ] {
        let r = c.get(authorize_url(&gw, &overrides)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{overrides:?}");
        let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location
            .as_str()
            .starts_with("http://127.0.0.1:5555/callback?"));
        let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        assert_eq!(q["error"], error, "{overrides:?}");
        assert_eq!(q["state"], "client-state");
        assert_eq!(q["iss"], gw.url(""));
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn an_unreachable_identity_provider_gets_a_clear_page_and_no_login() {
    let gw = gateway("").await;
    let r = client().get(authorize_url(&gw, &[])).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.headers().get("set-cookie").is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("idp_unavailable"), "{body}");
}

#[tokio::test]
async fn dynamic_registration_is_off_unless_enabled_then_bounded() {
    let off = gateway("").await;
    let c = client();
    let body =
        r#"{"redirect_uris":["http://127.0.0.1:7777/cb"],"token_endpoint_auth_method":"none"}"#;
    let r = c
        .post(off.url("/oauth/register"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let on = gateway("    dynamic_registration: true").await;
    let doc = get_json(&on.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(
        doc["registration_endpoint"],
        on.url("/oauth/register").as_str()
    );
    let r = c
        .post(on.url("/oauth/register"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert!(reg["client_id"].as_str().unwrap().starts_with("dyn-"));
    assert!(reg.get("client_secret").is_none());
    let bad = r#"{"redirect_uris":["http://evil.example/cb"]}"#;
    let r = c
        .post(on.url("/oauth/register"))
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_redirect_uri"
    );
    // Ten registrations an hour per address, then 429.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            c.post(on.url("/oauth/register"))
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_unknown_clients_codes_and_grants() {
    let gw = gateway("").await;
    let c = client();
    let post = |form: &'static [(&'static str, &'static str)]| {
        c.post(gw.url("/oauth/token")).form(form).send()
    };
    let r = post(&[
        ("grant_type", "authorization_code"),
        ("client_id", "nobody"),
        ("code", "x"),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = post(&[
        ("grant_type", "authorization_code"),
        ("client_id", "team-cli"),
        ("code", "forged"),
        ("redirect_uri", "http://127.0.0.1/callback"),
        ("code_verifier", "x"),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let r = post(&[("grant_type", "password"), ("client_id", "team-cli")])
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let r = post(&[
        ("grant_type", "refresh_token"),
        ("client_id", "team-cli"),
        ("refresh_token", "forged"),
    ])
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_route_trusting_the_front_door_refuses_other_tokens() {
    let gw = gateway("").await;
    let r = client()
        .post(gw.url("/mcp"))
        .bearer_auth("not-a-token")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}
