//! The demo token issuer: a tiny local OAuth 2.0 / OpenID Connect provider
//! for `mcpgate demo` and the tests. This module owns the public API and the
//! issuer's state; signing keys live in `keys`, the HTTP endpoints (JWKS,
//! discovery metadata, `/token`, `/introspect`) in `http`, and the sign-in
//! flow (`/authorize`, the code and refresh grants, `/userinfo`) in `login`.
//!
//! Like Entra ID or Google, it has no client registration: one confidential
//! client (`client_id`/`client_secret` of [`IssuerOptions`]) is known up front.

mod http;
mod keys;
mod login;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::util::{lock, random_id, Running};
use keys::KeyRing;

/// How to run a [`DemoIssuer`].
#[derive(Debug, Clone)]
pub struct IssuerOptions {
    /// `Cache-Control: max-age` of the JWKS response (default 300 s).
    pub jwks_max_age: Duration,
    /// Client id accepted by `/introspect` (default `demo-client`); also the
    /// `client_id` claim of [`DemoIssuer::mint_default`] tokens, and the one
    /// client of the sign-in flow (`/authorize`, code and refresh grants).
    pub client_id: String,
    /// Client secret accepted by `/introspect` and the sign-in grants
    /// (default `demo-secret`).
    pub client_secret: String,
    /// Lifetime of tokens issued by `POST /token` (default 1 h).
    pub token_ttl: Duration,
    /// Who can sign in at `/authorize` (default: [`DemoUser::alice`] and [`DemoUser::bob`]).
    pub users: Vec<DemoUser>,
    /// Redirect URIs of the client, compared exactly. Empty (the default):
    /// any `http` loopback URI (`127.0.0.1`, `[::1]`, `localhost`, any port
    /// and path), which is what the demo and the tests use.
    pub redirect_uris: Vec<String>,
    /// Accept the code and refresh grants from a public client (`client_id`
    /// in the form, no secret; PKCE still required). Default `false`.
    pub allow_public_client: bool,
    /// Return an ID token from the refresh grant (default `true`). `false`
    /// mimics providers that don't; the relying party then asks `/userinfo`.
    pub refresh_id_token: bool,
}

/// A user of the demo identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// The stable subject identifier (`sub`).
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    /// The `groups` claim of the user's ID tokens.
    pub groups: Vec<String>,
}

impl DemoUser {
    /// `alice@example.com`, verified, in group `mcp-admins`.
    pub fn alice() -> DemoUser {
        DemoUser {
            sub: "alice".into(),
            email: "alice@example.com".into(),
            email_verified: true,
            name: "Alice Example".into(),
            groups: vec!["mcp-admins".into()],
        }
    }

    /// `bob@example.com`, verified, in no group.
    pub fn bob() -> DemoUser {
        DemoUser {
            sub: "bob".into(),
            email: "bob@example.com".into(),
            email_verified: true,
            name: "Bob Example".into(),
            groups: Vec::new(),
        }
    }
}

impl Default for IssuerOptions {
    fn default() -> Self {
        IssuerOptions {
            jwks_max_age: Duration::from_secs(300),
            client_id: "demo-client".into(),
            client_secret: "demo-secret".into(),
            token_ttl: Duration::from_secs(3600),
            users: vec![DemoUser::alice(), DemoUser::bob()],
            redirect_uris: Vec::new(),
            allow_public_client: false,
            refresh_id_token: true,
        }
    }
}

/// State shared between the API and the HTTP handlers.
struct IssuerState {
    issuer_url: String,
    options: IssuerOptions,
    keys: Mutex<KeyRing>,
    available: AtomicBool,
    jwks_fetches: AtomicU64,
    introspections: AtomicU64,
    introspection_delay: Mutex<Duration>,
    /// Opaque token -> its claims.
    opaque: Mutex<HashMap<String, Value>>,
    /// Users, sign-in transactions, codes and refresh tokens.
    login: Mutex<login::LoginState>,
}

impl IssuerState {
    fn mint_default(&self, audience: &str, subject: &str, scopes: &str, ttl: Duration) -> String {
        let now = now_secs();
        let claims = json!({
            "iss": self.issuer_url,
            "sub": subject,
            "aud": audience,
            "exp": now + ttl.as_secs(),
            "iat": now,
            "nbf": now,
            "scope": scopes,
            "client_id": self.options.client_id,
            "email": "demo@example.com",
            "email_verified": true,
            "groups": ["mcp-users"],
            "jti": random_id(16),
        });
        let keys = lock(&self.keys);
        keys.sign(&keys.access_token_header(), &claims)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A running demo issuer.
pub struct DemoIssuer {
    /// The address actually bound.
    pub addr: SocketAddr,
    state: Arc<IssuerState>,
    running: Running,
}

impl DemoIssuer {
    /// Binds `bind` (e.g. `127.0.0.1:0`) with default options and starts serving.
    pub async fn start(bind: SocketAddr) -> std::io::Result<DemoIssuer> {
        Self::start_with(bind, IssuerOptions::default()).await
    }

    /// Like [`DemoIssuer::start`], with explicit options.
    pub async fn start_with(
        bind: SocketAddr,
        options: IssuerOptions,
    ) -> std::io::Result<DemoIssuer> {
        let mut slot = None;
        let running = Running::start(bind, |addr, _| {
            let state = Arc::new(IssuerState {
                issuer_url: format!("http://{addr}"),
                keys: Mutex::new(KeyRing::new()),
                available: AtomicBool::new(true),
                jwks_fetches: AtomicU64::new(0),
                introspections: AtomicU64::new(0),
                introspection_delay: Mutex::new(Duration::ZERO),
                opaque: Mutex::default(),
                login: Mutex::new(login::LoginState::new(&options.users)),
                options,
            });
            slot = Some(state.clone());
            http::router(state)
        })
        .await?;
        Ok(DemoIssuer {
            addr: running.addr,
            state: slot.expect("router built"),
            running,
        })
    }

    /// The options it runs with (client id and secret, users, ...).
    pub fn options(&self) -> &IssuerOptions {
        &self.state.options
    }

    /// The issuer identifier (the `iss` claim), `http://ADDR`.
    pub fn issuer_url(&self) -> String {
        self.state.issuer_url.clone()
    }

    /// `http://ADDR/jwks`.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.state.issuer_url)
    }

    /// `http://ADDR/token` (client_credentials grant).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.state.issuer_url)
    }

