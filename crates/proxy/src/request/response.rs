//! The upstream's answer on its way back: hop-by-hop headers out, SSE marked unbuffered, session
//! ids bound to their owner (or sealed for them), legacy `endpoint` events pointed at the gateway and `*/list` answers
//! filtered to what the caller may use.

use bytes::{Bytes, BytesMut};
use mcpgate_http::headers::doomed_response_headers;
use mcpgate_http::legacy_sse::EndpointMapping;
use mcpgate_http::sse::{SseEvent, SseSplitter};
use mcpgate_mcp::filter::{KindSet, ListFilter, SseFilter, Watch};
use mcpgate_mcp::jsonrpc::Target;
use mcpgate_mcp::seal::SessionSealer;
use mcpgate_mcp::session::{owner, session_key, SessionBindings, SessionOwner, SessionStore};
use pingora::http::ResponseHeader;
use pingora::proxy::Session as HttpSession;
use pingora::Result;
use serde_json::Value;

use super::ctx::{RequestCtx, ResponseTransform};
use super::names;
use super::phases::header_str;
use crate::metrics::METRICS;

/// The upstream's answer header on its way to the client, on either path (`response_filter`,
/// `lean`): timed, stripped, marked, its session kept and its list filter started.
pub async fn answer_header(
    sessions: &SessionBindings,
    session: &HttpSession,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> Result<()> {
    crate::telemetry::upstream_answered(ctx, resp.status.as_u16());
    strip_hop_by_hop(resp);
    super::limits::add_headers(resp, ctx)?;
    let is_sse = mark_sse(session, resp, ctx)?;
    keep_session(sessions, session, resp, ctx).await;
    start_list_filter(session, resp, ctx, is_sse)
}

/// Remove hop-by-hop headers, those the upstream's `Connection` lists, and the upstream's
/// `Server` (`mcpgate_http::headers::doomed_response_headers`).
fn strip_hop_by_hop(resp: &mut ResponseHeader) {
    for name in doomed_response_headers(&resp.headers) {
        resp.remove_header(&name);
    }
}

/// Mark an SSE answer so no intermediary buffers it; a legacy GET stream gets its `endpoint`
/// event rewritten. True when the answer is SSE.
fn mark_sse(
    session: &HttpSession,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> Result<bool> {
    let is_sse = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_event_stream);
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
            then: stream_filter(resp, ctx)?,
        };
    }
    Ok(true)
}

/// A `Content-Type` of `text/event-stream` (any case, parameters allowed), judged without
/// lower-casing a copy of it on every answer.
fn is_event_stream(content_type: &str) -> bool {
    const SSE: &str = "text/event-stream";
    content_type
        .trim_start()
        .get(..SSE.len())
        .is_some_and(|t| t.eq_ignore_ascii_case(SSE))
}

/// Keep who owns a session the upstream just minted: seal it into the id the client gets, or
/// bind it in the store.
async fn keep_session(
    sessions: &SessionBindings,
    session: &HttpSession,
    resp: &mut ResponseHeader,
    ctx: &RequestCtx,
) {
    match sessions {
        SessionBindings::Sealed(sealer) => seal_session(sealer, session, resp, ctx),
        SessionBindings::Stored(store) => bind_session(store.as_ref(), session, resp, ctx).await,
    }
}

/// Replace the upstream's `Mcp-Session-Id` with one sealed for the caller and route. An echo of
/// the session in use gets the id the client sent back. On an `auth: none` route there is no
/// owner to seal for, and the upstream's id passes as it is (no request there is checked either).
fn seal_session(
    sealer: &SessionSealer,
    session: &HttpSession,
    resp: &mut ResponseHeader,
    ctx: &RequestCtx,
) {
    let Some(route) = ctx.route() else { return };
    // Most answers mint no session: the owner (two strings) is made only for one that does.
    let Some(minted) = resp.headers.get(&names::MCP_SESSION_ID) else {
        return;
    };
    let Some(owner) = ctx.principal.as_deref().map(owner) else {
        return;
    };
    let sealed = match minted.to_str() {
        Ok(id) if ctx.upstream_session_id.as_deref() == Some(id) => {
            header_str(session.req_header(), &names::MCP_SESSION_ID).map(str::to_owned)
        }
        Ok(id) => sealer
            .seal(id, &route.name, &owner, std::time::SystemTime::now())
            .inspect(|_| session_started(&route.name))
            .inspect_err(|e| tracing::error!(error = %e, "cannot seal a session id"))
            .ok(),
        Err(_) => None,
    };
    // Fail closed: an id that cannot be sealed never reaches the client unsealed.
    let replaced = sealed.is_some_and(|s| resp.insert_header("mcp-session-id", s).is_ok());
    if !replaced {
        resp.remove_header("mcp-session-id");
    }
}

