//! The request path: pingora's `ProxyHttp` hooks wired to the pure pieces (path normalisation,
//! routing, token validation, forwarding headers, SSE framing). Every decision is made in
//! `request_filter`, before an upstream connection exists; the later hooks only rewrite.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use mcpgate_auth::{bearer_token, AuthError, Principal};
use mcpgate_http::challenge::bearer_challenge;
use mcpgate_http::forwarded::{forwarded, ForwardedInput};
use mcpgate_http::headers::{connection_listed, strip_toward_upstream, HOP_BY_HOP};
use mcpgate_http::path::encode_path;
use mcpgate_http::routing::upstream_path;
use mcpgate_http::sse::{SseEvent, SseSplitter};
use mcpgate_http::{normalize_path, ErrorBody, GatewayError};
use mcpgate_mcp::session::{SessionCheck, SessionStore};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

use crate::mcp::{self, Judged, ListFilter, Refusal};
use crate::metrics::METRICS;
use crate::respond::write_local;
use crate::snapshot::{CompiledAuth, CompiledRoute, SharedSnapshot, Snapshot};

/// Requests currently being handled (the drain on shutdown waits for this to reach zero).
pub static IN_FLIGHT: AtomicI64 = AtomicI64::new(0);

/// Counts a request as in flight for as long as its context lives.
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        METRICS.in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        METRICS.in_flight.dec();
    }
}

/// State of the legacy `endpoint` rewrite on one SSE answer.
struct EndpointRewrite {
    splitter: SseSplitter,
    request_upstream_path: String,
}

/// Per-request state shared across the hooks.
pub struct RequestCtx {
    started: Instant,
    snapshot: Option<Arc<Snapshot>>,
    route: Option<usize>,
    /// Normalised request path (for logs; never the query, which may carry secrets).
    path: String,
    upstream_uri: String,
    /// A GET: a long-lived stream, subject to the stream idle timeout.
    streaming: bool,
    body_bytes: u64,
    local_error: Option<&'static str>,
    auth_failure: Option<&'static str>,
    principal: Option<Arc<Principal>>,
    /// Log-safe hash of a refused token (accepted ones carry it in `principal`).
    token_hash: Option<String>,
    peer_trusted: bool,
    tls: bool,
    upstream_addr: Option<SocketAddr>,
    sse_open: bool,
    rewrite: Option<EndpointRewrite>,
    /// The accepted JSON-RPC request, once judged.
    judged: Option<Judged>,
    /// A large or chunked POST body held back until it can be judged.
    hold: Option<BytesMut>,
    /// The body was read (and judged) in `request_filter`.
    body_read_early: bool,
    /// A refusal decided after the upstream was chosen (held bodies), answered in `fail_to_proxy`.
    refusal: Option<Refusal>,
    /// Filtering of a `*/list` answer.
    list_filter: Option<ListFilter>,
    /// The request's `Mcp-Session-Id` is already bound to this caller.
    session_bound: bool,
    _in_flight: InFlight,
}

/// The gateway service: one per process, reading the current configuration snapshot.
pub struct McpGateway {
    snapshot: SharedSnapshot,
    draining: Arc<AtomicBool>,
    /// Session bindings; outside the snapshot so they survive configuration reloads.
    sessions: Arc<dyn SessionStore>,
}

impl McpGateway {
    pub fn new(
        snapshot: SharedSnapshot,
        draining: Arc<AtomicBool>,
        sessions: Arc<dyn SessionStore>,
    ) -> Self {
        McpGateway {
            snapshot,
            draining,
            sessions,
        }
    }
}

/// Session ids are unique per upstream, not across them: bind them per route.
fn session_key(route: &str, session_id: &str) -> String {
    format!("{route}\u{0}{session_id}")
}