    /// `http://ADDR/authorize` (the sign-in page).
    pub fn authorization_url(&self) -> String {
        format!("{}/authorize", self.state.issuer_url)
    }

    /// `http://ADDR/userinfo` (OpenID Connect Core §5.3).
    pub fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.state.issuer_url)
    }

    /// Disables user `sub`: sign-in shows an error page and the refresh
    /// grant answers `invalid_grant` (as when an IdP admin blocks a user).
    pub fn disable_user(&self, sub: &str) {
        lock(&self.state.login).set_disabled(sub, true);
    }

    /// Re-enables user `sub`.
    pub fn enable_user(&self, sub: &str) {
        lock(&self.state.login).set_disabled(sub, false);
    }

    /// `/token` requests with the `authorization_code` grant (including refused ones).
    pub fn code_redemptions(&self) -> u64 {
        lock(&self.state.login).code_redemptions
    }

    /// `http://ADDR/introspect` (RFC 7662).
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.state.issuer_url)
    }

    /// The kid of the key that currently signs tokens.
    pub fn current_kid(&self) -> String {
        lock(&self.state.keys).current_kid()
    }

    /// Signs `claims` exactly as given with the current key; header
    /// `{alg: ES256, typ: at+jwt, kid}`.
    pub fn mint(&self, claims: Value) -> String {
        let keys = lock(&self.state.keys);
        keys.sign(&keys.access_token_header(), &claims)
    }

    /// A valid access token for `audience`: `iss`, `sub` "demo-user", `aud`,
    /// `exp` (now + `ttl`), `iat`, `nbf`, `scope` (space-separated `scopes`),
    /// `client_id`, `email`, `email_verified`, `groups` ["mcp-users"], `jti`.
    pub fn mint_default(&self, audience: &str, scopes: &str, ttl: Duration) -> String {
        self.state.mint_default(audience, "demo-user", scopes, ttl)
    }

    /// [`DemoIssuer::mint_default`] for another subject (the demo's reader and admin).
    pub fn mint_for(&self, audience: &str, subject: &str, scopes: &str, ttl: Duration) -> String {
        self.state.mint_default(audience, subject, scopes, ttl)
    }

    /// Signs an arbitrary JOSE `header` and `claims` with the current key
    /// (ES256 signature whatever `header.alg` says): for forged-token tests.
    pub fn sign_raw(&self, header: Value, claims: Value) -> String {
        lock(&self.state.keys).sign(&header, &claims)
    }

    /// Generates a new key and makes it current. The previous keys stay in
    /// the JWKS until [`DemoIssuer::retire`]d. Returns the new kid.
    pub fn rotate(&self) -> String {
        lock(&self.state.keys).rotate()
    }

    /// Removes key `kid` from the JWKS (if it is the current key, it keeps
    /// signing: tokens then carry a kid the JWKS does not list).
    pub fn retire(&self, kid: &str) {
        lock(&self.state.keys).retire(kid);
    }

    /// When `false`, `/jwks` answers 503 (a JWKS outage).
    pub fn set_available(&self, up: bool) {
        self.state.available.store(up, Ordering::SeqCst);
    }

    /// `/jwks` requests received (including those answered 503).
    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Stores `claims` under a fresh random opaque token, which `/introspect`
    /// then reports as `{"active": true, ..claims}` (until `exp`, if any).
    /// `iss` defaults to the issuer URL.
    pub fn mint_opaque(&self, mut claims: Value) -> String {
        if let Some(map) = claims.as_object_mut() {
            map.entry("iss")
                .or_insert_with(|| Value::from(self.state.issuer_url.clone()));
        }
        let token = random_id(32);
        lock(&self.state.opaque).insert(token.clone(), claims);
        token
    }

    /// Makes an opaque token inactive.
    pub fn revoke_opaque(&self, token: &str) {
        lock(&self.state.opaque).remove(token);
    }

    /// `/introspect` requests received (including rejected ones).
    pub fn introspections(&self) -> u64 {
        self.state.introspections.load(Ordering::SeqCst)
    }

    /// Delays every `/introspect` answer by `delay` (single-flight tests).
    pub fn set_introspection_delay(&self, delay: Duration) {
        *lock(&self.state.introspection_delay) = delay;
    }

    /// Stops the issuer.
    pub async fn shutdown(self) {
        self.running.stop().await;
    }
}