/// Remember who owns a session the upstream just minted; forget it when it is deleted. A store
/// that cannot answer binds nothing: the id then refuses every use (404, or 503 while the store is
/// down) and the client starts a new session.
async fn bind_session(
    sessions: &dyn SessionStore,
    session: &HttpSession,
    resp: &ResponseHeader,
    ctx: &RequestCtx,
) {
    let Some(route) = ctx.route() else { return };
    let req = session.req_header();
    if req.method == http::Method::DELETE && resp.status.is_success() {
        if let Some(sid) = header_str(req, &names::MCP_SESSION_ID) {
            let removed = sessions.remove(&session_key(&route.name, sid)).await;
            if let Err(e) = removed {
                tracing::warn!(reason = e.reason, error = %e.detail, "deleted session stays bound until it idles out");
            }
        }
        return;
    }
    let minted = resp
        .headers
        .get(&names::MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok());
    let Some(sid) = minted else { return };
    let Some(owner) = ctx.principal.as_deref().map(owner) else {
        return;
    };
    if ctx.session_bound && header_str(req, &names::MCP_SESSION_ID) == Some(sid) {
        return;
    }
    let idle = route.session_idle_timeout;
    let bound = sessions
        .bind(&session_key(&route.name, sid), owner, idle)
        .await;
    match bound {
        Ok(()) => session_started(&route.name),
        Err(e) => {
            tracing::warn!(reason = e.reason, error = %e.detail, "new session not bound; its id will be refused")
        }
    }
}

/// `mcpgate_sessions_started_total{route}`: a session the gateway sealed or bound for its caller.
fn session_started(route: &str) {
    crate::metrics::METRICS
        .sessions_started
        .with_label_values(&[route])
        .inc();
}

/// A successful answer to a filtered `*/list` request is rewritten per caller: never cached
/// by anyone else, never validated against another caller's copy.
fn start_list_filter(
    session: &HttpSession,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
    is_sse: bool,
) -> Result<()> {
    let Some(judged) = ctx.judged.as_ref() else {
        return Ok(());
    };
    let Some(kind) = judged.list else {
        return Ok(());
    };
    if !resp.status.is_success() {
        return Ok(());
    }
    let id = judged.id.clone().unwrap_or(Value::Null);
    rechunk(session, resp)?;
    private_answer(resp, is_sse)?;
    ctx.response = ResponseTransform::ListFilter(if is_encoded(resp) {
        resp.remove_header("content-encoding");
        ListFilter::Unreadable {
            id: Some(id),
            sse: is_sse,
        }
    } else {
        ListFilter::new(kind, is_sse, id)
    });
    Ok(())
}

/// A stream on a filtering route (a GET stream replaying earlier answers, the legacy `/sse`
/// stream carrying every answer) has each list result in it filtered.
fn stream_filter(resp: &mut ResponseHeader, ctx: &RequestCtx) -> Result<Option<ListFilter>> {
    let Some(route) = ctx.route() else {
        return Ok(None);
    };
    let kinds = KindSet::of(|k| route.mcp.policy.filters(k));
    if kinds.is_empty() {
        return Ok(None);
    }
    private_answer(resp, true)?;
    if is_encoded(resp) {
        resp.remove_header("content-encoding");
        return Ok(Some(ListFilter::Unreadable {
            id: Some(Value::Null),
            sse: true,
        }));
    }
    let filter = SseFilter::watching(Watch::Stream(kinds), Value::Null);
    Ok(Some(ListFilter::Sse(Box::new(filter))))
}

/// Headers of an answer filtered for one caller.
fn private_answer(resp: &mut ResponseHeader, is_sse: bool) -> Result<()> {
    resp.remove_header("etag");
    let cache = if is_sse {
        "private, no-cache"
    } else {
        "private, no-store"
    };
    resp.insert_header("cache-control", cache)?;
    resp.append_header("vary", "authorization")?;
    Ok(())
}

