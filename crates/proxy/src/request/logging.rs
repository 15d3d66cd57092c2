//! The end of every request: counters and the latency histogram by route, the SSE gauge, and one
//! access-log line (path without query, token hash, never a token).

use mcpgate_http::status_label;
use pingora::proxy::Session as HttpSession;
use pingora::Error;

use super::ctx::RequestCtx;
use super::phases::client_ip;
use crate::metrics::METRICS;

pub fn finish(session: &HttpSession, e: Option<&Error>, ctx: &RequestCtx) {
    if ctx.sse_open {
        METRICS.sse_streams.dec();
    }
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let route = ctx.route_name();
    let elapsed = ctx.started.elapsed();
    // Duration first: a scrape that sees the request counted also sees its duration.
    let seconds = elapsed.as_secs_f64();
    match ctx.route() {
        Some(r) => r.series.duration(route).observe(seconds),
        None => METRICS
            .duration
            .with_label_values(&[route])
            .observe(seconds),
    }
    METRICS
        .requests
        .with_label_values(&[route, status_label(status)])
        .inc();
    if let Some(reason) = ctx.local_error {
        METRICS
            .gateway_errors
            .with_label_values(&[route, reason])
            .inc();
    }
    if ctx.snapshot.as_ref().is_some_and(|s| s.access_log) {
        access_log(session, e, ctx, status, elapsed);
    }
}

fn access_log(
    session: &HttpSession,
    e: Option<&Error>,
    ctx: &RequestCtx,
    status: u16,
    elapsed: std::time::Duration,
) {
    let req = session.req_header();
    let (request_id, trace_id) = crate::telemetry::log_ids(ctx);
    tracing::info!(
        target: "mcpgate::access",
        method = %req.method,
        path = %ctx.path,
        route = %ctx.route_name(),
        status,
        upstream = ctx.upstream_addr.map(|a| a.to_string()).unwrap_or_default(),
        // Whole microseconds, so the field reads 1.441 rather than 1.4410020000000001.
        duration_ms = elapsed.as_micros() as f64 / 1000.0,
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
        request_id,
        trace_id,
        "request"
    );
}
