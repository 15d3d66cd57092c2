//! The upstream IdP client against a real OpenID provider on loopback (the demo issuer of
//! `mcpgate-sample`): the browser's part of the sign-in is driven over HTTP with reqwest.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mcpgate_config::{Secret, UpstreamIdp};
use mcpgate_login::idp::{IdpError, IdpLogin, IdpRequest, UpstreamProvider};
use mcpgate_sample::{DemoIssuer, IssuerOptions};
use sha2::{Digest as _, Sha256};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:9/login/callback";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn config(issuer: &str, secret: Option<&str>) -> UpstreamIdp {
    UpstreamIdp {
        issuer: issuer.to_owned(),
        client_id: "demo-client".into(),
        client_secret: secret.map(Secret::new),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        params: BTreeMap::from([("prompt".to_string(), "login".to_string())]),
        groups_claim: "groups".into(),
        ca_file: None,
        timeout: Duration::from_secs(5),
    }
}

fn provider(issuer: &DemoIssuer) -> UpstreamProvider {
    UpstreamProvider::new(&config(&issuer.issuer_url(), Some("demo-secret"))).unwrap()
}

/// One sign-in's values, as the front door would keep them.
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    challenge: String,
}

impl Flow {
    fn new() -> Flow {
        let verifier = random();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Flow {
            state: random(),
            nonce: random(),
            verifier,
            challenge,
        }
    }

    fn request(&self) -> IdpRequest<'_> {
        IdpRequest {
            redirect_uri: REDIRECT,
            state: &self.state,
            nonce: &self.nonce,
            code_challenge: &self.challenge,
        }
    }
}

fn random() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// What came back to the redirect URI.
struct Callback {
    params: HashMap<String, String>,
}

impl Callback {
    fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
}

/// The browser: opens the authorize URL, picks `user` on the sign-in page, follows nothing —
/// returns the 303's target query.
async fn sign_in(url: &Url, user: &str) -> Result<Callback, (u16, String)> {
    let http = browser();
    let page = http.get(url.clone()).send().await.unwrap();
    let status = page.status().as_u16();
    let html = page.text().await.unwrap();
    if status != 200 {
        return Err((status, html));
    }
    assert!(
        html.contains("Sign in to the demo identity provider"),
        "{html}"
    );
    let txn = between(&html, r#"name="txn" value=""#, "\"").expect("transaction id in page");
    let action = url.join("/authorize").unwrap();
    let answer = http
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("txn={txn}&user={user}"))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    if status != 303 {
        return Err((status, answer.text().await.unwrap()));
    }
    let location = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    Ok(Callback {
        params: location.query_pairs().into_owned().collect(),
    })
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// authorize → sign in as `user` → callback checks → redeem.
async fn login_as(p: &UpstreamProvider, user: &str) -> Result<IdpLogin, IdpError> {
    let flow = Flow::new();
    let url = p.authorize_url(&flow.request()).await?;
    let cb = sign_in(&url, user).await.unwrap();
    assert_eq!(cb.get("state"), Some(flow.state.as_str()));
    p.check_callback_issuer(cb.get("iss")).await?;
    p.redeem(&flow.request(), cb.get("code").unwrap(), &flow.verifier)
        .await
}

fn reason<T: std::fmt::Debug>(r: Result<T, IdpError>) -> &'static str {
    r.expect_err("should be refused").reason
}