fn header_str<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn headers_size(req: &RequestHeader) -> usize {
    let uri = req.uri.to_string().len();
    req.headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + uri
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

fn local_addr(session: &Session) -> Option<SocketAddr> {
    session.server_addr().and_then(|a| a.as_inet()).copied()
}

impl McpGateway {
    /// Answer with a gateway error document and record why.
    async fn reject(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        err: GatewayError,
        headers: &[(&str, String)],
    ) -> Result<bool> {
        ctx.local_error = Some(err.reason());
        write_local(
            session,
            err.status(),
            "application/json",
            err.body().to_json(),
            headers,
            false,
        )
        .await?;
        Ok(true)
    }

    /// Answer a failed token check: 400 malformed, 401 invalid, 503 when the IdP is unreachable.
    async fn reject_auth(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        metadata_url: &str,
        failure: AuthFailure,
    ) -> Result<bool> {
        let (status, code, reason, message, challenge, retry_after) = match &failure {
            AuthFailure::Malformed => (
                400,
                -32600,
                "invalid_request",
                "malformed Authorization header",
                Some(bearer_challenge(
                    metadata_url,
                    None,
                    Some("invalid_request"),
                    Some("malformed Authorization header"),
                )),
                false,
            ),
            AuthFailure::Missing(challenge) => (
                401,
                -32001,
                "missing_token",
                "authentication required",
                Some(challenge.clone()),
                false,
            ),
            AuthFailure::Invalid(e, _) if e.kind.is_unavailable() => (
                503,
                -32003,
                e.kind.as_str(),
                "the identity provider is unavailable; retry later",
                None,
                true,
            ),
            AuthFailure::Invalid(e, _) => (
                401,
                -32001,
                e.kind.as_str(),
                e.kind.description(),
                Some(bearer_challenge(
                    metadata_url,
                    None,
                    Some("invalid_token"),
                    Some(e.kind.description()),
                )),
                false,
            ),
        };
        ctx.auth_failure = Some(reason);
        if let AuthFailure::Invalid(_, hash) = failure {
            ctx.token_hash = Some(hash);
        }
        if let Some(route) = ctx
            .route
            .and_then(|i| ctx.snapshot.as_ref().map(|s| &s.routes[i]))
        {
            METRICS
                .auth_failures
                .with_label_values(&[route.name.as_str(), reason])
                .inc();
        }
        let mut headers: Vec<(&str, String)> = Vec::with_capacity(2);
        if let Some(c) = challenge {
            headers.push(("www-authenticate", c));
        }
        if retry_after {
            headers.push(("retry-after", "5".to_string()));
        }
        let body = ErrorBody::new(status, code, message, reason).to_json();
        write_local(session, status, "application/json", body, &headers, false).await?;
        Ok(true)
    }

    async fn authenticate(
        &self,
        session: &Session,
        snapshot: &Snapshot,
        route: &CompiledRoute,
    ) -> std::result::Result<Option<Arc<Principal>>, AuthFailure> {
        let CompiledAuth::Required {
            trust, challenge, ..
        } = &route.auth
        else {
            return Ok(None);
        };
        let header = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let token = match bearer_token(header) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(AuthFailure::Missing(challenge.clone())),
            Err(_) => return Err(AuthFailure::Malformed),
        };
        snapshot
            .validator
            .validate(token, trust)
            .await
            .map(Some)
            .map_err(|e| AuthFailure::Invalid(e, mcpgate_auth::token_hash(token)))
    }
}

/// Prefix of RFC 9728 Protected Resource Metadata paths.
const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

impl McpGateway {
    /// Serve a route's Protected Resource Metadata: public, CORS-readable, cacheable briefly.
    async fn serve_metadata(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        snapshot: &Snapshot,
    ) -> Result<bool> {
        let Some(doc) = snapshot.metadata.get(ctx.path.as_str()) else {
            return self.reject(session, ctx, GatewayError::NoRoute, &[]).await;
        };
        let method = session.req_header().method.clone();
        let cors = [
            ("access-control-allow-origin", "*".to_string()),
            ("access-control-allow-methods", "GET, OPTIONS".to_string()),
        ];
        match method.as_str() {
            "GET" | "HEAD" => {
                write_local(session, 200, "application/json", doc.clone(), &cors, false).await?;
            }
            "OPTIONS" => {
                write_local(session, 204, "text/plain", Vec::new(), &cors, false).await?;
            }
            _ => {
                let allow = [("allow", "GET, OPTIONS".to_string())];
                return self
                    .reject(session, ctx, GatewayError::MethodNotAllowed, &allow)
                    .await;
            }
        }
        Ok(true)
    }
}