/// The gateway asks upstreams for identity encoding; an answer compressed anyway cannot be read.
fn is_encoded(resp: &ResponseHeader) -> bool {
    resp.headers
        .get("content-encoding")
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// Apply the answer's transform to one chunk of its body.
pub fn transform_body(
    sessions: &SessionBindings,
    ctx: &mut RequestCtx,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) {
    let route = ctx
        .snapshot
        .as_ref()
        .zip(ctx.route_index)
        .and_then(|(s, i)| s.routes.get(i));
    let caller = ctx.principal.as_deref().map(owner);
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
            then,
        } => {
            let mapping = route.map(|r| &r.endpoint_mapping);
            let seal = |endpoint: String| match (sessions, route, &caller) {
                (SessionBindings::Sealed(sealer), Some(r), Some(who)) => {
                    seal_endpoint(sealer, &endpoint, &r.name, who)
                }
                _ => endpoint,
            };
            let Some((endpoint, rest)) = take_endpoint_event(
                splitter,
                mapping,
                request_upstream_path,
                &seal,
                body,
                end_of_stream,
            ) else {
                return;
            };
            // Only the first event can be `endpoint`; the rest of the stream passes untouched,
            // or through the list filter on a filtering route.
            let rest = match then.take() {
                None => {
                    ctx.response = ResponseTransform::None;
                    rest
                }
                Some(mut filter) => {
                    let principal = ctx.principal.as_deref();
                    let allow = |t: &Target| {
                        route.is_some_and(|r| r.mcp.policy.allows_target(principal, t))
                    };
                    let filtered = filter.push(Some(rest), end_of_stream, &allow);
                    ctx.response = ResponseTransform::ListFilter(filter);
                    filtered
                }
            };
            *body = Some(match endpoint {
                Some(ev) => [ev, rest].concat().into(),
                None => rest,
            });
        }
    }
}

/// Wait for the first complete event. Then: the `endpoint` event rewritten to the gateway's path
/// (`None` when the first event is something else), and every byte after it.
fn take_endpoint_event(
    splitter: &mut SseSplitter,
    mapping: Option<&EndpointMapping>,
    request_upstream_path: &str,
    seal: &dyn Fn(String) -> String,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Option<(Option<Bytes>, Bytes)> {
    let mut events = Vec::new();
    if let Some(chunk) = body.take() {
        splitter.push(&chunk, &mut events);
    }
    if events.is_empty() && !end_of_stream {
        *body = Some(Bytes::new());
        return None;
    }
    let mut events = events.into_iter();
    let first = events.next();
    let endpoint = first
        .as_ref()
        .filter(|raw| is_endpoint_event(raw))
        .map(|raw| rewrite_endpoint_event(raw.clone(), mapping, request_upstream_path, seal));
    let mut rest = BytesMut::new();
    if endpoint.is_none() {
        rest.extend_from_slice(&first.unwrap_or_default());
    }
    for ev in events {
        rest.extend_from_slice(&ev);
    }
    if let Some(tail) = splitter.finish() {
        rest.extend_from_slice(&tail);
    }
    Some((endpoint, rest.freeze()))
}

fn is_endpoint_event(raw: &[u8]) -> bool {
    SseEvent::parse(raw).is_some_and(|ev| ev.event.as_deref() == Some("endpoint"))
}

/// A legacy endpoint whose query (the upstream's session) is sealed for the caller. Fail closed:
/// when nothing can be sealed the query is dropped, never shown as it is.
fn seal_endpoint(
    sealer: &SessionSealer,
    endpoint: &str,
    route: &str,
    who: &SessionOwner,
) -> String {
    let now = std::time::SystemTime::now();
    sealer
        .seal_endpoint(endpoint, route, who, now)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot seal a legacy session; its endpoint loses its query");
            endpoint.split('?').next().unwrap_or_default().to_owned()
        })
}

/// The body is about to change length: drop `Content-Length` and, on HTTP/1.1, frame it chunked
/// (HTTP/2 frames bodies itself). Without this an HTTP/1.1 client could not find the body's end.
fn rechunk(session: &HttpSession, resp: &mut ResponseHeader) -> Result<()> {
    resp.remove_header("content-length");
    if !session.is_http2() && resp.headers.get(&names::TRANSFER_ENCODING).is_none() {
        resp.insert_header("transfer-encoding", "chunked")?;
    }
    Ok(())
}

/// Rewrite a legacy `endpoint` event to point at the gateway; any other event is returned as is.
fn rewrite_endpoint_event(
    raw: Bytes,
    mapping: Option<&EndpointMapping>,
    request_upstream_path: &str,
    seal: &dyn Fn(String) -> String,
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
            ev.data = seal(rewritten);
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
