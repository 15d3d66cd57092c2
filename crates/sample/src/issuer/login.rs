//! The demo issuer as an OpenID provider: the sign-in page (`GET`/`POST
//! /authorize`), the `authorization_code` and `refresh_token` grants of
//! `/token`, and `/userinfo`. One pre-registered confidential client, no
//! client registration (the Entra ID / Google situation).

use mcpgate_http::escape_html;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use axum::extract::{Form, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use url::Url;

use super::http::{constant_time_eq, oauth_error};
use super::{now_secs, DemoUser, IssuerState};
use crate::util::{lock, random_id};

/// How long the sign-in page stays usable.
const TRANSACTION_TTL: Duration = Duration::from_secs(600);
/// Authorization codes are short-lived (RFC 6749 §4.1.2 recommends at most 10 minutes).
const CODE_TTL: Duration = Duration::from_secs(60);

/// A sign-in page shown and not yet answered.
#[derive(Clone)]
struct Pending {
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
    scope: String,
    expires: Instant,
}

/// An issued authorization code. Kept after use until it expires, to detect replay.
struct Code {
    grant: Pending,
    sub: String,
    expires: Instant,
    used: bool,
    /// The refresh token issued from this code, revoked if the code is replayed (RFC 6749 §4.1.2).
    refresh_token: Option<String>,
}

/// A live refresh token.
struct RefreshGrant {
    sub: String,
    scope: String,
}

/// Users, sign-in transactions, codes and refresh tokens.
pub(super) struct LoginState {
    users: Vec<DemoUser>,
    disabled: HashSet<String>,
    pending: HashMap<String, Pending>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, RefreshGrant>,
    pub code_redemptions: u64,
}

impl LoginState {
    pub fn new(users: &[DemoUser]) -> LoginState {
        LoginState {
            users: users.to_vec(),
            disabled: HashSet::new(),
            pending: HashMap::new(),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            code_redemptions: 0,
        }
    }

    pub fn set_disabled(&mut self, sub: &str, disabled: bool) {
        if disabled {
            self.disabled.insert(sub.to_owned());
        } else {
            self.disabled.remove(sub);
        }
    }

    /// The user `sub`, if it exists and is enabled.
    fn active_user(&self, sub: &str) -> Option<&DemoUser> {
        if self.disabled.contains(sub) {
            return None;
        }
        self.users.iter().find(|u| u.sub == sub)
    }

    fn prune(&mut self, now: Instant) {
        self.pending.retain(|_, p| p.expires > now);
        self.codes.retain(|_, c| c.expires > now);
    }
}

// ---- GET /authorize --------------------------------------------------------

/// Validates the authorization request and renders the sign-in page.
pub(super) async fn authorize_page(
    State(state): State<Arc<IssuerState>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match single_valued(query.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // RFC 6749 §4.1.2.1: with a bad client or redirect URI, never redirect.
    if get("client_id").is_none_or(|id| id != state.options.client_id) {
        return error_page(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    let Some(redirect_uri) = get("redirect_uri").filter(|u| redirect_allowed(&state, u)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri missing or not registered",
        );
    };
    let refuse =
        |error: &str, why: &str| error_redirect(&state, redirect_uri, get("state"), error, why);
    if get("response_type") != Some("code") {
        return refuse("unsupported_response_type", "only `code` is supported");
    }
    // PKCE is required, and only S256 (an absent method means `plain`, RFC 7636 §4.3).
    let Some(code_challenge) = get("code_challenge").filter(|c| is_pkce_value(c, 43)) else {
        return refuse("invalid_request", "PKCE code_challenge required");
    };
    if get("code_challenge_method") != Some("S256") {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    let Some(state_param) = get("state") else {
        return refuse("invalid_request", "`state` required");
    };
    let Some(nonce) = get("nonce") else {
        return refuse("invalid_request", "`nonce` required");
    };
    let scope = get("scope").unwrap_or("");
    if !scope.split(' ').any(|s| s == "openid") {
        return refuse("invalid_scope", "`openid` scope required");
    }
    let txn = random_id(32);
    let now = Instant::now();
    let users = {
        let mut login = lock(&state.login);
        login.prune(now);
        login.pending.insert(
            txn.clone(),
            Pending {
                redirect_uri: redirect_uri.to_owned(),
                state: state_param.to_owned(),
                nonce: nonce.to_owned(),
                code_challenge: code_challenge.to_owned(),
                scope: scope.to_owned(),
                expires: now + TRANSACTION_TTL,
            },
        );
        login.users.clone()
    };
    html(StatusCode::OK, &sign_in_page(&txn, &users))
}

/// Query parameters, refusing repeated ones (RFC 6749 §3.1: "MUST NOT be included more than once").
fn single_valued(query: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(format!("parameter `{k}` repeated"));
        }
    }
    Ok(out)
}

/// Exact match against the configured list, or any http loopback URI when the list is empty.
fn redirect_allowed(state: &IssuerState, uri: &str) -> bool {
    if !state.options.redirect_uris.is_empty() {
        return state.options.redirect_uris.iter().any(|r| r == uri);
    }
    let Ok(u) = Url::parse(uri) else {
        return false;
    };
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    u.scheme() == "http" && loopback && u.fragment().is_none()
}

/// RFC 7636 §4.1 alphabet and length (43..=128; a S256 challenge is exactly 43).
fn is_pkce_value(v: &str, min: usize) -> bool {
    (min..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn error_redirect(
    state: &IssuerState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    redirect_with(redirect_uri, &params, &state.issuer_url)
}

/// 303 to `redirect_uri` with `params` and `iss` (RFC 9207) added to its query.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)], issuer: &str) -> Response {
    let Ok(mut target) = Url::parse(redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "redirect_uri is not a URL");
    };
    {
        let mut q = target.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        q.append_pair("iss", issuer);
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(target.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn sign_in_page(txn: &str, users: &[DemoUser]) -> String {
    let buttons: String = users
        .iter()
        .map(|u| {
            format!(
                r#"<form method="post" action="/authorize"><input type="hidden" name="txn" value="{txn}"><input type="hidden" name="user" value="{sub}"><button type="submit">{name} &lt;{email}&gt;</button></form>
"#,
                txn = escape_html(txn),
                sub = escape_html(&u.sub),
                name = escape_html(&u.name),
                email = escape_html(&u.email),
            )
        })
        .collect();
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in to the demo identity provider</title></head>
<body><h1>Sign in to the demo identity provider</h1>
<p>Pick a demo user (no password: this provider exists only for the demo and tests).</p>
{buttons}</body></html>
"#
    )
}

fn html(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_owned()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    response
}

fn error_page(status: StatusCode, message: &str) -> Response {
    html(
        status,
        &format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sign-in error</title></head>\
             <body><h1>Sign-in error</h1><p>{}</p></body></html>\n",
            escape_html(message)
        ),
    )
}

// ---- POST /authorize -------------------------------------------------------

/// The chosen user: a single-use code back to the client.
pub(super) async fn authorize_choose(
    State(state): State<Arc<IssuerState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let now = Instant::now();
    let mut login = lock(&state.login);
    login.prune(now);
    // The transaction is single use: a second submit of the page is refused.
    let Some(pending) = form.get("txn").and_then(|t| login.pending.remove(t)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "unknown or expired sign-in; start again",
        );
    };
    let sub = form.get("user").map_or("", String::as_str);
    if !login.users.iter().any(|u| u.sub == sub) {
        return error_page(StatusCode::BAD_REQUEST, "unknown user");
    }
    if login.active_user(sub).is_none() {
        return error_page(StatusCode::FORBIDDEN, "this user is disabled");
    }
    let code = random_id(32);
    login.codes.insert(
        code.clone(),
        Code {
            grant: pending.clone(),
            sub: sub.to_owned(),
            expires: now + CODE_TTL,
            used: false,
            refresh_token: None,
        },
    );
    drop(login);
    redirect_with(
        &pending.redirect_uri,
        &[("code", &code), ("state", &pending.state)],
        &state.issuer_url,
    )
}

// ---- POST /token: authorization_code and refresh_token ----------------------

/// The client's credentials: `client_secret_basic` (RFC 6749 §2.3.1, form-urlencoded then
/// base64), `client_secret_post`, or — if allowed — a public client's bare `client_id`.
/// `false`: answer [`invalid_client`].
fn authenticate_client(
    state: &IssuerState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> bool {
    let expected = (&state.options.client_id, &state.options.client_secret);
    let matches = |id: &str, secret: &str| {
        let id_ok = constant_time_eq(id, expected.0);
        let secret_ok = constant_time_eq(secret, expected.1);
        id_ok & secret_ok
    };
    match headers.get(header::AUTHORIZATION) {
        // RFC 6749 §2.3: one authentication method per request.
        Some(_) if form.contains_key("client_secret") => false,
        Some(value) => basic_credentials(value).is_some_and(|(id, secret)| {
            form.get("client_id").is_none_or(|f| *f == id) && matches(&id, &secret)
        }),
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => matches(id, secret),
            (Some(id), None) => state.options.allow_public_client && *id == *expected.0,
            _ => false,
        },
    }
}

pub(super) fn invalid_client() -> Response {
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"demo-issuer\""),
    );
    response
}

