//! End to end: the login front door (issue 14) in the real binary — its metadata, the checks at
//! `/oauth/authorize` before anyone is sent to the IdP, dynamic registration, the token
//! endpoint's refusals, and whole logins through the demo OpenID provider.

mod common;

use std::path::Path;

use common::browser::{hidden, location, query, Browser};
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
    h2c: true
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
        // Metadata documents on loopback or the cloud metadata address are never fetched.
        (
            vec![("client_id", Some("https://127.0.0.1:1/client.json"))],
            "client_metadata_forbidden_address",
        ),
        (
            vec![(
                "client_id",
                Some("https://169.254.169.254/latest/client.json"),
            )],
            "client_metadata_forbidden_address",
        ),
        (
            vec![("client_id", Some("https://localhost:1/client.json"))],
            "client_metadata_forbidden_address",
        ),
        (
            vec![("client_id", Some("http://app.example/client.json"))],
            "client_unknown",
        ),
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

// ---------------------------------------------------------------------------------------------
// Whole logins through the demo OpenID provider (no client registration, like Entra or Google).

use mcpgate_sample::{DemoIssuer, DemoUser, IssuerOptions, SampleMcpServer};
use std::collections::HashMap;

/// The front door in front of the demo IdP, over the sample MCP server.
struct Door {
    idp: DemoIssuer,
    _up: SampleMcpServer,
    gw: Gw,
}

fn mallory() -> DemoUser {
    DemoUser {
        sub: "mallory".into(),
        email: "mallory@evil.example".into(),
        email_verified: true,
        name: "Mallory".into(),
        groups: vec!["mcp-admins".into()],
    }
}

async fn door(extra: &str) -> Door {
    door_with(extra, None).await
}

async fn door_with(extra: &str, store: Option<&str>) -> Door {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let options = IssuerOptions {
        users: vec![DemoUser::alice(), DemoUser::bob(), mallory()],
        ..IssuerOptions::default()
    };
    let idp = DemoIssuer::start_with(loopback, options).await.unwrap();
    let up = SampleMcpServer::start(loopback, mcpgate_sample::McpServerOptions::default())
        .await
        .unwrap();
    let gw = door_gateway(&idp, &up, extra, store, tempfile::tempdir().unwrap()).await;
    Door { idp, _up: up, gw }
}

