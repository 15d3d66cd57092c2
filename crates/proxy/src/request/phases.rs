//! The request phases, in the order `request_filter` runs them (docs/architecture.md numbers them
//! the same way). Each phase either lets the request go on or stops it with a [`LocalAnswer`];
//! no upstream connection exists yet, so nothing of a refused request reaches the upstream.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderName;
use mcpgate_auth::{bearer_token, Principal};
use mcpgate_http::budget::BodyBudget;
use mcpgate_http::codes;
use mcpgate_http::headers::connection_problem;
use mcpgate_http::path::encode_path;
use mcpgate_http::routing::upstream_path;
use mcpgate_http::{normalize_path, GatewayError, NormalizedPath};
use mcpgate_mcp::answer::{AuditFacts, LocalAnswer};
use mcpgate_mcp::authn::AuthFailure;
use mcpgate_mcp::judge::Refusal;
use mcpgate_mcp::session::{
    owner, session_key, SessionBindings, SessionCheck, SessionOwner, StoreUnavailable,
};
use pingora::http::RequestHeader;
use pingora::proxy::Session as HttpSession;

use super::body;
use super::ctx::{BodyState, RequestCtx};
use super::names;
use super::McpProxy;
use crate::snapshot::{CompiledAuth, CompiledRoute, Snapshot};

/// Why the phases stopped: an answer to write, or a failure pingora handles (`fail_to_proxy`).
pub enum Stop {
    /// Boxed: the happy path carries only a pointer-sized error slot.
    Answer(Box<LocalAnswer>),
    Failed(Box<pingora::Error>),
}

impl From<LocalAnswer> for Stop {
    fn from(a: LocalAnswer) -> Stop {
        Stop::Answer(Box::new(a))
    }
}

impl From<GatewayError> for Stop {
    fn from(e: GatewayError) -> Stop {
        Stop::Answer(Box::new(e.into()))
    }
}

impl From<Box<pingora::Error>> for Stop {
    fn from(e: Box<pingora::Error>) -> Stop {
        Stop::Failed(e)
    }
}

pub type Phase<T = ()> = Result<T, Stop>;

/// Prefix of RFC 9728 Protected Resource Metadata paths.
const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

impl McpProxy {
    /// 1. Admit: load the configuration snapshot once, set client timeouts, and keep-alive
    ///    (off while draining); note the listener's TLS and whether the peer is a trusted proxy.
    pub(super) fn admit(&self, session: &mut HttpSession, ctx: &mut RequestCtx) -> Arc<Snapshot> {
        let snapshot = self.snapshot.load_full();
        ctx.snapshot = Some(snapshot.clone());
        let limits = &snapshot.limits;
        session.set_read_timeout(Some(limits.client_read_timeout));
        session.set_write_timeout(Some(limits.client_write_timeout));
        let keep = !self.draining.load(Ordering::Relaxed) && wants_keepalive(session.req_header());
        let keepalive = keep.then_some(limits.client_keepalive.as_secs());
        session.set_keepalive(keepalive);
        // RFC 9112 §9.3.2: a pipelined next request is answered in order, not dropped (pingora
        // drops the bytes of a pipelined request unless told otherwise).
        session.set_pipelining_enabled(true);
        if let Some(l) = snapshot.listener_for(local_addr(session)) {
            ctx.tls = l.tls;
            ctx.peer_trusted = client_ip(session)
                .is_some_and(|ip| l.trusted_proxies.iter().any(|n| n.contains(ip)));
        }
        snapshot
    }