#[tokio::test]
async fn full_sign_in_yields_the_user() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    let flow = Flow::new();
    let url = p.authorize_url(&flow.request()).await.unwrap();
    assert!(
        url.as_str().starts_with(&issuer.authorization_url()),
        "{url}"
    );
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "demo-client");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["state"], flow.state);
    assert_eq!(q["nonce"], flow.nonce);
    assert_eq!(q["code_challenge"], flow.challenge);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["prompt"], "login");

    let cb = sign_in(&url, "alice").await.unwrap();
    assert_eq!(cb.get("iss"), Some(issuer.issuer_url().as_str()));
    p.check_callback_issuer(cb.get("iss")).await.unwrap();
    let login = p
        .redeem(&flow.request(), cb.get("code").unwrap(), &flow.verifier)
        .await
        .unwrap();
    let user = &login.user;
    assert_eq!(user.sub, "alice");
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("Alice Example"));
    assert_eq!(user.groups, vec!["mcp-admins".to_string()]);
    assert_eq!(user.claims["iss"], issuer.issuer_url().as_str());
    assert_eq!(user.claims["nonce"], flow.nonce.as_str());
    let refresh = login.refresh_token.clone().expect("an IdP refresh token");
    // Debug output never shows the refresh token.
    assert!(!format!("{login:?}").contains(&refresh));

    let bob = login_as(&p, "bob").await.unwrap().user;
    assert_eq!(bob.sub, "bob");
    assert!(bob.groups.is_empty());
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_nonce_from_another_sign_in_is_refused() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    let flow = Flow::new();
    let url = p.authorize_url(&flow.request()).await.unwrap();
    let cb = sign_in(&url, "alice").await.unwrap();
    let other = Flow::new();
    let swapped = IdpRequest {
        nonce: &other.nonce,
        ..flow.request()
    };
    let r = p
        .redeem(&swapped, cb.get("code").unwrap(), &flow.verifier)
        .await;
    assert_eq!(reason(r), "id_token_nonce_mismatch");
    issuer.shutdown().await;
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    // Same server, but configured under another name: its document says `http://127.0.0.1:…`.
    let configured = format!("http://localhost:{}", issuer.addr.port());
    let p = UpstreamProvider::new(&config(&configured, Some("demo-secret"))).unwrap();
    let r = p.authorize_url(&Flow::new().request()).await;
    let e = r.unwrap_err();
    assert_eq!(e.reason, "idp_metadata_invalid");
    assert!(e.detail.contains("127.0.0.1"), "{e}");
    // A trailing slash is another issuer too (exact comparison, Discovery §4.3).
    let p = UpstreamProvider::new(&config(
        &format!("{}/", issuer.issuer_url()),
        Some("demo-secret"),
    ))
    .unwrap();
    assert_eq!(
        reason(p.authorize_url(&Flow::new().request()).await),
        "idp_metadata_invalid"
    );
    issuer.shutdown().await;
}

#[tokio::test]
async fn callback_issuer_is_checked() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    p.check_callback_issuer(Some(&issuer.issuer_url()))
        .await
        .unwrap();
    let evil = p.check_callback_issuer(Some("http://evil.example")).await;
    assert_eq!(reason(evil), "idp_issuer_mismatch");
    let near = p
        .check_callback_issuer(Some(&format!("{}/", issuer.issuer_url())))
        .await;
    assert_eq!(reason(near), "idp_issuer_mismatch");
    // The demo's metadata promises `iss` (RFC 9207), so a callback without it is a mix-up.
    assert_eq!(
        reason(p.check_callback_issuer(None).await),
        "idp_issuer_mismatch"
    );
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_code_works_once_and_its_replay_revokes_the_grant() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    let flow = Flow::new();
    let url = p.authorize_url(&flow.request()).await.unwrap();
    let cb = sign_in(&url, "alice").await.unwrap();
    let code = cb.get("code").unwrap();
    let login = p
        .redeem(&flow.request(), code, &flow.verifier)
        .await
        .unwrap();
    let e = p
        .redeem(&flow.request(), code, &flow.verifier)
        .await
        .unwrap_err();
    assert_eq!(e.reason, "idp_code_rejected");
    assert!(e.detail.contains("invalid_grant"), "{e}");
    assert!(!e.detail.contains(code), "the code never appears: {e}");
    // RFC 6749 §4.1.2: the replay revoked what the code was exchanged for.
    let refresh = login.refresh_token.unwrap();
    assert_eq!(reason(p.recheck(&refresh).await), "idp_user_revoked");
    assert_eq!(issuer.code_redemptions(), 2);
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_wrong_verifier_or_secret_is_refused_by_the_idp() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    let flow = Flow::new();
    let url = p.authorize_url(&flow.request()).await.unwrap();
    let cb = sign_in(&url, "alice").await.unwrap();
    let wrong = Flow::new().verifier;
    let e = p
        .redeem(&flow.request(), cb.get("code").unwrap(), &wrong)
        .await
        .unwrap_err();
    assert_eq!(e.reason, "idp_code_rejected");
    assert!(e.detail.contains("invalid_grant"), "{e}");

    let bad_secret =
        UpstreamProvider::new(&config(&issuer.issuer_url(), Some("not-the-secret"))).unwrap();
    let flow = Flow::new();
    let url = bad_secret.authorize_url(&flow.request()).await.unwrap();
    let cb = sign_in(&url, "alice").await.unwrap();
    let e = bad_secret
        .redeem(&flow.request(), cb.get("code").unwrap(), &flow.verifier)
        .await
        .unwrap_err();
    assert_eq!(e.reason, "idp_code_rejected");
    assert!(e.detail.contains("invalid_client"), "{e}");
    assert!(!e.detail.contains("not-the-secret"), "{e}");
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_public_client_sends_its_id_in_the_body() {
    let options = IssuerOptions {
        allow_public_client: true,
        ..Default::default()
    };
    let issuer = DemoIssuer::start_with(loopback(), options).await.unwrap();
    let p = UpstreamProvider::new(&config(&issuer.issuer_url(), None)).unwrap();
    let login = login_as(&p, "bob").await.unwrap();
    assert_eq!(login.user.sub, "bob");
    let again = p.recheck(&login.refresh_token.unwrap()).await.unwrap();
    assert_eq!(again.user.sub, "bob");
    issuer.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_idp_is_unavailable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind(loopback())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = UpstreamProvider::new(&config(
        &format!("http://127.0.0.1:{port}"),
        Some("demo-secret"),
    ))
    .unwrap();
    let flow = Flow::new();
    assert_eq!(
        reason(p.authorize_url(&flow.request()).await),
        "idp_unavailable"
    );
    assert_eq!(
        reason(p.check_callback_issuer(None).await),
        "idp_unavailable"
    );
    assert_eq!(
        reason(p.redeem(&flow.request(), "code", &flow.verifier).await),
        "idp_unavailable"
    );
    assert_eq!(reason(p.recheck("rt").await), "idp_unavailable");

    // Discovered, then the IdP goes away: the code exchange fails closed.
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    let url = p.authorize_url(&flow.request()).await.unwrap();
    let cb = sign_in(&url, "alice").await.unwrap();
    issuer.shutdown().await;
    // The metadata is cached: the authorize URL still builds without the IdP.
    assert!(p.authorize_url(&flow.request()).await.is_ok());
    let e = p
        .redeem(&flow.request(), cb.get("code").unwrap(), &flow.verifier)
        .await
        .unwrap_err();
    assert_eq!(e.reason, "idp_unavailable");
    assert!(!e.detail.contains(cb.get("code").unwrap()), "{e}");
}

