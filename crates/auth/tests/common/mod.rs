//! Test peers for the validator: a real HTTP JWKS server whose keys and availability the test
//! controls (and which records when it was fetched), a slow RFC 7662 introspection endpoint that
//! counts the calls it has in flight, signing helpers that can produce any header/claims bytes
//! (duplicate keys included), and a validator built from real YAML configuration.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use mcpgate_auth::TokenValidator;
use serde_json::{json, Value};

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    pub fn rsa(kid: &str, pem: &[u8]) -> TestKey {
        let encoding = EncodingKey::from_rsa_pem(pem).expect("fixture RSA key");
        Self::with(kid, Algorithm::RS256, encoding)
    }

    pub fn ec(kid: &str) -> TestKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Self::with(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(&pair.serialize_der()),
        )
    }

    fn with(kid: &str, alg: Algorithm, encoding: EncodingKey) -> TestKey {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        TestKey {
            kid: kid.into(),
            alg,
            encoding,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    /// Sign raw header and claims JSON text (so tests can send duplicate keys, odd spacing…).
    pub fn sign_text(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg).unwrap();
        format!("{input}.{sig}")
    }

    pub fn sign(&self, header: Value, claims: Value) -> String {
        self.sign_text(&header.to_string(), &claims.to_string())
    }

    /// The usual header for this key.
    pub fn header(&self) -> Value {
        json!({"alg": format!("{:?}", self.alg), "kid": self.kid, "typ": "at+jwt"})
    }
}

struct JwksState {
    doc: Mutex<Value>,
    available: AtomicBool,
    fetches: AtomicU64,
    fetched_at: Mutex<Vec<Instant>>,
    attacker_fetches: AtomicU64,
}

/// A JWKS endpoint on loopback (`/jwks`), plus `/attacker` that counts any request (it must
/// never be contacted: the validator never follows `jku`/`x5u`).
pub struct JwksServer {
    pub addr: SocketAddr,
    state: Arc<JwksState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn jwks(State(s): State<Arc<JwksState>>) -> Response {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    s.fetched_at.lock().unwrap().push(Instant::now());
    if !s.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let doc = s.doc.lock().unwrap().clone();
    ([(header::CACHE_CONTROL, "max-age=300")], axum::Json(doc)).into_response()
}

async fn attacker(State(s): State<Arc<JwksState>>) -> Response {
    s.attacker_fetches.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND.into_response()
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey]) -> JwksServer {
        let state = Arc::new(JwksState {
            doc: Mutex::new(
                json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}),
            ),
            available: AtomicBool::new(true),
            fetches: AtomicU64::new(0),
            fetched_at: Mutex::new(Vec::new()),
            attacker_fetches: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/jwks", get(jwks))
            .route("/attacker", get(attacker))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        JwksServer { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_document(&self, doc: Value) {
        *self.state.doc.lock().unwrap() = doc;
    }

    pub fn publish(&self, keys: &[&TestKey]) {
        self.set_document(json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}));
    }

    pub fn set_available(&self, up: bool) {
        self.state.available.store(up, Ordering::SeqCst);
    }

    pub fn fetches(&self) -> u64 {
        self.state.fetches.load(Ordering::SeqCst)
    }

    pub fn attacker_fetches(&self) -> u64 {
        self.state.attacker_fetches.load(Ordering::SeqCst)
    }

    /// When each `/jwks` request arrived, in order.
    pub fn fetch_times(&self) -> Vec<Instant> {
        self.state.fetched_at.lock().unwrap().clone()
    }
}

struct IntrospectionState {
    delay: Mutex<Duration>,
    active: Mutex<HashMap<String, Value>>,
    calls: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// An RFC 7662 endpoint on loopback (`/introspect`, no client authentication checked) that
/// answers after a configurable delay and records the most calls it ever had in flight at once.
/// Tokens registered with [`IntrospectionServer::activate`] are active with the given members;
/// every other token is inactive.
pub struct IntrospectionServer {
    pub addr: SocketAddr,
    state: Arc<IntrospectionState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IntrospectionServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn introspect(
    State(s): State<Arc<IntrospectionState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = *s.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let answer = match form
        .get("token")
        .and_then(|t| s.active.lock().unwrap().get(t).cloned())
    {
        Some(Value::Object(mut members)) => {
            members.insert("active".into(), Value::Bool(true));
            Value::Object(members)
        }
        _ => json!({"active": false}),
    };
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    axum::Json(answer).into_response()
}

impl IntrospectionServer {
    pub async fn start(delay: Duration) -> IntrospectionServer {
        let state = Arc::new(IntrospectionState {
            delay: Mutex::new(delay),
            active: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/introspect", post(introspect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        IntrospectionServer { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    pub fn activate(&self, token: &str, members: Value) {
        self.state
            .active
            .lock()
            .unwrap()
            .insert(token.into(), members);
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

/// The HTTP client the gateway uses toward IdPs (no redirects).
pub fn idp_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A validator from the `issuers:` YAML block `issuers_yaml` (indented as a top-level key's list).
pub fn validator(issuers_yaml: &str) -> TokenValidator {
    let yaml = format!(
        "public_url: https://mcp.example.com\nlisteners: [{{bind: '127.0.0.1:1'}}]\nissuers:\n{issuers_yaml}\nroutes:\n  - {{name: r, path: /mcp, upstream: {{url: 'http://127.0.0.1:1/mcp'}}, auth: none}}\n"
    );
    let config = mcpgate_config::parse_str(&yaml, std::path::Path::new("."), &|_| None)
        .unwrap_or_else(|e| panic!("test config: {e:?}\n{yaml}"));
    TokenValidator::new(&config.issuers, idp_client())
}
