//! The demo's OAuth client: a tiny web app that logs a person in through mcpgate's front door
//! (authorization code + PKCE S256, `state` and RFC 9207 `iss` checked), redeems the code and
//! shows the access token with a command that uses it. It exists so that `mcpgate demo` can show
//! a whole login in a browser; MCP clients (Claude, VS Code, the SDKs) do the same by themselves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use mcpgate_http::escape_html as esc;

use crate::util::{lock, random_id, Running};

/// Where the client logs people in.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The gateway's front door issuer (`http://127.0.0.1:PORT`).
    pub issuer: String,
    /// The MCP route to get a token for (RFC 8707 `resource`).
    pub resource: String,
    /// The client id registered at the front door.
    pub client_id: String,
}

struct ClientState {
    options: ClientOptions,
    redirect_uri: String,
    /// `state` → PKCE verifier of each login in progress (single use).
    logins: Mutex<HashMap<String, String>>,
    http: reqwest::Client,
}

/// A running demo client.
pub struct DemoClient {
    pub addr: SocketAddr,
    _running: Running,
}

impl DemoClient {
    pub async fn start(bind: SocketAddr, options: ClientOptions) -> std::io::Result<DemoClient> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let running = Running::start(bind, move |addr, _| {
            router(Arc::new(ClientState {
                redirect_uri: format!("http://{addr}/callback"),
                options,
                logins: Mutex::new(HashMap::new()),
                http,
            }))
        })
        .await?;
        Ok(DemoClient {
            addr: running.addr,
            _running: running,
        })
    }

    /// Open this in a browser to log in.
    pub fn login_url(&self) -> String {
        format!("http://{}/login", self.addr)
    }

    /// The redirect URI to register at the front door.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}/callback", self.addr)
    }
}

fn router(state: Arc<ClientState>) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/callback", get(callback))
        .with_state(state)
}

/// Starts a login: a fresh `state` and PKCE verifier, then off to the front door.
async fn login(State(s): State<Arc<ClientState>>) -> Response {
    let state = random_id(24);
    let verifier = random_id(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    lock(&s.logins).insert(state.clone(), verifier);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &s.options.client_id)
        .append_pair("redirect_uri", &s.redirect_uri)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &s.options.resource)
        .finish();
    let to = format!("{}/oauth/authorize?{query}", s.options.issuer);
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// The front door's answer: check `state` and `iss`, redeem the code, show the token.
async fn callback(
    State(s): State<Arc<ClientState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let verifier = q.get("state").and_then(|st| lock(&s.logins).remove(st));
    let Some(verifier) = verifier else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown or used <code>state</code>.",
        );
    };
    if q.get("iss") != Some(&s.options.issuer) {
        return page(
            StatusCode::BAD_REQUEST,
            "The answer names another issuer (RFC 9207).",
        );
    }
    if let Some(error) = q.get("error") {
        let why = q.get("error_description").map_or("", String::as_str);
        return page(
            StatusCode::FORBIDDEN,
            &format!("Refused: <code>{}</code> {}", esc(error), esc(why)),
        );
    }
    let Some(code) = q.get("code") else {
        return page(StatusCode::BAD_REQUEST, "No code in the answer.");
    };
    match redeem(&s, code, &verifier).await {
        Ok(tokens) => signed_in(&s.options.resource, &tokens),
        Err(e) => page(
            StatusCode::BAD_GATEWAY,
            &format!("The token request failed: {}", esc(&e)),
        ),
    }
}

async fn redeem(s: &ClientState, code: &str, verifier: &str) -> Result<serde_json::Value, String> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("client_id", &s.options.client_id)
        .append_pair("code", code)
        .append_pair("redirect_uri", &s.redirect_uri)
        .append_pair("code_verifier", verifier)
        .finish();
    let r = s
        .http
        .post(format!("{}/oauth/token", s.options.issuer))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

fn signed_in(resource: &str, tokens: &serde_json::Value) -> Response {
    let token = tokens["access_token"].as_str().unwrap_or_default();
    let scope = tokens["scope"].as_str().unwrap_or_default();
    let body = format!(
        "<p>Signed in. mcpgate issued an access token for <code>{r}</code> with scopes \
         <code>{sc}</code> (it expires in {ttl} s; the refresh token stays with this app).</p>\
         <p>Use it from a shell:</p><pre>export TOKEN='{t}'\n\
         curl -s -X POST {r} -H 'Content-Type: application/json' \
         -H 'Accept: application/json, text/event-stream' -H \"Authorization: Bearer $TOKEN\" \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}'</pre>",
        r = esc(resource),
        sc = esc(scope),
        ttl = tokens["expires_in"],
        t = esc(token),
    );
    page(StatusCode::OK, &body)
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>Demo MCP client</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto}}\
         pre{{white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:1rem}}</style>\
         <h1>Demo MCP client</h1>{body}"
    );
    (status, Html(html)).into_response()
}