#[tokio::test]
async fn a_failed_discovery_is_retried_soon() {
    let port = std::net::TcpListener::bind(loopback())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let p = UpstreamProvider::new(&config(&format!("http://{addr}"), Some("demo-secret"))).unwrap();
    let flow = Flow::new();
    assert_eq!(
        reason(p.authorize_url(&flow.request()).await),
        "idp_unavailable"
    );
    // The IdP comes up on that port; the provider recovers without a restart.
    let issuer = DemoIssuer::start(addr).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match p.authorize_url(&flow.request()).await {
            Ok(_) => break,
            Err(e) => assert_eq!(e.reason, "idp_unavailable"),
        }
        assert!(Instant::now() < deadline, "discovery never retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    issuer.shutdown().await;
}

#[tokio::test]
async fn recheck_refreshes_and_rotates() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    let first = login_as(&p, "alice").await.unwrap();
    let old = first.refresh_token.unwrap();
    let again = p.recheck_subject(&old, "alice").await.unwrap();
    assert_eq!(again.user.sub, "alice");
    assert_eq!(again.user.email, first.user.email);
    assert_eq!(again.user.groups, first.user.groups);
    assert_eq!(again.user.name, first.user.name);
    // No nonce on a refreshed ID token (OpenID Connect Core §12.2).
    assert!(again.user.claims.get("nonce").is_none());
    let rotated = again.refresh_token.expect("the demo IdP rotates");
    assert_ne!(rotated, old);
    // The rotated-away token is dead; the new one works.
    assert_eq!(reason(p.recheck(&old).await), "idp_user_revoked");
    let third = p.recheck(&rotated).await.unwrap();
    // recheck_subject refuses another user behind the token.
    let e = p
        .recheck_subject(&third.refresh_token.unwrap(), "bob")
        .await
        .unwrap_err();
    assert_eq!(e.reason, "idp_subject_changed");
    issuer.shutdown().await;
}

