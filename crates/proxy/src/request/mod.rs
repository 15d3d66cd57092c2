//! The request path: pingora's `ProxyHttp` hooks, each a short list of named steps. Decisions come
//! from the pure crates (`mcpgate-http`, `mcpgate-auth`, `mcpgate-mcp`); this module only wires
//! them to pingora. Most refusals are decided in `request_filter` before any upstream connection
//! exists; a large or chunked POST body is judged in `request_body_filter` once complete (the
//! upstream has only the headers then) and its refusal answered from `fail_to_proxy`.
//! docs/architecture.md walks through the same phases with the same numbers.

mod answer;
mod body;
mod ctx;
mod failure;
mod forward;
pub mod lean;
mod limits;
mod logging;
mod login;
pub(crate) mod names;
mod phases;
mod response;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mcpgate_http::budget::BodyBudget;
use mcpgate_login::LoginService;
use mcpgate_mcp::session::SessionBindings;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session as HttpSession};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, Result};

pub use ctx::{RequestCtx, IN_FLIGHT};

/// The per-request context as pingora holds it.
pub type Ctx = Box<RequestCtx>;
use phases::{Phase, Stop};

use crate::snapshot::SharedSnapshot;
use crate::telemetry::{self, Stage};

/// The gateway's `ProxyHttp` service: one per process, reading the current configuration snapshot.
pub struct McpProxy {
    snapshot: SharedSnapshot,
    draining: Arc<AtomicBool>,
    /// Session bindings; outside the snapshot so they survive configuration reloads.
    sessions: SessionBindings,
    /// Request-body bytes held for judging, across every connection.
    bodies: Arc<BodyBudget>,
    /// The login front door, when configured; its store outlives snapshots.
    login: Option<Arc<LoginService>>,
    /// The lean path for small judged POSTs; `None`: every request takes pingora's general loop.
    lean: Option<lean::Lean>,
}

impl McpProxy {
    pub fn new(
        snapshot: SharedSnapshot,
        draining: Arc<AtomicBool>,
        sessions: SessionBindings,
        login: Option<Arc<LoginService>>,
        lean: Option<lean::Lean>,
    ) -> Self {
        McpProxy {
            snapshot,
            draining,
            sessions,
            bodies: Arc::default(),
            login,
            lean,
        }
    }

    /// Phases 1–10 of docs/architecture.md (with the rate limits' 5a, 6a, 6b and 9a), in order.
    /// The first that refuses stops the request.
    async fn request_phases(&self, session: &mut HttpSession, ctx: &mut RequestCtx) -> Phase {
        let snapshot = self.admit(session, ctx);
        telemetry::begin(ctx, session.req_header());
        let target = phases::parse_request(session.req_header(), &snapshot)?;
        ctx.path.clone_from(&target.path);
        if let Some(doc) = phases::metadata_document(session.req_header(), &snapshot, &target.path)
        {
            return Err(doc.into());
        }
        if let Some(login) = self.login.as_deref().filter(|l| l.owns(&target.path)) {
            let answer = login::serve(session, ctx, login, &snapshot, &target.path).await?;
            return Err(answer.into());
        }
        let (index, remainder) = phases::find_route(session.req_header(), &snapshot, &target.path)?;
        ctx.route_index = Some(index);
        let route = &snapshot.routes[index];
        phases::check_method_and_length(session.req_header(), &snapshot)?;
        phases::check_origin(session.req_header(), route)?;
        limits::check_unauthenticated(session, ctx, &snapshot, route).await?;
        telemetry::mark(ctx, Stage::Auth);
        let authenticated = phases::authenticate(session.req_header(), &snapshot, route).await;
        limits::charge_refused(ctx, &snapshot, route, &authenticated).await;
        ctx.principal = authenticated?;
        login::check_revocation(self.login.as_ref(), ctx, route).await?;
        telemetry::mark(ctx, Stage::Policy);
        limits::check_caller(ctx, &snapshot, route).await?;
        self.check_session_owner(session, ctx, route).await?;
        phases::check_route_policy(ctx, route)?;
        phases::judge_small_body(session, ctx, route, &self.bodies).await?;
        limits::check_call(ctx, &snapshot, route).await?;
        phases::plan_upstream(
            ctx,
            session.req_header(),
            route,
            remainder,
            target.query.as_deref(),
        );
        Ok(())
    }
}

