//! Per-request observability: the request's span and its children (authentication, policy,
//! upstream) exported over OTLP, the W3C trace context taken from the caller (`traceparent`
//! header, else MCP `params._meta`) and passed upstream, the ids that tie audit lines to access
//! logs and traces, and the metrics counted at the end of a request. The request hooks call one
//! function each; everything else lives here.

pub mod metrics;
pub mod otel;

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use mcpgate_auth::Principal;
use mcpgate_http::status_label;
use mcpgate_mcp::answer::AuditFacts;
use mcpgate_mcp::audit::{self, Correlation, Decision};
use mcpgate_mcp::jsonrpc::Target;
use mcpgate_mcp::labels::{meta_trace_context, method_class};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, TraceId, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use pingora::http::RequestHeader;

use crate::request::{names, RequestCtx};
use metrics::OBS;

/// A request's observability state, one field of [`RequestCtx`].
pub struct RequestTelemetry {
    /// The gateway's id for this request (audit and access log), shown as 16 hex digits. Kept as
    /// a number and formatted only where a line is written: most requests write none.
    request_id: u64,
    started_at: SystemTime,
    /// The caller's trace context, when it sent a valid one.
    parent: Option<Context>,
    parent_from_header: bool,
    session_hash: String,
    /// When authentication and policy started (each ends where the next begins).
    auth_at: Option<SystemTime>,
    policy_at: Option<SystemTime>,
    upstream_at: Option<(Instant, SystemTime)>,
    upstream_timed: bool,
    /// The request's span, once made (it needs the final parent, known after the body).
    root: Option<Context>,
    /// The upstream call's span: its id is the parent the upstream sees.
    upstream: Option<Context>,
    /// What a refused request asked for (an accepted one is in `ctx.judged`).
    refused_method: Option<String>,
    refused_target: Option<Target>,
}

impl Default for RequestTelemetry {
    fn default() -> RequestTelemetry {
        RequestTelemetry {
            request_id: rand::random(),
            started_at: SystemTime::now(),
            parent: None,
            parent_from_header: false,
            session_hash: String::new(),
            auth_at: None,
            policy_at: None,
            upstream_at: None,
            upstream_timed: false,
            root: None,
            upstream: None,
            refused_method: None,
            refused_target: None,
        }
    }
}

impl RequestTelemetry {
    /// The request id as audit lines, access logs and spans show it.
    fn request_id(&self) -> String {
        format!("{:016x}", self.request_id)
    }
}

/// A request phase whose start is marked.
#[derive(Clone, Copy)]
pub enum Stage {
    Auth,
    Policy,
}

/// pingora's request header as a W3C trace-context carrier.
struct HeaderCarrier<'a>(&'a RequestHeader);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.headers.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.headers.keys().map(|k| k.as_str()).collect()
    }
}