#[tokio::test]
async fn recheck_after_the_user_is_disabled_is_revoked() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    let login = login_as(&p, "alice").await.unwrap();
    let refresh = login.refresh_token.unwrap();
    issuer.disable_user("alice");
    let e = p.recheck(&refresh).await.unwrap_err();
    assert_eq!(e.reason, "idp_user_revoked");
    assert!(!e.detail.contains(&refresh));
    // A disabled user cannot sign in either: the demo IdP shows an error page.
    let flow = Flow::new();
    let url = p.authorize_url(&flow.request()).await.unwrap();
    let (status, page) = sign_in(&url, "alice").await.err().unwrap();
    assert_eq!(status, 403);
    assert!(page.contains("disabled"), "{page}");
    // Bob is unaffected; re-enabled, Alice's grant works again.
    assert_eq!(login_as(&p, "bob").await.unwrap().user.sub, "bob");
    issuer.enable_user("alice");
    assert_eq!(p.recheck(&refresh).await.unwrap().user.sub, "alice");
    issuer.shutdown().await;
}

#[tokio::test]
async fn recheck_without_an_id_token_asks_userinfo() {
    let options = IssuerOptions {
        refresh_id_token: false,
        ..Default::default()
    };
    let issuer = DemoIssuer::start_with(loopback(), options).await.unwrap();
    let p = provider(&issuer);
    let login = login_as(&p, "alice").await.unwrap();
    let again = p.recheck(&login.refresh_token.unwrap()).await.unwrap();
    assert_eq!(again.user.sub, "alice");
    assert_eq!(again.user.email.as_deref(), Some("alice@example.com"));
    assert_eq!(again.user.groups, vec!["mcp-admins".to_string()]);
    assert!(again.refresh_token.is_some());
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once() {
    let issuer = DemoIssuer::start(loopback()).await.unwrap();
    let p = provider(&issuer);
    login_as(&p, "alice").await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 1);
    // Cached: a second sign-in with the same key fetches nothing.
    login_as(&p, "alice").await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 1);
    // The IdP rotates: the unknown kid triggers one refetch, then verifies.
    issuer.rotate();
    login_as(&p, "bob").await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 2);
    // The signing key leaves the JWKS: the refetch is rate-limited, the token refused.
    issuer.rotate();
    issuer.retire(&issuer.current_kid());
    let e = login_as(&p, "alice").await.unwrap_err();
    assert_eq!(e.reason, "id_token_invalid");
    assert!(e.detail.contains("no key"), "{e}");
    // A second unknown-kid refetch within 10 s of the last is skipped.
    assert_eq!(issuer.jwks_fetches(), 2);
    issuer.shutdown().await;
}

/// A one-document-per-path HTTPS server on 127.0.0.1 (`localhost` in its certificate, issued
/// by a fresh CA). Serves connections one at a time on its own thread until the test ends.
/// Returns its port and the CA's PEM.
fn tls_idp(docs: impl Fn(u16, &str) -> Option<String> + Send + 'static) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    use std::sync::Arc;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let server = Arc::new(server);
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(server.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&request);
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let answer = match docs(port, &path) {
                Some(body) => format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
            };
            let _ = tls.write_all(answer.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, ca.pem())
}