    /// 7. Session: an `Mcp-Session-Id` bound to another caller, or never seen minted through this
    ///    gateway (an unknown id, or one from before a restart), is answered as unknown (404): the
    ///    client starts a new session. An unknown id is never bound to whoever presents it. A
    ///    sealed id is opened here; the upstream later gets its own id in its place — and a
    ///    sealed legacy endpoint query its own query. A store that cannot answer refuses the
    ///    request (503): fail closed.
    pub(super) async fn check_session_owner(
        &self,
        session: &HttpSession,
        ctx: &mut RequestCtx,
        route: &CompiledRoute,
    ) -> Phase {
        let Some(principal) = ctx.principal.as_deref() else {
            return Ok(()); // `auth: none`: nobody to tell apart
        };
        let query = session.req_header().uri.query().unwrap_or_default();
        let sid = header_str(session.req_header(), &names::MCP_SESSION_ID);
        if sid.is_none() && query.is_empty() {
            // Neither a session id nor a legacy endpoint query (which could carry a sealed one):
            // no owner to compare, so none is made (two strings: about 2k instructions).
            return Ok(());
        }
        let owner = owner(principal);
        if let SessionBindings::Sealed(sealer) = &self.sessions {
            if let Some(opened) =
                sealer.open_endpoint_query(query, &route.name, &owner, SystemTime::now())
            {
                ctx.upstream_query = Some(opened.map_err(|why| session_not_found(why.reason()))?);
            }
        }
        let Some(sid) = sid else {
            return Ok(());
        };
        let store = match &self.sessions {
            SessionBindings::Sealed(sealer) => {
                let opened = sealer.open(sid, &route.name, &owner, SystemTime::now());
                let upstream_id = opened.map_err(|why| session_not_found(why.reason()))?;
                ctx.upstream_session_id = Some(upstream_id);
                ctx.session_bound = true;
                return Ok(());
            }
            SessionBindings::Stored(store) => store,
        };
        let check = store
            .check(
                &session_key(&route.name, sid),
                &owner,
                route.session_idle_timeout,
            )
            .await
            .map_err(|e| store_unavailable(&e, &owner))?;
        match check {
            SessionCheck::Mismatch => Err(session_not_found("session_owner_mismatch").into()),
            SessionCheck::Unbound => Err(session_not_found("session_unknown").into()),
            SessionCheck::Owner => {
                ctx.session_bound = true;
                Ok(())
            }
        }
    }
}

/// 2. Parse: header size (431) and path normalisation (400). The query is kept apart: it is
///    forwarded but never logged.
pub fn parse_request(req: &RequestHeader, snapshot: &Snapshot) -> Phase<NormalizedPath> {
    if headers_size(req) > snapshot.limits.max_request_headers {
        return Err(GatewayError::HeadersTooLarge.into());
    }
    let raw_target = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    normalize_path(raw_target).map_err(|_| GatewayError::BadPath.into())
}

/// 2a. Protected Resource Metadata (RFC 9728) is the gateway's own document: public,
///     CORS-readable, answered without a route.
pub fn metadata_document(
    req: &RequestHeader,
    snapshot: &Snapshot,
    path: &str,
) -> Option<LocalAnswer> {
    if !path.starts_with(WELL_KNOWN_PRM) {
        return None;
    }
    let Some(doc) = snapshot.metadata.find(request_host(req), path) else {
        return Some(GatewayError::NoRoute.into());
    };
    let with_cors = |a: LocalAnswer| {
        a.with_header("access-control-allow-origin", "*")
            .with_header("access-control-allow-methods", "GET, OPTIONS")
    };
    Some(match req.method.as_str() {
        "GET" | "HEAD" => with_cors(LocalAnswer::document(200, "application/json", doc.to_vec())),
        "OPTIONS" => with_cors(LocalAnswer::document(204, "text/plain", Vec::new())),
        _ => LocalAnswer::from(GatewayError::MethodNotAllowed).with_header("allow", "GET, OPTIONS"),
    })
}

/// 3. Route by host and path (404). Returns the route's index and the path below the route.
pub fn find_route<'p>(
    req: &RequestHeader,
    snapshot: &Snapshot,
    path: &'p str,
) -> Phase<(usize, &'p str)> {
    let m = snapshot
        .table
        .find(request_host(req), path)
        .ok_or(GatewayError::NoRoute)?;
    Ok((m.index, m.remainder))
}

/// 4. Method (405), a body where MCP has none (400), a `Connection` header that cannot be
///    honoured (400), and declared body length (413), before any byte of the body is read.
pub fn check_method_and_length(req: &RequestHeader, snapshot: &Snapshot) -> Phase {
    if !matches!(req.method.as_str(), "GET" | "POST" | "DELETE") {
        let refusal = LocalAnswer::from(GatewayError::MethodNotAllowed)
            .with_header("allow", "GET, POST, DELETE");
        return Err(refusal.into());
    }
    if req.method != http::Method::POST && has_body(req) {
        // A GET or DELETE body means nothing to MCP, and no policy ever judges it.
        return Err(GatewayError::BodyNotAllowed.into());
    }
    let connection = req.headers.get_all(http::header::CONNECTION);
    if connection_problem(connection.iter().map(|v| v.as_bytes())).is_some() {
        // Refused here with a reason: pingora would refuse it too, later, as a client error it
        // answers with nothing but a closed connection.
        return Err(GatewayError::BadConnectionHeader.into());
    }
    if declared_length(req).is_some_and(|n| n > snapshot.limits.max_request_body) {
        return Err(GatewayError::BodyTooLarge.into());
    }
    Ok(())
}