impl McpGateway {
    /// Does the request present a session bound to someone else? Binds nothing.
    async fn session_hijacked(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        route: &CompiledRoute,
    ) -> bool {
        let Some(sid) = header_str(session.req_header(), "mcp-session-id") else {
            return false;
        };
        let Some(owner) = ctx.principal.as_deref().and_then(mcp::owner) else {
            return false;
        };
        match self
            .sessions
            .check(&session_key(&route.name, sid), &owner)
            .await
        {
            SessionCheck::Mismatch => true,
            SessionCheck::Owner => {
                ctx.session_bound = true;
                false
            }
            SessionCheck::Unbound => false,
        }
    }

    /// Remember who owns a session the upstream just minted; forget it when it is deleted.
    async fn bind_session(&self, session: &Session, resp: &ResponseHeader, ctx: &RequestCtx) {
        let Some(route) = ctx
            .snapshot
            .as_ref()
            .zip(ctx.route)
            .map(|(s, i)| &s.routes[i])
        else {
            return;
        };
        let req = session.req_header();
        if req.method == http::Method::DELETE && resp.status.is_success() {
            if let Some(sid) = header_str(req, "mcp-session-id") {
                self.sessions.remove(&session_key(&route.name, sid)).await;
            }
            return;
        }
        let minted = resp
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok());
        let (Some(sid), Some(owner)) = (minted, ctx.principal.as_deref().and_then(mcp::owner))
        else {
            return;
        };
        if ctx.session_bound && header_str(req, "mcp-session-id") == Some(sid) {
            return;
        }
        self.sessions
            .bind(&session_key(&route.name, sid), owner)
            .await;
    }

    /// Read a small request body completely (pingora replays it to the upstream afterwards).
    async fn read_body_early(&self, session: &mut Session, limit: u64) -> Result<Bytes> {
        if header_str(session.req_header(), "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            // pingora never sends 100 itself; a client waiting for it would stall.
            let cont = ResponseHeader::build(100, Some(0))?;
            session.write_response_header(Box::new(cont), false).await?;
        }
        session.enable_retry_buffering();
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > limit {
                return Error::e_explain(ErrorType::HTTPStatus(413), "request body over the limit");
            }
        }
        Ok(buf.freeze())
    }

    fn judge(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        route: &CompiledRoute,
        body: &[u8],
        max_body: u64,
    ) -> std::result::Result<Judged, Refusal> {
        let req = session.req_header();
        let judged = mcp::judge(
            &route.mcp,
            ctx.principal.as_deref(),
            body,
            header_str(req, "mcp-method"),
            header_str(req, "mcp-name"),
            max_body,
        )?;
        mcp::audit(
            "allow",
            "policy",
            &route.name,
            ctx.principal.as_ref(),
            judged.method.as_deref(),
            judged.target.as_ref(),
        );
        Ok(judged)
    }

    /// Answer an MCP-level refusal (400 invalid JSON-RPC, 403 denied) and audit it.
    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &CompiledRoute,
        refusal: Refusal,
    ) -> Result<bool> {
        self.write_refusal(session, ctx, route, &refusal).await?;
        Ok(true)
    }

    async fn write_refusal(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &CompiledRoute,
        refusal: &Refusal,
    ) -> Result<u16> {
        let metadata_url = match &route.auth {
            CompiledAuth::Required { metadata_url, .. } => metadata_url.as_str(),
            CompiledAuth::None => "",
        };
        let (status, headers, body) = refusal.answer(metadata_url);
        ctx.local_error = Some(refusal.reason());
        if let Refusal::Denied(d) = refusal {
            let (method, target, denial) = (&d.method, &d.target, &d.denial);
            mcp::audit(
                "deny",
                denial.reason,
                &route.name,
                ctx.principal.as_ref(),
                method.as_deref(),
                target.as_ref(),
            );
            METRICS
                .policy_denials
                .with_label_values(&[route.name.as_str(), denial.reason])
                .inc();
        }
        if session.response_written().is_none() {
            let headers: Vec<(&str, String)> = headers.into_iter().collect();
            write_local(session, status, "application/json", body, &headers, false).await?;
        }
        Ok(status)
    }
}

enum AuthFailure {
    Missing(String),
    Malformed,
    /// The token was refused; carries the token's log-safe hash.
    Invalid(AuthError, String),
}

