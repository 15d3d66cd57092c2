//! Wires the login front door into the request path: its endpoints are answered here (the
//! body read whole, bounded), and a token the front door issued is refused once its family is
//! revoked. The flows themselves live in `mcpgate-login`.

use std::sync::Arc;

use bytes::BytesMut;
use mcpgate_auth::{AuthError, AuthErrorKind, Principal};
use mcpgate_config::Login;
use mcpgate_login::{LoginRequest, LoginResponse, LoginService};
use mcpgate_mcp::answer::{AnswerKind, LocalAnswer};
use mcpgate_mcp::authn::AuthFailure;
use pingora::proxy::Session as HttpSession;

use super::ctx::RequestCtx;
use super::names;
use super::phases::{self, header_str, Phase};
use crate::metrics::METRICS;
use crate::snapshot::{CompiledAuth, CompiledRoute, Snapshot};

/// Front-door requests are small forms and JSON (RFC 7591 registrations are the largest).
const MAX_LOGIN_BODY: usize = 64 * 1024;

/// 1b. A front-door endpoint: answered here, never proxied.
pub async fn serve(
    session: &mut HttpSession,
    ctx: &RequestCtx,
    login: &LoginService,
    snapshot: &Snapshot,
    path: &str,
) -> Phase<LocalAnswer> {
    let Some(body) = read_body(session).await? else {
        let too_big = LoginResponse::oauth_error(413, "invalid_request", "request body too large")
            .refused("login_body_too_large");
        return Ok(local_answer(too_big));
    };
    let req = session.req_header();
    let forwarded = header_str(req, &names::X_FORWARDED_FOR);
    let request = LoginRequest {
        method: req.method.as_str().to_owned(),
        path: path.to_owned(),
        query: req.uri.query().map(str::to_owned),
        cookie: header_str(req, &http::header::COOKIE).map(str::to_owned),
        content_type: header_str(req, &http::header::CONTENT_TYPE).map(str::to_owned),
        authorization: header_str(req, &http::header::AUTHORIZATION).map(str::to_owned),
        body,
        client_ip: mcpgate_ratelimit::client_ip(
            phases::client_ip(session),
            ctx.peer_trusted,
            forwarded,
        ),
    };
    let answer = login.handle(&request, &snapshot.login_routes).await;
    Ok(local_answer(answer))
}

/// The whole body, or `None` past [`MAX_LOGIN_BODY`].
async fn read_body(session: &mut HttpSession) -> Phase<Option<Vec<u8>>> {
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_LOGIN_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.to_vec()))
}

fn local_answer(r: LoginResponse) -> LocalAnswer {
    if let Some(event) = r.event {
        METRICS.login_events.with_label_values(&[event]).inc();
    }
    let mut answer = LocalAnswer::document(r.status, r.content_type, r.body);
    answer.headers = r.headers;
    answer.reason = r.reason;
    if r.reason.is_some() {
        answer = answer.counted_as(AnswerKind::GatewayError);
    }
    answer
}

/// 6c. A token the front door issued is refused once its family (`sid`) is revoked: a replayed
///     code, a reused refresh token, a user the IdP refused at refresh, or RFC 7009. A store
///     that cannot say is a 503: fail closed.
pub async fn check_revocation(
    login: Option<&Arc<LoginService>>,
    ctx: &RequestCtx,
    route: &CompiledRoute,
) -> Phase {
    let (Some(login), Some(p)) = (login, ctx.principal.as_deref()) else {
        return Ok(());
    };
    if p.issuer_name != Login::ISSUER_NAME {
        return Ok(());
    }
    let kind = match family(p) {
        None => AuthErrorKind::Revoked,
        Some(sid) => match login.family_active(sid).await {
            Ok(true) => return Ok(()),
            Ok(false) => AuthErrorKind::Revoked,
            Err(_) => AuthErrorKind::RevocationUnavailable,
        },
    };
    let CompiledAuth::Required { metadata_url, .. } = &route.auth else {
        return Ok(());
    };
    let failure = AuthFailure::Invalid(AuthError::from(kind), p.token_hash.clone());
    Err(failure.answer(metadata_url).into())
}

fn family(p: &Principal) -> Option<&str> {
    p.claims.get("sid")?.as_str()
}