/// A request announces a body: a non-zero `Content-Length` or any `Transfer-Encoding`
/// (RFC 9112 §6.1: chunked framing is a body even when it turns out empty).
fn has_body(req: &RequestHeader) -> bool {
    let length = req.headers.get(http::header::CONTENT_LENGTH);
    req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || length.is_some_and(|v| v.as_bytes().iter().any(|b| *b != b'0'))
}

/// 5. Origin: the route's allow-list, or the DNS-rebinding guard on unauthenticated routes (403).
pub fn check_origin(req: &RequestHeader, route: &CompiledRoute) -> Phase {
    if route
        .mcp
        .origin_allowed(header_str(req, &names::ORIGIN), request_host(req))
    {
        Ok(())
    } else {
        Err(GatewayError::OriginNotAllowed.into())
    }
}

/// 6. Authenticate: the bearer token becomes a `Principal` (400 malformed, 401 missing or
///    refused, 503 when the identity provider cannot be asked). `None` on `auth: none` routes.
pub async fn authenticate(
    req: &RequestHeader,
    snapshot: &Snapshot,
    route: &CompiledRoute,
) -> Phase<Option<Arc<Principal>>> {
    let CompiledAuth::Required {
        trust,
        challenge,
        metadata_url,
    } = &route.auth
    else {
        return Ok(None);
    };
    let header = req
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let failure = match bearer_token(header) {
        Ok(Some(token)) => match snapshot.validator.validate(token, trust).await {
            Ok(principal) => return Ok(Some(principal)),
            Err(e) => AuthFailure::Invalid(e, mcpgate_auth::token_hash(token)),
        },
        Ok(None) => AuthFailure::Missing(challenge.clone()),
        Err(_) => AuthFailure::Malformed,
    };
    Err(failure.answer(metadata_url).into())
}

/// 8. Route policy: the route's baseline (scopes, email domains, groups, claims) (403).
pub fn check_route_policy(ctx: &RequestCtx, route: &CompiledRoute) -> Phase {
    route
        .mcp
        .policy
        .check_route(ctx.principal.as_deref())
        .map_err(|denial| {
            let refusal = Refusal::denied(None, None, None, denial);
            refusal.answer(route.auth.metadata_url()).into()
        })
}

/// 9. Body: a POST's JSON-RPC body is judged before the upstream sees it (400/403) — read now
///    when its declared length is small, otherwise held back in `request_body_filter`.
pub async fn judge_small_body(
    session: &mut HttpSession,
    ctx: &mut RequestCtx,
    route: &CompiledRoute,
    budget: &Arc<BodyBudget>,
) -> Phase {
    if session.req_header().method != http::Method::POST {
        return Ok(());
    }
    body::start_holding(ctx, budget, client_addr(session));
    let max_body = ctx
        .snapshot
        .as_ref()
        .map_or(0, |s| s.limits.max_request_body);
    let declared = declared_length(session.req_header()).filter(|n| *n <= body::EARLY_READ_LIMIT);
    let Some(declared) = declared else {
        body::continue_if_expected(session).await?;
        ctx.body = BodyState::Held(Default::default());
        return Ok(());
    };
    let bytes = body::read_early(session, ctx, declared, max_body).await?;
    crate::telemetry::note_body(ctx, &bytes);
    body::stop_holding(ctx);
    ctx.body = BodyState::ReadEarly;
    let judged = body::judge(session.req_header(), ctx, route, &bytes, max_body)
        .map_err(|refusal| refusal.answer(route.auth.metadata_url()))?;
    ctx.judged = Some(judged);
    Ok(())
}