/// `client_secret_basic` (RFC 6749 §2.3.1): base64 of the form-urlencoded id and secret.
pub(super) fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.6: single use, same redirect URI, PKCE S256.
pub(super) fn code_grant(
    state: &IssuerState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    if !authenticate_client(state, headers, form) {
        return invalid_client();
    }
    let now = Instant::now();
    let mut guard = lock(&state.login);
    let login = &mut *guard;
    login.code_redemptions += 1;
    login.prune(now);
    let Some(code) = form.get("code").and_then(|c| login.codes.get_mut(c)) else {
        return invalid_grant("unknown or expired code");
    };
    if code.used {
        // RFC 6749 §4.1.2: a replayed code revokes what it was exchanged for.
        let revoked = code.refresh_token.take();
        if let Some(token) = revoked {
            login.refresh.remove(&token);
        }
        return invalid_grant("code already used");
    }
    // Any attempt uses the code up, so a wrong verifier cannot be retried.
    code.used = true;
    if form.get("redirect_uri") != Some(&code.grant.redirect_uri) {
        return invalid_grant("redirect_uri differs from the authorization request");
    }
    let verifier = form.get("code_verifier").map_or("", String::as_str);
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !is_pkce_value(verifier, 43) || !constant_time_eq(&computed, &code.grant.code_challenge) {
        return invalid_grant("PKCE verification failed");
    }
    let (sub, scope, nonce) = (
        code.sub.clone(),
        code.grant.scope.clone(),
        code.grant.nonce.clone(),
    );
    let Some(user) = login.active_user(&sub).cloned() else {
        return invalid_grant("user is disabled");
    };
    let refresh_token = random_id(32);
    login.refresh.insert(
        refresh_token.clone(),
        RefreshGrant {
            sub,
            scope: scope.clone(),
        },
    );
    if let Some(code) = form.get("code").and_then(|c| login.codes.get_mut(c)) {
        code.refresh_token = Some(refresh_token.clone());
    }
    drop(guard);
    token_response(state, &user, &scope, Some(&nonce), true, refresh_token)
}