#[async_trait]
impl ProxyHttp for McpProxy {
    /// Boxed: pingora-proxy keeps the context in its per-request future three times over (rustc
    /// stores async arguments both as arguments and as moved locals), and moves that future
    /// twice per request. A 1 KiB context made it 3.3 KiB larger, in every idle SSE stream and
    /// in every request's copies (issue 16's memory profile); a box is 8 bytes.
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Box::default()
    }

    /// No downstream modules. pingora's default adds its response-compression module switched
    /// off, which still costs every request an allocation and a call per response piece; the
    /// gateway never compresses (an encoded answer it cannot filter is refused instead).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut HttpSession, ctx: &mut Ctx) -> Result<bool> {
        match self.request_phases(session, ctx).await {
            Ok(()) => match self.lean.as_ref().filter(|_| lean::eligible(session, ctx)) {
                Some(lean) => {
                    let forwarded = lean.forward(&self.sessions, session, ctx).await;
                    ctx.lean_failed = forwarded.is_err();
                    forwarded.map(|()| true)
                }
                None => Ok(false),
            },
            Err(Stop::Answer(a)) => {
                answer::write_answer(session, ctx, *a).await?;
                Ok(true)
            }
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut HttpSession,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(limit) = ctx.snapshot.as_ref().map(|s| s.limits.max_request_body) else {
            return Ok(());
        };
        body::count(ctx, body.as_ref(), limit)?;
        body::hold_and_judge(session.req_header(), ctx, body, end_of_stream, limit)?;
        limits::check_held_call(ctx).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut HttpSession,
        ctx: &mut Ctx,
    ) -> Result<Box<HttpPeer>> {
        forward::choose_peer(ctx)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut HttpSession,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        *upstream_request = forward::upstream_request(session, ctx)?;
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut HttpSession,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        response::answer_header(&self.sessions, session, resp, ctx).await
    }

    fn response_body_filter(
        &self,
        _session: &mut HttpSession,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        response::transform_body(&self.sessions, ctx, body, end_of_stream);
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut HttpSession,
        e: &Error,
        ctx: &mut Ctx,
    ) -> FailToProxy {
        let status = match failure::failure_answer(e, ctx) {
            Some(answer) => {
                let status = answer.status;
                // The client may be gone by now; there is nobody left to tell.
                let _ = answer::write_answer(session, ctx, answer).await;
                status
            }
            None => 0,
        };
        if ctx.lean_failed {
            let summary = self.request_summary(session, ctx);
            tracing::error!(
                "Fail to proxy: {e}, status: {status}, tries: 1, retry: false, {summary}"
            );
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    /// A lean-path failure has its line written by `fail_to_proxy` (see `RequestCtx::lean_failed`).
    fn suppress_error_log(&self, _session: &HttpSession, ctx: &Ctx, _e: &Error) -> bool {
        ctx.lean_failed
    }

    /// What pingora's own error lines say about the request: method, normalised path and host —
    /// never the query, which may carry a token (`?access_token=`) or a legacy session id.
    fn request_summary(&self, session: &HttpSession, ctx: &Ctx) -> String {
        let req = session.req_header();
        let path = if ctx.path.is_empty() {
            "-"
        } else {
            ctx.path.as_str()
        };
        let host = phases::header_str(req, &names::HOST).unwrap_or("-");
        format!("{} {path}, Host: {host}", req.method)
    }

    async fn logging(&self, session: &mut HttpSession, e: Option<&Error>, ctx: &mut Ctx) {
        if ctx.held.take().is_some() {
            // Whatever the request still held (it may have ended mid-body) is given back now.
            let used = i64::try_from(self.bodies.used()).unwrap_or(i64::MAX);
            crate::metrics::METRICS.buffered_body_bytes.set(used);
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        telemetry::finish(ctx, session.req_header().method.as_str(), status);
        logging::finish(session, e, ctx);
    }
}