/// 10. Plan the upstream request: its URI (the route prefix replaced by the upstream's path, the
///     query kept) and whether it is a long-lived stream — a GET, or a 2026-07-28
///     `subscriptions/listen` POST, whose answer lives as long as the subscription — or a request.
pub fn plan_upstream(
    ctx: &mut RequestCtx,
    req: &RequestHeader,
    route: &CompiledRoute,
    remainder: &str,
    query: Option<&str>,
) {
    let mut uri = encode_path(&upstream_path(&route.upstream.base_path, remainder));
    // A sealed legacy session stands for the upstream's own query, and only that is forwarded.
    if let Some(q) = ctx.upstream_query.as_deref().or(query) {
        uri.push('?');
        uri.push_str(q);
    }
    ctx.upstream_uri = uri;
    let listens = ctx
        .judged
        .as_ref()
        .is_some_and(|j| j.method.as_deref() == Some(SUBSCRIPTIONS_LISTEN));
    ctx.streaming = req.method == http::Method::GET || listens;
}

/// MCP 2026-07-28: the POST that replaces the GET stream.
const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";

/// HTTP/1.0 closes after each answer unless the client asks otherwise (RFC 9112 §9.3); pingora
/// respects `Connection: close` when the gateway sets its keep-alive time, not that default.
fn wants_keepalive(req: &RequestHeader) -> bool {
    req.version != http::Version::HTTP_10
        || header_str(req, &names::CONNECTION).is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("keep-alive"))
        })
}

fn session_not_found(audit_reason: &'static str) -> LocalAnswer {
    LocalAnswer::error(
        404,
        codes::SESSION_NOT_FOUND,
        "session_not_found",
        "session not found",
        None,
    )
    .audited(AuditFacts {
        reason: audit_reason,
        method: None,
        target: None,
    })
}

/// The session store cannot answer: refuse (never proceed unbound), and say why in the log.
fn store_unavailable(e: &StoreUnavailable, owner: &SessionOwner) -> LocalAnswer {
    tracing::warn!(
        reason = e.reason,
        error = %e.detail,
        issuer = %owner.issuer,
        "session store unavailable; refusing the request"
    );
    LocalAnswer::error(
        503,
        codes::UNAVAILABLE,
        "session_store_unavailable",
        "session store unavailable; retry later",
        None,
    )
    .with_header("retry-after", "1")
}

/// A request header's value as text (`None` when absent or not visible ASCII). Look names up
/// by [`names`], not by `&str`.
pub fn header_str<'a>(req: &'a RequestHeader, name: &HeaderName) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The host the client addressed: the request target's authority (HTTP/2, absolute form) or `Host`.
fn request_host(req: &RequestHeader) -> Option<&str> {
    req.uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| header_str(req, &names::HOST))
}

fn declared_length(req: &RequestHeader) -> Option<u64> {
    header_str(req, &names::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok())
}

fn headers_size(req: &RequestHeader) -> usize {
    let uri = uri_len(&req.uri);
    req.headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + uri
}

/// The length of `uri` as it displays (`scheme://authority/path?query`), without writing it
/// out: formatting it into a `String` on every request cost about 1k instructions.
fn uri_len(uri: &http::Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + "://".len());
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let query = uri.query().map_or(0, |q| q.len() + 1);
    scheme + authority + uri.path().len() + query
}

pub fn client_ip(session: &HttpSession) -> Option<IpAddr> {
    client_addr(session).map(|a| a.ip())
}

/// The client connection's address (one per TCP connection, shared by its HTTP/2 streams).
fn client_addr(session: &HttpSession) -> Option<SocketAddr> {
    session.client_addr().and_then(|a| a.as_inet()).copied()
}

fn local_addr(session: &HttpSession) -> Option<SocketAddr> {
    session.server_addr().and_then(|a| a.as_inet()).copied()
}

#[cfg(test)]
mod tests {
    use super::uri_len;

    #[test]
    fn uri_length_is_that_of_its_text() {
        for text in [
            "/",
            "/mcp",
            "/mcp?x=1&y=%20",
            "http://example.com/mcp?q",
            "https://user@example.com:8443/a/b",
            "example.com:443",
            "*",
        ] {
            let uri: http::Uri = text.parse().unwrap();
            assert_eq!(uri_len(&uri), uri.to_string().len(), "{text}");
        }
    }
}