#[async_trait]
impl ProxyHttp for McpGateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            snapshot: None,
            route: None,
            path: String::new(),
            upstream_uri: String::new(),
            streaming: false,
            body_bytes: 0,
            local_error: None,
            auth_failure: None,
            principal: None,
            token_hash: None,
            peer_trusted: false,
            tls: false,
            upstream_addr: None,
            sse_open: false,
            rewrite: None,
            judged: None,
            hold: None,
            body_read_early: false,
            refusal: None,
            list_filter: None,
            session_bound: false,
            _in_flight: InFlight::start(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.snapshot.load_full();
        ctx.snapshot = Some(snapshot.clone());
        let limits = snapshot.limits;
        session.set_read_timeout(Some(limits.client_read_timeout));
        session.set_write_timeout(Some(limits.client_write_timeout));
        if self.draining.load(Ordering::Relaxed) {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(limits.client_keepalive.as_secs()));
        }

        if let Some(l) = snapshot.listener_for(local_addr(session)) {
            ctx.tls = l.tls;
            ctx.peer_trusted = client_ip(session)
                .is_some_and(|ip| l.trusted_proxies.iter().any(|n| n.contains(ip)));
        }

        let req = session.req_header();
        if headers_size(req) > limits.max_request_headers {
            return self
                .reject(session, ctx, GatewayError::HeadersTooLarge, &[])
                .await;
        }
        let raw_target = req
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/")
            .to_string();
        let normalized = match normalize_path(&raw_target) {
            Ok(n) => n,
            Err(_) => return self.reject(session, ctx, GatewayError::BadPath, &[]).await,
        };
        ctx.path = normalized.path.clone();
        if normalized.path.starts_with(WELL_KNOWN_PRM) {
            return self.serve_metadata(session, ctx, &snapshot).await;
        }

        let req = session.req_header();
        let host = req
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| header_str(req, "host").map(str::to_string));
        let Some(m) = snapshot.table.find(host.as_deref(), &normalized.path) else {
            return self.reject(session, ctx, GatewayError::NoRoute, &[]).await;
        };
        ctx.route = Some(m.index);
        let route = &snapshot.routes[m.index];

        let method = req.method.clone();
        if !matches!(method.as_str(), "GET" | "POST" | "DELETE") {
            let allow = [("allow", "GET, POST, DELETE".to_string())];
            return self
                .reject(session, ctx, GatewayError::MethodNotAllowed, &allow)
                .await;
        }
        let declared_len =
            header_str(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if declared_len.is_some_and(|n| n > limits.max_request_body) {
            return self
                .reject(session, ctx, GatewayError::BodyTooLarge, &[])
                .await;
        }

        if !route
            .mcp
            .origin_allowed(header_str(req, "origin"), host.as_deref())
        {
            return self
                .reject(session, ctx, GatewayError::OriginNotAllowed, &[])
                .await;
        }

        match self.authenticate(session, &snapshot, route).await {
            Ok(principal) => ctx.principal = principal,
            Err(failure) => {
                let metadata_url = match &route.auth {
                    CompiledAuth::Required { metadata_url, .. } => metadata_url.clone(),
                    CompiledAuth::None => String::new(),
                };
                return self.reject_auth(session, ctx, &metadata_url, failure).await;
            }
        }

        if self.session_hijacked(session, ctx, route).await {
            let body = ErrorBody::new(
                404,
                mcp::CODE_SESSION_NOT_FOUND,
                "session not found",
                "session_not_found",
            )
            .to_json();
            ctx.local_error = Some("session_not_found");
            mcp::audit(
                "deny",
                "session_owner_mismatch",
                &route.name,
                ctx.principal.as_ref(),
                None,
                None,
            );
            write_local(session, 404, "application/json", body, &[], false).await?;
            return Ok(true);
        }
        if let Err(denial) = route.mcp.policy.check_route(ctx.principal.as_deref()) {
            let refusal = Refusal::denied(None, None, None, denial);
            return self.refuse(session, ctx, route, refusal).await;
        }
        if method == http::Method::POST {
            if declared_len.is_some_and(|n| n <= mcp::EARLY_READ_LIMIT) {
                let body = self
                    .read_body_early(session, limits.max_request_body)
                    .await?;
                ctx.body_read_early = true;
                match self.judge(session, ctx, route, &body, limits.max_request_body) {
                    Ok(judged) => ctx.judged = Some(judged),
                    Err(refusal) => return self.refuse(session, ctx, route, refusal).await,
                }
            } else {
                ctx.hold = Some(BytesMut::new());
            }
        }

        let mut uri = encode_path(&upstream_path(&route.upstream.base_path, m.remainder));
        if let Some(q) = &normalized.query {
            uri.push('?');
            uri.push_str(q);
        }
        ctx.upstream_uri = uri;
        ctx.streaming = method == http::Method::GET;
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(snapshot) = ctx.snapshot.clone() else {
            return Ok(());
        };
        let limit = snapshot.limits.max_request_body;
        if let Some(b) = body {
            ctx.body_bytes += b.len() as u64;
            if ctx.body_bytes > limit {
                ctx.local_error = Some(GatewayError::BodyTooLarge.reason());
                return Err(Error::new(ErrorType::HTTPStatus(413)));
            }
        }
        let Some(held) = ctx.hold.as_mut() else {
            return Ok(());
        };
        // Hold every byte back until the whole body is judged: the upstream gets none of a
        // refused body. (`Some(empty)`, not `None`, which would end the upstream body.)
        if let Some(b) = body.take() {
            held.extend_from_slice(&b);
        }
        if !end_of_stream {
            *body = Some(Bytes::new());
            return Ok(());
        }
        let whole = ctx.hold.take().unwrap_or_default().freeze();
        let Some(i) = ctx.route else {
            return Error::e_explain(ErrorType::InternalError, "no route selected");
        };
        let route = &snapshot.routes[i];
        match self.judge(session, ctx, route, &whole, limit) {
            Ok(judged) => {
                ctx.judged = Some(judged);
                *body = Some(whole);
                Ok(())
            }
            Err(refusal) => {
                let status = if matches!(refusal, Refusal::Invalid(_)) {
                    400
                } else {
                    403
                };
                ctx.refusal = Some(refusal);
                Err(Error::new(ErrorType::HTTPStatus(status)))
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (Some(snapshot), Some(i)) = (&ctx.snapshot, ctx.route) else {
            return Error::e_explain(ErrorType::InternalError, "no route selected");
        };
        let upstream = &snapshot.routes[i].upstream;
        let Some(addr) = upstream.pick_addr() else {
            return Error::e_explain(
                ErrorType::ConnectNoRoute,
                format!("upstream host {} has not resolved", upstream.host),
            );
        };
        ctx.upstream_addr = Some(addr);
        Ok(Box::new(upstream.peer(addr, ctx.streaming)))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(snapshot), Some(i)) = (&ctx.snapshot, ctx.route) else {
            return Error::e_explain(ErrorType::InternalError, "no route selected");
        };
        let upstream = &snapshot.routes[i].upstream;
        let uri: http::Uri = ctx
            .upstream_uri
            .parse()
            .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream uri"))?;
        upstream_request.set_uri(uri);

        let original = session.req_header();
        let fwd = forwarded(ForwardedInput {
            peer_ip: client_ip(session),
            peer_trusted: ctx.peer_trusted,
            tls: ctx.tls,
            host: header_str(original, "host").or(original.uri.authority().map(|a| a.as_str())),
            incoming_for: header_str(original, "x-forwarded-for"),
            incoming_proto: header_str(original, "x-forwarded-proto"),
            incoming_host: header_str(original, "x-forwarded-host"),
        });

        let listed = connection_listed(
            upstream_request
                .headers
                .get_all("connection")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let doomed: Vec<http::HeaderName> = upstream_request
            .headers
            .keys()
            .filter(|k| strip_toward_upstream(k.as_str()) || listed.iter().any(|l| l == k.as_str()))
            .cloned()
            .collect();
        for name in doomed {
            upstream_request.remove_header(&name);
        }
        // Bodies must stay inspectable (SSE framing, filtering): no compression upstream.
        upstream_request.remove_header("accept-encoding");
        upstream_request.insert_header("host", upstream.authority.as_str())?;
        if let Some(chain) = fwd.for_chain {
            upstream_request.insert_header("x-forwarded-for", chain)?;
        }
        upstream_request.insert_header("x-forwarded-proto", fwd.proto)?;
        if let Some(h) = fwd.host {
            upstream_request.insert_header("x-forwarded-host", h)?;
        }
        for (name, value) in &upstream.headers {
            upstream_request.insert_header(name.clone(), value.clone())?;
        }
        if ctx.body_read_early {
            // We already answered `100 Continue` and hold the whole body.
            upstream_request.remove_header("expect");
        }
        if let Some(names) = &snapshot.routes[i].mcp.identity {
            // Client-sent copies are never trusted, whatever the names.
            for name in [
                &names.subject,
                &names.email,
                &names.scopes,
                &names.client_id,
            ] {
                upstream_request.remove_header(name.as_str());
            }
            if let Some(p) = &ctx.principal {
                for (name, value) in mcp::identity_headers(names, p) {
                    upstream_request.insert_header(name, value)?;
                }
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let listed = connection_listed(
            resp.headers
                .get_all("connection")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        for name in HOP_BY_HOP {
            resp.remove_header(*name);
        }
        for name in &listed {
            resp.remove_header(name.as_str());
        }
        let is_sse = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        if is_sse {
            ctx.sse_open = true;
            METRICS.sse_streams.inc();
            resp.insert_header("x-accel-buffering", "no")?;
            resp.insert_header("cache-control", "no-cache")?;
            if session.req_header().method == http::Method::GET {
                // Legacy HTTP+SSE: the first event may be `endpoint`, rewritten to our path.
                rechunk(session, resp)?;
                ctx.rewrite = Some(EndpointRewrite {
                    splitter: SseSplitter::new(),
                    request_upstream_path: ctx
                        .upstream_uri
                        .split('?')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        }
        self.bind_session(session, resp, ctx).await;
        if let Some(kind) = ctx.judged.as_ref().and_then(|j| j.list) {
            if resp.status.is_success() {
                rechunk(session, resp)?;
                resp.remove_header("etag");
                // Filtered per caller: never from a shared cache.
                resp.insert_header(
                    "cache-control",
                    if is_sse {
                        "private, no-cache"
                    } else {
                        "private, no-store"
                    },
                )?;
                resp.append_header("vary", "authorization")?;
                ctx.list_filter = Some(if is_sse {
                    ListFilter::Sse(Box::new(mcpgate_mcp::filter::SseFilter::new(kind)))
                } else {
                    ListFilter::Json {
                        kind,
                        buf: BytesMut::new(),
                        too_large: false,
                    }
                });
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(filter) = ctx.list_filter.as_mut() {
            let snapshot = ctx.snapshot.as_ref();
            let route = snapshot.zip(ctx.route).map(|(s, i)| &s.routes[i]);
            let principal = ctx.principal.as_deref();
            let allow = |t: &mcpgate_mcp::jsonrpc::Target| {
                route.is_some_and(|r| r.mcp.policy.allows_target(principal, t))
            };
            *body = Some(filter.push(body.take(), end_of_stream, &allow));
            return Ok(None);
        }
        let Some(rw) = ctx.rewrite.as_mut() else {
            return Ok(None);
        };
        let mut events = Vec::new();
        if let Some(chunk) = body.take() {
            rw.splitter.push(&chunk, &mut events);
        }
        if events.is_empty() && !end_of_stream {
            // Still waiting for the first complete event.
            *body = Some(Bytes::new());
            return Ok(None);
        }
        let mapping = ctx
            .snapshot
            .as_ref()
            .zip(ctx.route)
            .map(|(s, i)| s.routes[i].endpoint_mapping.clone());
        let mut out = BytesMut::new();
        let mut events = events.into_iter();
        if let Some(first) = events.next() {
            out.extend_from_slice(&rewrite_endpoint_event(
                first,
                mapping.as_ref(),
                &rw.request_upstream_path,
            ));
        }
        for ev in events {
            out.extend_from_slice(&ev);
        }
        if let Some(rest) = rw.splitter.finish() {
            out.extend_from_slice(&rest);
        }
        // Only the first event can be `endpoint`; the rest of the stream passes untouched.
        ctx.rewrite = None;
        *body = Some(out.freeze());
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(refusal) = ctx.refusal.take() {
            let snapshot = ctx.snapshot.clone();
            if let Some(route) = snapshot.as_ref().zip(ctx.route).map(|(s, i)| &s.routes[i]) {
                if let Ok(status) = self.write_refusal(session, ctx, route, &refusal).await {
                    return FailToProxy {
                        error_code: status,
                        can_reuse_downstream: false,
                    };
                }
            }
        }
        let gateway_error = match e.etype() {
            ErrorType::HTTPStatus(413) => Some(GatewayError::BodyTooLarge),
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &pingora::ErrorSource::Upstream =>
            {
                Some(GatewayError::UpstreamTimeout)
            }
            _ => match e.esource() {
                pingora::ErrorSource::Upstream => Some(GatewayError::UpstreamUnreachable),
                pingora::ErrorSource::Downstream => None,
                _ => Some(GatewayError::Internal),
            },
        };
        // Connect failures are reported as Internal-sourced by some paths; classify by type too.
        let gateway_error = match e.etype() {
            ErrorType::ConnectTimedout => Some(GatewayError::UpstreamTimeout),
            ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::TLSHandshakeFailure => Some(GatewayError::UpstreamUnreachable),
            _ => gateway_error,
        };
        let Some(err) = gateway_error else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        ctx.local_error = Some(err.reason());
        if session.response_written().is_none() {
            let _ = write_local(
                session,
                err.status(),
                "application/json",
                err.body().to_json(),
                &[],
                true,
            )
            .await;
        }
        FailToProxy {
            error_code: err.status(),
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if ctx.sse_open {
            METRICS.sse_streams.dec();
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let route = ctx
            .snapshot
            .as_ref()
            .zip(ctx.route)
            .map_or("-", |(s, i)| s.routes[i].name.as_str())
            .to_string();
        let elapsed = ctx.started.elapsed();
        // Duration first: a scrape that sees the request counted also sees its duration.
        METRICS
            .duration
            .with_label_values(&[route.as_str()])
            .observe(elapsed.as_secs_f64());
        METRICS
            .requests
            .with_label_values(&[route.as_str(), status_label(status)])
            .inc();
        if let Some(reason) = ctx.local_error {
            METRICS
                .gateway_errors
                .with_label_values(&[route.as_str(), reason])
                .inc();
        }
        if !ctx.snapshot.as_ref().is_some_and(|s| s.access_log) {
            return;
        }
        let req = session.req_header();
        tracing::info!(
            target: "mcpgate::access",
            method = %req.method,
            path = %ctx.path,
            route = %route,
            status,
            upstream = ctx.upstream_addr.map(|a| a.to_string()).unwrap_or_default(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            bytes_in = ctx.body_bytes,
            bytes_out = session.body_bytes_sent(),
            client = client_ip(session).map(|i| i.to_string()).unwrap_or_default(),
            subject = ctx.principal.as_ref().and_then(|p| p.subject.clone()).unwrap_or_default(),
            token = ctx
                .principal
                .as_ref()
                .map(|p| p.token_hash.as_str())
                .or(ctx.token_hash.as_deref())
                .unwrap_or_default(),
            error = ctx.local_error.or(ctx.auth_failure).unwrap_or_default(),
            failure = e.map(|e| e.etype().as_str()).unwrap_or_default(),
            "request"
        );
    }
}

/// The body is about to change length: drop `Content-Length` and, on HTTP/1.1, frame it chunked
/// (HTTP/2 frames bodies itself). Without this an HTTP/1.1 client could not find the body's end.
fn rechunk(session: &Session, resp: &mut ResponseHeader) -> Result<()> {
    resp.remove_header("content-length");
    if !session.is_http2() && resp.headers.get("transfer-encoding").is_none() {
        resp.insert_header("transfer-encoding", "chunked")?;
    }
    Ok(())
}

/// Rewrite a legacy `endpoint` event to point at the gateway; any other event is returned as is.
fn rewrite_endpoint_event(
    raw: Bytes,
    mapping: Option<&mcpgate_http::legacy_sse::EndpointMapping>,
    request_upstream_path: &str,
) -> Bytes {
    let Some(mapping) = mapping else { return raw };
    let Some(mut ev) = SseEvent::parse(&raw) else {
        return raw;
    };
    if ev.event.as_deref() != Some("endpoint") {
        return raw;
    }
    match mapping.rewrite(&ev.data, request_upstream_path) {
        Some(rewritten) => {
            ev.data = rewritten;
            ev.to_bytes()
        }
        None => {
            tracing::warn!(
                endpoint = %ev.data,
                "legacy SSE endpoint points outside the route; it is not reachable through the gateway"
            );
            raw
        }
    }
}

fn status_label(status: u16) -> &'static str {
    const EXACT: &[(u16, &str)] = &[
        (0, "0"),
        (200, "200"),
        (202, "202"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (413, "413"),
        (431, "431"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    if let Some((_, label)) = EXACT.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}
