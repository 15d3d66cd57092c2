//! The upstream's answer on its way back: hop-by-hop headers out, SSE marked unbuffered, session
//! ids bound to their owner, legacy `endpoint` events pointed at the gateway and `*/list` answers
//! filtered to what the caller may use.

use bytes::{Bytes, BytesMut};
use mcpgate_http::headers::{connection_listed, HOP_BY_HOP};
use mcpgate_http::legacy_sse::EndpointMapping;
use mcpgate_http::sse::{SseEvent, SseSplitter};
use mcpgate_mcp::filter::ListFilter;
use mcpgate_mcp::jsonrpc::Target;
use mcpgate_mcp::session::{owner, session_key, SessionStore};
use pingora::http::ResponseHeader;
use pingora::proxy::Session as HttpSession;
use pingora::Result;

use super::ctx::{RequestCtx, ResponseTransform};
use super::phases::header_str;
use crate::metrics::METRICS;

/// Remove hop-by-hop headers and those the upstream's `Connection` lists.
pub fn strip_hop_by_hop(resp: &mut ResponseHeader) {
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
}

/// Mark an SSE answer so no intermediary buffers it; a legacy GET stream gets its `endpoint`
/// event rewritten. True when the answer is SSE.
pub fn mark_sse(
    session: &HttpSession,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> Result<bool> {
    let is_sse = resp
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        });
    if !is_sse {
        return Ok(false);
    }
    ctx.sse_open = true;
    METRICS.sse_streams.inc();
    resp.insert_header("x-accel-buffering", "no")?;
    resp.insert_header("cache-control", "no-cache")?;
    if session.req_header().method == http::Method::GET {
        rechunk(session, resp)?;
        let path = ctx.upstream_uri.split('?').next().unwrap_or_default();
        ctx.response = ResponseTransform::EndpointRewrite {
            splitter: SseSplitter::new(),
            request_upstream_path: path.to_string(),
        };
    }
    Ok(true)
}

/// Remember who owns a session the upstream just minted; forget it when it is deleted.
pub async fn bind_session(
    sessions: &dyn SessionStore,
    session: &HttpSession,
    resp: &ResponseHeader,
    ctx: &RequestCtx,
) {
    let Some(route) = ctx.route() else { return };
    let req = session.req_header();
    if req.method == http::Method::DELETE && resp.status.is_success() {
        if let Some(sid) = header_str(req, "mcp-session-id") {
            sessions.remove(&session_key(&route.name, sid)).await;
        }
        return;
    }
    let minted = resp
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok());
    let (Some(sid), Some(owner)) = (minted, ctx.principal.as_deref().and_then(owner)) else {
        return;
    };
    if ctx.session_bound && header_str(req, "mcp-session-id") == Some(sid) {
        return;
    }
    sessions.bind(&session_key(&route.name, sid), owner).await;
}

/// A successful answer to a filtered `*/list` request is rewritten per caller: never cached
/// by anyone else, never validated against another caller's copy.
pub fn start_list_filter(
    session: &HttpSession,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
    is_sse: bool,
) -> Result<()> {
    let Some(kind) = ctx.judged.as_ref().and_then(|j| j.list) else {
        return Ok(());
    };
    if !resp.status.is_success() {
        return Ok(());
    }
    rechunk(session, resp)?;
    resp.remove_header("etag");
    let cache = if is_sse {
        "private, no-cache"
    } else {
        "private, no-store"
    };
    resp.insert_header("cache-control", cache)?;
    resp.append_header("vary", "authorization")?;
    ctx.response = ResponseTransform::ListFilter(ListFilter::new(kind, is_sse));
    Ok(())
}

/// Apply the answer's transform to one chunk of its body.
pub fn transform_body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end_of_stream: bool) {
    let route = ctx
        .snapshot
        .as_ref()
        .zip(ctx.route_index)
        .and_then(|(s, i)| s.routes.get(i));
    match &mut ctx.response {
        ResponseTransform::None => {}
        ResponseTransform::ListFilter(filter) => {
            let principal = ctx.principal.as_deref();
            let allow =
                |t: &Target| route.is_some_and(|r| r.mcp.policy.allows_target(principal, t));
            *body = Some(filter.push(body.take(), end_of_stream, &allow));
        }
        ResponseTransform::EndpointRewrite {
            splitter,
            request_upstream_path,
        } => {
            let mapping = route.map(|r| &r.endpoint_mapping);
            let done = rewrite_first_event(
                splitter,
                mapping,
                request_upstream_path,
                body,
                end_of_stream,
            );
            if done {
                // Only the first event can be `endpoint`; the rest of the stream passes untouched.
                ctx.response = ResponseTransform::None;
            }
        }
    }
}

/// Wait for the first complete event, rewrite it if it is `endpoint`, pass everything else.
/// True once the first event has been handled.
fn rewrite_first_event(
    splitter: &mut SseSplitter,
    mapping: Option<&EndpointMapping>,
    request_upstream_path: &str,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> bool {
    let mut events = Vec::new();
    if let Some(chunk) = body.take() {
        splitter.push(&chunk, &mut events);
    }
    if events.is_empty() && !end_of_stream {
        *body = Some(Bytes::new());
        return false;
    }
    let mut out = BytesMut::new();
    let mut events = events.into_iter();
    if let Some(first) = events.next() {
        out.extend_from_slice(&rewrite_endpoint_event(
            first,
            mapping,
            request_upstream_path,
        ));
    }
    for ev in events {
        out.extend_from_slice(&ev);
    }
    if let Some(rest) = splitter.finish() {
        out.extend_from_slice(&rest);
    }
    *body = Some(out.freeze());
    true
}

/// The body is about to change length: drop `Content-Length` and, on HTTP/1.1, frame it chunked
/// (HTTP/2 frames bodies itself). Without this an HTTP/1.1 client could not find the body's end.
fn rechunk(session: &HttpSession, resp: &mut ResponseHeader) -> Result<()> {
    resp.remove_header("content-length");
    if !session.is_http2() && resp.headers.get("transfer-encoding").is_none() {
        resp.insert_header("transfer-encoding", "chunked")?;
    }
    Ok(())
}

/// Rewrite a legacy `endpoint` event to point at the gateway; any other event is returned as is.
fn rewrite_endpoint_event(
    raw: Bytes,
    mapping: Option<&EndpointMapping>,
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