/// RFC 6749 §6: refused with `invalid_grant` once the user is disabled; otherwise a new ID
/// token (no nonce, OpenID Connect Core §12.2) and a rotated refresh token.
pub(super) fn refresh_grant(
    state: &IssuerState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    if !authenticate_client(state, headers, form) {
        return invalid_client();
    }
    let mut login = lock(&state.login);
    let Some(old) = form.get("refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`refresh_token` is required",
        );
    };
    let Some(grant) = login.refresh.get(old) else {
        return invalid_grant("unknown refresh token");
    };
    let Some(user) = login.active_user(&grant.sub).cloned() else {
        return invalid_grant("user is disabled");
    };
    let Some(grant) = login.refresh.remove(old) else {
        return invalid_grant("unknown refresh token");
    };
    let refresh_token = random_id(32);
    let scope = grant.scope.clone();
    login.refresh.insert(refresh_token.clone(), grant);
    drop(login);
    let id_token = state.options.refresh_id_token;
    token_response(state, &user, &scope, None, id_token, refresh_token)
}

/// The token response: an opaque access token (introspectable, accepted by `/userinfo`), an ID
/// token if asked for, and the refresh token.
fn token_response(
    state: &IssuerState,
    user: &DemoUser,
    scope: &str,
    nonce: Option<&str>,
    with_id_token: bool,
    refresh_token: String,
) -> Response {
    let now = now_secs();
    let ttl = state.options.token_ttl.as_secs();
    let client_id = &state.options.client_id;
    let access_token = random_id(32);
    lock(&state.opaque).insert(
        access_token.clone(),
        json!({
            "iss": state.issuer_url, "sub": user.sub, "aud": client_id, "client_id": client_id,
            "scope": scope, "iat": now, "exp": now + ttl, "userinfo": true,
        }),
    );
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh_token,
        "scope": scope,
    });
    if with_id_token {
        let mut claims = user_claims(user);
        claims["iss"] = json!(state.issuer_url);
        claims["aud"] = json!(client_id);
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + ttl);
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let keys = lock(&state.keys);
        body["id_token"] = json!(keys.sign(&keys.id_token_header(), &claims));
    }
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn user_claims(user: &DemoUser) -> Value {
    json!({
        "sub": user.sub,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "groups": user.groups,
    })
}

// ---- GET /userinfo ---------------------------------------------------------

/// OpenID Connect Core §5.3: the user's claims for an access token from the code or refresh grant.
pub(super) async fn userinfo(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let claims = token.and_then(|t| lock(&state.opaque).get(&t).cloned());
    let sub = claims
        .filter(|c| c["userinfo"] == true && c["exp"].as_u64().is_some_and(|e| e > now_secs()))
        .and_then(|c| c["sub"].as_str().map(str::to_owned));
    let user = sub.and_then(|s| lock(&state.login).active_user(&s).cloned());
    match user {
        Some(user) => Json(user_claims(&user)).into_response(),
        None => {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
    }
}