/// A valid remote trace context from `carrier`, if any (malformed ones are ignored: W3C Trace
/// Context §4.2 says to restart the trace rather than fail).
fn extract(carrier: &dyn Extractor) -> Option<Context> {
    let cx = TraceContextPropagator::new().extract(carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// At admission: the caller's `traceparent` header and the hash of its session id.
pub fn begin(ctx: &mut RequestCtx, req: &RequestHeader) {
    let t = &mut ctx.telemetry;
    if req.headers.contains_key(&names::TRACEPARENT) {
        t.parent = extract(&HeaderCarrier(req));
    }
    t.parent_from_header = t.parent.is_some();
    if let Some(sid) = req.headers.get(&names::MCP_SESSION_ID) {
        t.session_hash = mcpgate_auth::token_hash(&String::from_utf8_lossy(sid.as_bytes()));
    }
}

/// Note when a phase starts (the previous one ends there); only spans need it.
pub fn mark(ctx: &mut RequestCtx, stage: Stage) {
    if otel::tracer().is_none() {
        return;
    }
    let now = Some(SystemTime::now());
    match stage {
        Stage::Auth => ctx.telemetry.auth_at = now,
        Stage::Policy => ctx.telemetry.policy_at = now,
    }
}

/// A body read before judging: without a `traceparent` header, MCP's `params._meta` may carry
/// the caller's trace context (SEP-414). The request's span is made now, with its final parent,
/// so that the audit line for this body names its trace.
pub fn note_body(ctx: &mut RequestCtx, body: &[u8]) {
    if otel::tracer().is_none() {
        return;
    }
    if !ctx.telemetry.parent_from_header {
        if let Some((parent, state)) = meta_trace_context(body) {
            let mut carrier = HashMap::from([("traceparent".to_owned(), parent)]);
            if let Some(s) = state {
                carrier.insert("tracestate".to_owned(), s);
            }
            ctx.telemetry.parent = extract(&carrier);
        }
    }
    ensure_root(ctx);
}

/// Make the request's span if tracing is on and it does not exist yet.
fn ensure_root(ctx: &mut RequestCtx) {
    let Some(tracer) = otel::tracer() else {
        return;
    };
    if ctx.telemetry.root.is_some() {
        return;
    }
    let parent = ctx.telemetry.parent.clone().unwrap_or_default();
    let span = tracer
        .span_builder("mcpgate.request")
        .with_kind(SpanKind::Server)
        .with_start_time(ctx.telemetry.started_at)
        .start_with_context(tracer, &parent);
    ctx.telemetry.root = Some(parent.with_span(span));
}

/// Just before the request goes upstream: the upstream span starts, and the upstream gets a
/// `traceparent` naming it (replacing the caller's, which named the caller's own span).
pub fn upstream_request(ctx: &mut RequestCtx, req: &mut RequestHeader) {
    ctx.telemetry.upstream_at = Some((Instant::now(), SystemTime::now()));
    ensure_root(ctx);
    let (Some(tracer), Some(root)) = (otel::tracer(), ctx.telemetry.root.as_ref()) else {
        return;
    };
    let span = tracer
        .span_builder("mcpgate.upstream")
        .with_kind(SpanKind::Client)
        .start_with_context(tracer, root);
    let cx = root.with_span(span);
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    for name in ["traceparent", "tracestate"] {
        req.remove_header(name);
        if let Some(v) = carrier.remove(name) {
            let _ = req.insert_header(name, v);
        }
    }
    ctx.telemetry.upstream = Some(cx);
}

/// The upstream's response header arrived: its latency is known.
pub fn upstream_answered(ctx: &mut RequestCtx, status: u16) {
    let Some((at, _)) = ctx.telemetry.upstream_at else {
        return;
    };
    if std::mem::replace(&mut ctx.telemetry.upstream_timed, true) {
        return;
    }
    if let Some(route) = ctx.route() {
        let seconds = at.elapsed().as_secs_f64();
        route.series.upstream_duration(&route.name).observe(seconds);
    }
    if let Some(up) = &ctx.telemetry.upstream {
        up.span().set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
}

/// The trace id this request belongs to (its span's, else the caller's), as 32 hex digits.
fn trace_id(t: &RequestTelemetry) -> Option<TraceId> {
    t.root
        .as_ref()
        .or(t.parent.as_ref())
        .map(|cx| cx.span().span_context().trace_id())
        .filter(|id| *id != TraceId::INVALID)
}

/// Audit an accepted body (the request's span exists by now when tracing is on).
pub fn audit_allowed(ctx: &RequestCtx, route: &str, judged: &mcpgate_mcp::judge::Judged) {
    let decision = Decision {
        decision: "allow",
        reason: "policy",
        route,
        principal: ctx.principal.as_deref(),
        method: judged.method.as_deref(),
        target: judged.target.as_ref(),
    };
    write_audit(&ctx.telemetry, &decision, judged.id.as_ref());
}

/// Audit a refusal, remembering what it refused for the span and the method metric.
pub fn audit_refused(ctx: &mut RequestCtx, facts: &AuditFacts) {
    ensure_root(ctx);
    ctx.telemetry.refused_method.clone_from(&facts.method);
    ctx.telemetry.refused_target.clone_from(&facts.target);
    let decision = Decision {
        decision: "deny",
        reason: facts.reason,
        route: ctx.route_name(),
        principal: ctx.principal.as_deref(),
        method: facts.method.as_deref(),
        target: facts.target.as_ref(),
    };
    write_audit(&ctx.telemetry, &decision, None);
}

fn write_audit(
    t: &RequestTelemetry,
    decision: &Decision<'_>,
    jsonrpc_id: Option<&serde_json::Value>,
) {
    let correlation = Correlation {
        request_id: Some(t.request_id),
        trace_id: trace_id(t).map(TraceId::to_bytes),
        session_hash: &t.session_hash,
        jsonrpc_id,
    };
    audit::record_with(decision, &correlation);
}

/// The ids for the access-log line: request id and trace id (empty when there is none).
pub fn log_ids(ctx: &RequestCtx) -> (String, String) {
    let trace = trace_id(&ctx.telemetry).map(|id| id.to_string());
    (ctx.telemetry.request_id(), trace.unwrap_or_default())
}

/// The end of a request: method-class and authentication counters, and its spans ended.
pub fn finish(ctx: &mut RequestCtx, http_method: &str, status: u16) {
    count(ctx, status);
    if otel::tracer().is_some() {
        ensure_root(ctx);
        end_spans(ctx, http_method, status);
    }
}

fn count(ctx: &RequestCtx, status: u16) {
    let route = ctx.route_name();
    let (method, _) = requested(ctx);
    OBS.mcp_requests
        .with_label_values(&[route, method_class(method), status_label(status)])
        .inc();
    match (
        auth_result(ctx.principal.as_deref(), ctx.auth_failure),
        ctx.route(),
    ) {
        (Some("ok"), Some(r)) => r.series.auth_ok(route).inc(),
        (Some(result), _) => OBS.auth_decisions.with_label_values(&[route, result]).inc(),
        (None, _) => {}
    }
}

/// The JSON-RPC method and target of the request: accepted (`ctx.judged`) or refused.
fn requested(ctx: &RequestCtx) -> (Option<&str>, Option<&Target>) {
    match &ctx.judged {
        Some(j) => (j.method.as_deref(), j.target.as_ref()),
        None => (
            ctx.telemetry.refused_method.as_deref(),
            ctx.telemetry.refused_target.as_ref(),
        ),
    }
}

/// `ok` for an accepted token, the refusal's reason otherwise; `None` where no token was asked.
fn auth_result(
    principal: Option<&Principal>,
    failure: Option<&'static str>,
) -> Option<&'static str> {
    match (principal, failure) {
        (Some(_), _) => Some("ok"),
        (None, Some(reason)) => Some(reason),
        (None, None) => None,
    }
}

fn end_spans(ctx: &RequestCtx, http_method: &str, status: u16) {
    let (method, target) = requested(ctx);
    let (Some(tracer), Some(root)) = (otel::tracer(), ctx.telemetry.root.as_ref()) else {
        return;
    };
    let t = &ctx.telemetry;
    let now = SystemTime::now();
    let reason = ctx.auth_failure.or(ctx.local_error);
    let decision = if t.upstream_at.is_some() {
        "allow"
    } else if reason.is_some() {
        "deny"
    } else {
        "answer"
    };
    let upstream_start = t.upstream_at.map(|(_, at)| at);
    if let Some(start) = t.auth_at {
        let end = t.policy_at.or(upstream_start).unwrap_or(now);
        let mut span = tracer
            .span_builder("mcpgate.authenticate")
            .with_start_time(start)
            .start_with_context(tracer, root);
        span.set_attribute(KeyValue::new(
            "mcpgate.auth.result",
            auth_result(ctx.principal.as_deref(), ctx.auth_failure).unwrap_or("none"),
        ));
        if let Some(p) = &ctx.principal {
            span.set_attribute(KeyValue::new("mcpgate.issuer", p.issuer_name.clone()));
            span.set_attribute(KeyValue::new("mcpgate.token_hash", p.token_hash.clone()));
        }
        span.end_with_timestamp(end);
    }
    if let Some(start) = t.policy_at {
        let mut span = tracer
            .span_builder("mcpgate.policy")
            .with_start_time(start)
            .start_with_context(tracer, root);
        span.set_attribute(KeyValue::new("mcpgate.decision", decision));
        if let Some(r) = reason.filter(|_| t.upstream_at.is_none()) {
            span.set_attribute(KeyValue::new("mcpgate.reason", r));
        }
        span.end_with_timestamp(upstream_start.unwrap_or(now));
    }
    if let Some(up) = &t.upstream {
        if let Some(addr) = ctx.upstream_addr {
            up.span()
                .set_attribute(KeyValue::new("server.address", addr.ip().to_string()));
            up.span()
                .set_attribute(KeyValue::new("server.port", i64::from(addr.port())));
        }
        up.span().end_with_timestamp(now);
    }
    let span = root.span();
    let (kind, name) = audit::target_parts(target);
    span.update_name(format!("{http_method} {}", ctx.route_name()));
    let mut attrs = vec![
        KeyValue::new("http.request.method", http_method.to_owned()),
        KeyValue::new("http.response.status_code", i64::from(status)),
        KeyValue::new("url.path", ctx.path.clone()),
        KeyValue::new("mcpgate.route", ctx.route_name().to_owned()),
        KeyValue::new("mcpgate.request_id", t.request_id()),
        KeyValue::new("mcpgate.decision", decision),
    ];
    if let Some(r) = reason {
        attrs.push(KeyValue::new("mcpgate.reason", r));
    }
    if let Some(m) = method {
        attrs.push(KeyValue::new("mcp.method.name", m.to_owned()));
    }
    if !kind.is_empty() {
        attrs.push(KeyValue::new("mcp.target.kind", kind));
        attrs.push(KeyValue::new("mcp.target.name", name.to_owned()));
        if kind == "tool" {
            attrs.push(KeyValue::new("gen_ai.tool.name", name.to_owned()));
        }
    }
    if !t.session_hash.is_empty() {
        attrs.push(KeyValue::new(
            "mcpgate.session_hash",
            t.session_hash.clone(),
        ));
    }
    span.set_attributes(attrs);
    if status >= 500 || status == 0 {
        span.set_status(Status::error(reason.unwrap_or("error")));
    }
    span.end_with_timestamp(now);
}
