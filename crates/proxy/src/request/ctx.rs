//! Per-request state shared across pingora's hooks: the snapshot and route the request runs
//! under, who the caller is, where the body and the answer stand, and what the access log and
//! metrics will say.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use mcpgate_auth::Principal;
use mcpgate_http::budget::Reservation;
use mcpgate_http::sse::SseSplitter;
use mcpgate_mcp::answer::{AnswerKind, LocalAnswer};
use mcpgate_mcp::filter::ListFilter;
use mcpgate_mcp::judge::{Judged, Refusal};

use crate::metrics::METRICS;
use crate::snapshot::{CompiledRoute, Snapshot};

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

/// Where the request body stands. Only POST bodies are judged.
pub enum BodyState {
    /// No body to judge (GET, DELETE), or not yet decided.
    Unjudged,
    /// Read whole in `request_filter` and judged there; pingora replays it upstream.
    ReadEarly,
    /// Large or chunked: held back chunk by chunk until complete, then judged.
    Held(BytesMut),
    /// The held body was judged and released whole.
    Released,
    /// The held body was refused; `fail_to_proxy` answers with this.
    Refused(Refusal),
}

/// What happens to the upstream's answer on its way to the client.
pub enum ResponseTransform {
    /// Passed through as it comes.
    None,
    /// Legacy HTTP+SSE: the first event may be `endpoint`, rewritten to the gateway's path.
    EndpointRewrite {
        splitter: SseSplitter,
        request_upstream_path: String,
        /// The list filter for the rest of the stream, on a filtering route.
        then: Option<ListFilter>,
    },
    /// A `*/list` answer filtered to what the caller may use.
    ListFilter(ListFilter),
}

/// Per-request state shared across the hooks.
pub struct RequestCtx {
    pub started: Instant,
    /// The configuration this request runs under, loaded once (reloads never change it midway).
    pub snapshot: Option<Arc<Snapshot>>,
    /// Index of the route in `snapshot.routes`, once routed; read it through [`RequestCtx::route`].
    pub route_index: Option<usize>,
    /// Normalised request path (for logs; never the query, which may carry secrets).
    pub path: String,
    pub upstream_uri: String,
    /// A GET: a long-lived stream, subject to the stream idle timeout.
    pub streaming: bool,
    pub body_bytes: u64,
    /// Reason of the gateway's own error answer (`mcpgate_gateway_errors_total`).
    pub local_error: Option<&'static str>,
    /// Reason the caller's credentials were refused.
    pub auth_failure: Option<&'static str>,
    pub principal: Option<Arc<Principal>>,
    /// Log-safe hash of a refused token (accepted ones carry it in `principal`).
    pub token_hash: Option<String>,
    /// The client connected from a trusted proxy (its `X-Forwarded-*` are believed).
    pub peer_trusted: bool,
    pub tls: bool,
    pub upstream_addr: Option<SocketAddr>,
    pub sse_open: bool,
    pub body: BodyState,
    /// The accepted JSON-RPC request, once judged.
    pub judged: Option<Judged>,
    pub response: ResponseTransform,
    /// The request's `Mcp-Session-Id` is already bound to this caller.
    pub session_bound: bool,
    /// The upstream's own id behind the request's sealed `Mcp-Session-Id`, forwarded in its place.
    pub upstream_session_id: Option<String>,
    /// The upstream's own query behind a sealed legacy endpoint query, forwarded in its place.
    pub upstream_query: Option<String>,
    /// Body bytes this request holds against the process-wide budget.
    pub held: Option<Reservation>,
    /// The lean path failed to proxy: its error line is written by `fail_to_proxy`, worded as
    /// the general loop's, instead of pingora's line for a failed `request_filter`.
    pub lean_failed: bool,
    /// Span, trace context, correlation ids (`crate::telemetry`).
    pub telemetry: crate::telemetry::RequestTelemetry,
    pub rate: super::limits::RateCtx,
    _in_flight: InFlight,
}

impl Default for RequestCtx {
    fn default() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            snapshot: None,
            route_index: None,
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
            body: BodyState::Unjudged,
            judged: None,
            response: ResponseTransform::None,
            session_bound: false,
            upstream_session_id: None,
            upstream_query: None,
            held: None,
            lean_failed: false,
            telemetry: Default::default(),
            rate: Default::default(),
            _in_flight: InFlight::start(),
        }
    }
}

impl RequestCtx {
    /// The route this request was matched to, if it got that far.
    pub fn route(&self) -> Option<&CompiledRoute> {
        let (snapshot, i) = self.snapshot.as_ref().zip(self.route_index)?;
        snapshot.routes.get(i)
    }

    /// The route's name for metrics and logs (`-` before routing).
    pub fn route_name(&self) -> &str {
        self.route().map_or("-", |r| r.name.as_str())
    }

    /// Record what a local answer means: its reason for the access log, its counter, its audit line.
    pub fn record(&mut self, answer: &LocalAnswer) {
        let reason = answer.reason.unwrap_or_default();
        match answer.kind {
            AnswerKind::Document => {}
            AnswerKind::GatewayError => self.local_error = answer.reason,
            AnswerKind::AuthFailure => {
                self.auth_failure = answer.reason;
                METRICS
                    .auth_failures
                    .with_label_values(&[self.route_name(), reason])
                    .inc();
            }
            AnswerKind::PolicyDenial => {
                self.local_error = answer.reason;
                METRICS
                    .policy_denials
                    .with_label_values(&[self.route_name(), reason])
                    .inc();
            }
        }
        if let Some(hash) = &answer.token_hash {
            self.token_hash = Some(hash.clone());
        }
        if let Some(facts) = &answer.audit {
            crate::telemetry::audit_refused(self, facts);
        }
    }
}