async fn door_gateway(
    idp: &DemoIssuer,
    up: &SampleMcpServer,
    extra: &str,
    store: Option<&str>,
    dir: tempfile::TempDir,
) -> Gw {
    let key = if dir.path().join("login.pem").exists() {
        dir.path().join("login.pem").display().to_string()
    } else {
        signing_key(dir.path(), "login.pem")
    };
    let o = idp.options();
    let store = store.map(|s| format!("  store: {s}\n")).unwrap_or_default();
    let extra = format!(
        "{extra}  allowed_domains: [example.com]\n  grants:\n    - scopes: [mcp:read]\n    - scopes: [mcp:admin]\n      groups: [mcp-admins]\n{store}"
    );
    let yaml = login_yaml(&key, &idp.issuer_url(), &up.url(), &extra)
        .replace("client_id: mcpgate", &format!("client_id: {}", o.client_id))
        .replace(
            "client_secret: front-door-secret",
            &format!("client_secret: {}", o.client_secret),
        );
    let mut gw = Gw::start_in(dir, &yaml);
    gw.ready().await;
    gw
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Authorize → IdP sign-in as `user` → callback. Returns the answer to the callback (the consent
/// page, or the redirect to the client when consent is remembered or the login is refused).
async fn sign_in(b: &mut Browser, door: &Door, user: &str) -> reqwest::Response {
    let r = b.get(&authorize_url(&door.gw, &[("scope", None)])).await;
    assert_eq!(r.status(), 303, "authorize → IdP");
    let idp_authorize = location(&r);
    assert!(idp_authorize.starts_with(&door.idp.issuer_url()));
    let page = b.get(&idp_authorize).await.text().await.unwrap();
    let txn = hidden(&page, "txn");
    let r = b
        .post(
            &format!("{}/authorize", door.idp.issuer_url()),
            &[("txn", &txn), ("user", user)],
        )
        .await;
    assert_eq!(r.status(), 303, "IdP → callback");
    let callback = location(&r);
    assert!(
        callback.starts_with(&door.gw.url("/oauth/callback")),
        "{callback}"
    );
    b.get(&callback).await
}

/// A whole first login of `user` with consent; returns the client's redirect query.
async fn login(b: &mut Browser, door: &Door, user: &str) -> HashMap<String, String> {
    let r = sign_in(b, door, user).await;
    let to_client = if r.status() == 200 {
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Team CLI") && page.contains("configured by your administrator"),
            "{page}"
        );
        let csrf = hidden(&page, "csrf");
        let r = b
            .post(
                &door.gw.url("/oauth/consent"),
                &[("csrf", &csrf), ("decision", "allow")],
            )
            .await;
        assert_eq!(r.status(), 303);
        location(&r)
    } else {
        assert_eq!(r.status(), 303, "remembered consent goes straight back");
        location(&r)
    };
    assert!(
        to_client.starts_with("http://127.0.0.1:5555/callback?"),
        "{to_client}"
    );
    let q = query(&to_client);
    assert_eq!(q["state"], "client-state");
    assert_eq!(q["iss"], door.gw.url(""));
    q
}

async fn token(gw: &Gw, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(gw.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn redeem(gw: &Gw, code: &str) -> (u16, Value) {
    token(
        gw,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "team-cli"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:5555/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn refresh(gw: &Gw, refresh_token: &str) -> (u16, Value) {
    token(
        gw,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "team-cli"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A `tools/call` of `tool` through the gateway with `access`, sent by `c`.
fn tool_call(c: &reqwest::Client, gw: &Gw, access: &str, tool: &str) -> reqwest::RequestBuilder {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": {"name": "x"}}});
    common::mcp_post(c, &gw.url("/mcp"), &body)
        .bearer_auth(access)
        .header("mcp-protocol-version", "2025-06-18")
}

/// Calls `tool` through the gateway with `access`; the HTTP status.
async fn call_tool(gw: &Gw, access: &str, tool: &str) -> u16 {
    let r = tool_call(&client(), gw, access, tool).send().await.unwrap();
    r.status().as_u16()
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn users_log_in_through_the_idp_and_get_only_what_their_grants_allow() {
    let d = door("").await;
    for (user, admin) in [("alice", true), ("bob", false)] {
        let mut b = Browser::new();
        let q = login(&mut b, &d, user).await;
        let (status, tokens) = redeem(&d.gw, &q["code"]).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        let access = tokens["access_token"].as_str().unwrap();
        let c = claims(access);
        assert_eq!(c["iss"], d.gw.url(""));
        assert_eq!(c["aud"], d.gw.url("/mcp"));
        assert_eq!(c["sub"], user);
        assert_eq!(c["client_id"], "team-cli");
        assert_eq!(c["email"], format!("{user}@example.com"));
        let scope = tokens["scope"].as_str().unwrap();
        assert_eq!(scope.contains("mcp:admin"), admin, "{user}: {scope}");
        assert!(
            tokens["refresh_token"].is_string(),
            "the IdP gave a refresh token"
        );
        assert!(
            !access.contains(&d.idp.issuer_url()),
            "the IdP's own tokens never reach the client"
        );
        assert_eq!(call_tool(&d.gw, access, "create_item").await, 200, "{user}");
        let expected = if admin { 200 } else { 403 };
        assert_eq!(
            call_tool(&d.gw, access, "delete_everything").await,
            expected,
            "{user}"
        );
    }
    for (event, n) in [
        ("login_started", 2),
        ("code_issued", 2),
        ("token_issued", 2),
    ] {
        let series = format!("mcpgate_login_events_total{{event=\"{event}\"}}");
        assert_eq!(d.gw.counter(&series).await, n, "{series}");
    }
}

#[tokio::test]
async fn a_user_outside_the_allowed_domains_is_refused_at_login() {
    let d = door("").await;
    let mut b = Browser::new();
    let r = sign_in(&mut b, &d, "mallory").await;
    assert_eq!(r.status(), 303);
    let q = query(&location(&r));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], "login_domain_not_allowed");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn the_callback_belongs_to_the_browser_that_started_the_login() {
    let d = door("").await;
    let mut victim = Browser::new();
    let mut attacker = Browser::new();
    // The attacker signs in and hands the victim the callback URL (login CSRF).
    let r = attacker.get(&authorize_url(&d.gw, &[])).await;
    let page = attacker.get(&location(&r)).await.text().await.unwrap();
    let txn = hidden(&page, "txn");
    let r = attacker
        .post(
            &format!("{}/authorize", d.idp.issuer_url()),
            &[("txn", &txn), ("user", "bob")],
        )
        .await;
    let callback = location(&r);
    let r = victim.get(&callback).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("login_expired"));
    // A callback whose state is not the one this browser's login sent is refused too.
    let r = victim.get(&authorize_url(&d.gw, &[])).await;
    assert_eq!(r.status(), 303);
    let forged = callback.replace("state=", "state=x");
    let r = victim.get(&forged).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("login_state_mismatch"));
}

#[tokio::test]
async fn consent_needs_its_csrf_token_and_is_remembered_once_given() {
    let d = door("").await;
    let mut b = Browser::new();
    let r = sign_in(&mut b, &d, "bob").await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("mcp:read") && !page.contains("mcp:admin"),
        "bob is offered only his grants"
    );
    // A forged POST (no CSRF token) is refused and ends that login.
    let r = b
        .post(&d.gw.url("/oauth/consent"), &[("decision", "allow")])
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("consent_csrf"));
    // Denied: the client hears access_denied.
    let r = sign_in(&mut b, &d, "bob").await;
    let csrf = hidden(&r.text().await.unwrap(), "csrf");
    let r = b
        .post(
            &d.gw.url("/oauth/consent"),
            &[("csrf", &csrf), ("decision", "deny")],
        )
        .await;
    assert_eq!(query(&location(&r))["error"], "access_denied");
    // Allowed once, then remembered: the next login goes straight back to the client.
    login(&mut b, &d, "bob").await;
    let r = sign_in(&mut b, &d, "bob").await;
    assert_eq!(r.status(), 303, "no consent page the second time");
    assert!(query(&location(&r)).contains_key("code"));
}

#[tokio::test]
async fn a_replayed_code_revokes_what_it_issued() {
    let d = door("").await;
    let q = login(&mut Browser::new(), &d, "alice").await;
    let (status, tokens) = redeem(&d.gw, &q["code"]).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(call_tool(&d.gw, access, "create_item").await, 200);
    let (status, again) = redeem(&d.gw, &q["code"]).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        call_tool(&d.gw, access, "create_item").await,
        401,
        "the access token died with its code"
    );
    let (status, _) = refresh(&d.gw, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "and so did the refresh token");
}

#[tokio::test]
async fn a_code_is_bound_to_its_verifier_redirect_and_client() {
    let d = door("").await;
    for (field, value) in [
        (
            "code_verifier",
            "wrong-verifier-wrong-verifier-wrong-verifier-x",
        ),
        ("redirect_uri", "http://127.0.0.1:5556/callback"),
    ] {
        let q = login(&mut Browser::new(), &d, "alice").await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", "team-cli"),
            ("code", q["code"].as_str()),
            ("redirect_uri", "http://127.0.0.1:5555/callback"),
            ("code_verifier", VERIFIER),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let (status, body) = token(&d.gw, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{field}"
        );
        // Spent by the failed attempt: the right values do not bring it back.
        let (status, _) = redeem(&d.gw, &q["code"]).await;
        assert_eq!(status, 400, "{field}");
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let d = door("").await;
    let q = login(&mut Browser::new(), &d, "alice").await;
    let (_, first) = redeem(&d.gw, &q["code"]).await;
    let old = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&d.gw, old).await;
    assert_eq!(status, 200, "{second}");
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(old, new, "rotated");
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        call_tool(&d.gw, access, "create_item").await,
        200,
        "keeps working across a refresh"
    );
    // The old one again: stolen. The whole family goes, the newest tokens with it.
    let (status, body) = refresh(&d.gw, old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&d.gw, new).await;
    assert_eq!(status, 400);
    assert_eq!(call_tool(&d.gw, access, "create_item").await, 401);
}

#[tokio::test]
async fn a_user_disabled_at_the_idp_loses_access_at_the_next_refresh() {
    let d = door("").await;
    let q = login(&mut Browser::new(), &d, "alice").await;
    let (_, tokens) = redeem(&d.gw, &q["code"]).await;
    let access = tokens["access_token"].as_str().unwrap();
    d.idp.disable_user("alice");
    let (status, body) = refresh(&d.gw, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        call_tool(&d.gw, access, "create_item").await,
        401,
        "the family is revoked at once"
    );
    d.idp.enable_user("alice");
}

#[tokio::test]
async fn revocation_ends_the_family() {
    let d = door("").await;
    let q = login(&mut Browser::new(), &d, "bob").await;
    let (_, tokens) = redeem(&d.gw, &q["code"]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let r = client()
        .post(d.gw.url("/oauth/revoke"))
        .form(&[("client_id", "team-cli"), ("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(call_tool(&d.gw, access, "create_item").await, 401);
    let (status, _) = refresh(&d.gw, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn two_replicas_on_one_redis_share_logins_codes_and_refresh_tokens() {
    let mut redis = common::redis::Redis::start();
    let url = redis.url();
    let d = door_with("", Some(&url)).await;
    // Replica B: same keys, same IdP client, same Redis.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        d.gw.dir.path().join("login.pem"),
        dir.path().join("login.pem"),
    )
    .unwrap();
    let b = door_gateway(&d.idp, &d._up, "", Some(&url), dir).await;
    // A login through A, its code redeemed at B, the refresh token rotated at A, and the code
    // replayed at A: every step finds what the other replica stored.
    let q = login(&mut Browser::new(), &d, "alice").await;
    let (status, tokens) = redeem(&b, &q["code"]).await;
    assert_eq!(status, 200, "a code issued by A is redeemed at B: {tokens}");
    let (status, fresh) = refresh(&d.gw, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "B's refresh token rotates at A: {fresh}");
    let access = fresh["access_token"].as_str().unwrap();
    assert_eq!(call_tool(&d.gw, access, "create_item").await, 200);
    let (status, again) = redeem(&d.gw, &q["code"]).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "a code is used once"
    );
    assert_eq!(
        call_tool(&d.gw, access, "create_item").await,
        401,
        "the replay at A revoked B's family"
    );
    redis.stop();
}

#[tokio::test]
async fn a_dynamically_registered_client_is_shown_unverified_and_its_name_escaped() {
    let d = door("    dynamic_registration: true\n").await;
    let body = r#"{"redirect_uris":["http://127.0.0.1:5555/callback"],"token_endpoint_auth_method":"none","client_name":"Team CLI <script>alert(1)</script>"}"#;
    let r = client()
        .post(d.gw.url("/oauth/register"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = Browser::new();
    let r = b
        .get(&authorize_url(&d.gw, &[("client_id", Some(&id))]))
        .await;
    let page = b.get(&location(&r)).await.text().await.unwrap();
    let txn = hidden(&page, "txn");
    let r = b
        .post(
            &format!("{}/authorize", d.idp.issuer_url()),
            &[("txn", &txn), ("user", "bob")],
        )
        .await;
    let r = b.get(&location(&r)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let consent = r.text().await.unwrap();
    assert!(consent.contains("Unverified application"), "{consent}");
    assert!(
        consent.contains("&lt;script&gt;") && !consent.contains("<script>"),
        "{consent}"
    );
}

#[tokio::test]
async fn browser_clients_may_call_the_token_endpoints_cross_origin_but_not_the_pages() {
    let gw = gateway("").await;
    let c = client();
    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/oauth/token"))
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    let r = c
        .get(gw.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = c.get(authorize_url(&gw, &[])).send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// The front door's endpoints are served over HTTP/2 like any route: metadata, the code and
/// refresh grants, and the tokens they issue, all on h2c (prior knowledge).
#[tokio::test]
async fn the_front_door_answers_over_http2() {
    let d = door("").await;
    let code = login(&mut Browser::new(), &d, "alice").await["code"].clone();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let meta = h2
        .get(d.gw.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (meta.status().as_u16(), meta.version()),
        (200, reqwest::Version::HTTP_2)
    );
    let grant =
        |form: Vec<(&'static str, String)>| h2.post(d.gw.url("/oauth/token")).form(&form).send();
    let first = grant(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", "team-cli".into()),
        ("code", code),
        ("redirect_uri", "http://127.0.0.1:5555/callback".into()),
        ("code_verifier", VERIFIER.into()),
    ])
    .await
    .unwrap();
    assert_eq!(first.version(), reqwest::Version::HTTP_2);
    let first: Value = first.json().await.unwrap();
    let refresh_token = first["refresh_token"].as_str().expect("a refresh token");
    let second = grant(vec![
        ("grant_type", "refresh_token".into()),
        ("client_id", "team-cli".into()),
        ("refresh_token", refresh_token.into()),
    ])
    .await
    .unwrap();
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    let access = second["access_token"].as_str().unwrap();
    let call = tool_call(&h2, &d.gw, access, "create_item")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (call.status().as_u16(), call.version()),
        (200, reqwest::Version::HTTP_2)
    );
}

/// With `store: memory` the front door's families live in the process: after a restart the
/// tokens it issued before are refused (fail closed: a family it cannot find is not trusted),
/// even though the signing key is the same and their signatures still verify.
#[tokio::test]
async fn a_restart_with_the_memory_store_ends_every_earlier_login() {
    let mut d = door("").await;
    let q = login(&mut Browser::new(), &d, "alice").await;
    let (status, tokens) = redeem(&d.gw, &q["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(call_tool(&d.gw, &access, "create_item").await, 200);
    d.gw.restart().await;
    let refused = tool_call(&client(), &d.gw, &access, "create_item")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let text = refused.text().await.unwrap();
    assert!(text.contains("token_revoked"), "{text}");
    let (status, body) = refresh(&d.gw, &refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}
