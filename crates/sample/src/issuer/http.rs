//! The demo issuer's HTTP endpoints: `GET /jwks`, discovery metadata at
//! `/.well-known/openid-configuration` and
//! `/.well-known/oauth-authorization-server`, `POST /token` (the
//! client_credentials grant here; the sign-in grants in `login`) and
//! `POST /introspect` (RFC 7662). The routes of `login` are mounted here too.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use subtle::ConstantTimeEq as _;

use super::{login, now_secs, IssuerState};
use crate::util::lock;

pub(super) fn router(state: Arc<IssuerState>) -> Router {
    Router::new()
        .route("/jwks", get(jwks))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route(
            "/authorize",
            get(login::authorize_page).post(login::authorize_choose),
        )
        .route("/userinfo", get(login::userinfo).post(login::userinfo))
        .route("/token", post(token))
        .route("/introspect", post(introspect))
        .with_state(state)
}

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if !state.available.load(Ordering::SeqCst) {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "JWKS outage (simulated)",
        );
    }
    let body = lock(&state.keys).jwks();
    let cache_control = format!("public, max-age={}", state.options.jwks_max_age.as_secs());
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache_control).expect("ASCII header value"),
    );
    response
}

async fn metadata(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    let iss = &state.issuer_url;
    Json(json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/jwks"),
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        // RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "email", "profile", "mcp:tools", "mcp:resources", "mcp:prompts"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name", "groups"],
    }))
}

async fn token(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => client_credentials_grant(&state, &form),
        Some("authorization_code") => login::code_grant(&state, &headers, &form),
        Some("refresh_token") => login::refresh_grant(&state, &headers, &form),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "supported: client_credentials, authorization_code, refresh_token",
        ),
    }
}

/// `client_credentials` grant without client authentication (demo only):
/// form `scope` and `resource` (or `audience`) become the token's claims.
fn client_credentials_grant(state: &IssuerState, form: &HashMap<String, String>) -> Response {
    let Some(audience) = form.get("resource").or_else(|| form.get("audience")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`resource` is required",
        );
    };
    let scope = form.get("scope").map_or("", String::as_str);
    let ttl = state.options.token_ttl;
    let access_token = state.mint_default(audience, "demo-user", scope, ttl);
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scope,
    }))
    .into_response()
}

/// Client credentials from `Authorization: Basic` or, failing that, the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return super::login::basic_credentials(value);
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

pub(super) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

async fn introspect(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    state.introspections.fetch_add(1, Ordering::SeqCst);
    let authenticated = client_credentials(&headers, &form).is_some_and(|(id, secret)| {
        // Evaluate both comparisons: no early exit on the id.
        let id_ok = constant_time_eq(&id, &state.options.client_id);
        let secret_ok = constant_time_eq(&secret, &state.options.client_secret);
        id_ok & secret_ok
    });
    if !authenticated {
        return super::login::invalid_client();
    }
    let delay = *lock(&state.introspection_delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(token) = form.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`token` is required",
        );
    };
    let claims = lock(&state.opaque).get(token).cloned();
    let live = claims.filter(|claims| {
        claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_none_or(|exp| exp > now_secs())
    });
    let body = match live {
        Some(Value::Object(mut claims)) => {
            claims.insert("active".into(), Value::Bool(true));
            Value::Object(claims)
        }
        _ => json!({ "active": false }),
    };
    Json(body).into_response()
}