#[tokio::test]
async fn an_https_idp_is_trusted_through_ca_file_only() {
    let (port, ca_pem) = tls_idp(|port, path| {
        (path == "/.well-known/openid-configuration").then(|| discovery_doc(port))
    });
    let issuer = format!("https://localhost:{port}");
    let flow = Flow::new();
    // Without the CA: the certificate is not trusted, the IdP is unavailable.
    let untrusting = UpstreamProvider::new(&config(&issuer, Some("s"))).unwrap();
    let e = untrusting.authorize_url(&flow.request()).await.unwrap_err();
    assert_eq!(e.reason, "idp_unavailable");
    assert!(e.detail.contains("certificate"), "{e}");
    // With it: discovered over TLS.
    let (p, dir) = tls_provider(port, &ca_pem);
    let url = p.authorize_url(&flow.request()).await.unwrap();
    assert!(
        url.as_str().starts_with(&format!("{issuer}/authorize?")),
        "{url}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An upstream provider trusting `ca_pem` for `https://localhost:{port}`.
fn tls_provider(port: u16, ca_pem: &str) -> (UpstreamProvider, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("idp-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ca.pem");
    std::fs::write(&file, ca_pem).unwrap();
    let mut cfg = config(&format!("https://localhost:{port}"), Some("s"));
    cfg.ca_file = Some(file);
    (UpstreamProvider::new(&cfg).unwrap(), dir)
}

fn discovery_doc(port: u16) -> String {
    let iss = format!("https://localhost:{port}");
    serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
    })
    .to_string()
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let (port, ca) = tls_idp(|port, path| {
        let mut doc: serde_json::Value = serde_json::from_str(&discovery_doc(port)).unwrap();
        doc["padding"] = "x".repeat(300 * 1024).into();
        (path == "/.well-known/openid-configuration").then(|| doc.to_string())
    });
    let (p, dir) = tls_provider(port, &ca);
    let e = p.authorize_url(&Flow::new().request()).await.unwrap_err();
    assert_eq!(e.reason, "idp_unavailable");
    assert!(e.detail.contains("larger than"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hostile or broken IdP returns ID tokens that are signed by a key of its JWKS but wrong in
/// every other way; each is refused with `id_token_invalid` (or the nonce reason).
#[tokio::test]
async fn forged_or_wrong_id_tokens_are_refused() {
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    // The demo issuer holds the signing key; the fake IdP serves its JWKS as its own.
    let signer = DemoIssuer::start(loopback()).await.unwrap();
    let jwks = browser()
        .get(signer.jwks_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id_token = Arc::new(Mutex::new(String::new()));
    let served = id_token.clone();
    let (port, ca) = tls_idp(move |port, path| match path {
        "/.well-known/openid-configuration" => Some(discovery_doc(port)),
        "/jwks" => Some(jwks.clone()),
        "/token" => Some(
            json!({"access_token": "at", "token_type": "Bearer",
                   "id_token": *served.lock().unwrap()})
            .to_string(),
        ),
        _ => None,
    });
    let (p, dir) = tls_provider(port, &ca);
    let iss = format!("https://localhost:{port}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let flow = Flow::new();
    let good = json!({"iss": iss, "sub": "u1", "aud": "demo-client", "exp": now + 300,
                      "iat": now, "nonce": flow.nonce});
    let kid = signer.current_kid();
    let header = json!({"alg": "ES256", "kid": kid});
    let with = |changes: serde_json::Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let tampered = {
        let token = signer.sign_raw(header.clone(), good.clone());
        let parts: Vec<&str> = token.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(with(json!({"sub": "admin"})).to_string());
        format!("{}.{evil}.{}", parts[0], parts[2])
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (signer.sign_raw(header.clone(), good.clone()), "", "ok"),
        (tampered, "id_token_invalid", "bad signature"),
        (
            signer.sign_raw(json!({"alg": "HS256", "kid": kid}), good.clone()),
            "id_token_invalid",
            "alg",
        ),
        (
            signer.sign_raw(json!({"alg": "none", "kid": kid}), good.clone()),
            "id_token_invalid",
            "alg",
        ),
        (
            signer.sign_raw(json!({"alg": "ES256", "kid": "forged"}), good.clone()),
            "id_token_invalid",
            "no key",
        ),
        (
            signer.sign_raw(header.clone(), with(json!({"iss": signer.issuer_url()}))),
            "id_token_invalid",
            "iss",
        ),
        (
            signer.sign_raw(header.clone(), with(json!({"aud": "another-client"}))),
            "id_token_invalid",
            "aud",
        ),
        (
            signer.sign_raw(header.clone(), with(json!({"exp": now - 3600}))),
            "id_token_invalid",
            "expired",
        ),
        (
            signer.sign_raw(header.clone(), with(json!({"nonce": "replayed"}))),
            "id_token_nonce_mismatch",
            "nonce",
        ),
    ];
    for (token, reason, why) in cases {
        *id_token.lock().unwrap() = token;
        let r = p.redeem(&flow.request(), "code", &flow.verifier).await;
        match r {
            Ok(login) => {
                assert_eq!(why, "ok");
                assert_eq!(login.user.sub, "u1");
            }
            Err(e) => {
                assert_eq!(e.reason, reason, "{why}: {e}");
                assert!(e.detail.contains(why), "{why}: {e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    signer.shutdown().await;
}

#[tokio::test]
async fn a_bad_ca_file_is_a_configuration_error() {
    let dir = std::env::temp_dir().join(format!("idp-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ca.pem");
    std::fs::write(&file, "not a certificate").unwrap();
    let mut cfg = config("https://idp.example.com", None);
    cfg.ca_file = Some(file.clone());
    assert!(UpstreamProvider::new(&cfg).is_err());
    // A real CA certificate is accepted.
    let ca = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(&file, ca.pem()).unwrap();
    assert!(UpstreamProvider::new(&cfg).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
