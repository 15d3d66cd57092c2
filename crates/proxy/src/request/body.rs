//! Request bodies: small ones read whole before the upstream is chosen, large or chunked ones
//! held back chunk by chunk, and either way judged before the upstream sees a byte. Every body is
//! bounded by `limits.max_request_body` before it is buffered.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mcpgate_http::budget::{BodyBudget, Caps, Reservation};
use mcpgate_http::GatewayError;
use mcpgate_mcp::judge::{judge as judge_body, Judged, Refusal};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session as HttpSession;
use pingora::{Error, ErrorType, Result};

use super::ctx::{BodyState, RequestCtx};
use super::names;
use super::phases::header_str;
use crate::metrics::METRICS;
use crate::snapshot::CompiledRoute;

/// Bodies up to this size are read in `request_filter`: pingora can replay at most 64 KiB of a
/// body read there (`BODY_BUF_LIMIT`). Larger or chunked bodies are held in `request_body_filter`.
pub const EARLY_READ_LIMIT: u64 = 64 * 1024;

/// The client waits for `100 Continue` before it sends the body.
pub fn expects_continue(req: &RequestHeader) -> bool {
    header_str(req, &names::EXPECT).is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// Tell a waiting client to send its body. The gateway reads every POST body itself (to judge
/// it), so it answers `Expect` itself and the upstream never sees it: an upstream's own `100`
/// would count as the answer's start and leave no room for the gateway's 413 or 403.
pub async fn continue_if_expected(session: &mut HttpSession) -> Result<()> {
    if expects_continue(session.req_header()) {
        let cont = ResponseHeader::build(100, Some(0))?;
        session.write_response_header(Box::new(cont), false).await?;
    }
    Ok(())
}

/// Start holding a POST body against the process-wide budget: the client connection's share and
/// the total (`limits.max_buffered_*`).
pub fn start_holding(ctx: &mut RequestCtx, budget: &Arc<BodyBudget>, client: Option<SocketAddr>) {
    let conn = client.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    ctx.held = Some(Reservation::new(budget.clone(), conn));
}

/// Account for `n` more held bytes; past the budget the request is refused with 503.
pub fn hold(ctx: &mut RequestCtx, n: u64) -> Result<()> {
    let Some(limits) = ctx.snapshot.as_ref().map(|s| s.limits) else {
        return Ok(());
    };
    let caps = Caps {
        total: limits.max_buffered_bodies,
        per_connection: limits.max_buffered_per_connection,
    };
    let Some(held) = ctx.held.as_mut() else {
        return Ok(());
    };
    let grown = held.grow(caps, n);
    show_held(held);
    match grown {
        Err(_) => Error::e_explain(ErrorType::HTTPStatus(503), "body buffer budget spent"),
        Ok(()) => Ok(()),
    }
}

fn show_held(held: &Reservation) {
    METRICS
        .buffered_body_bytes
        .set(i64::try_from(held.total_used()).unwrap_or(i64::MAX));
}

/// The body left the gateway's hands (judged and passed on, or refused).
pub fn stop_holding(ctx: &mut RequestCtx) {
    if let Some(r) = ctx.held.as_mut() {
        r.release();
        show_held(r);
    }
}

/// Read a small request body completely (pingora replays it to the upstream afterwards); its
/// declared length is held against the budget first.
pub async fn read_early(
    session: &mut HttpSession,
    ctx: &mut RequestCtx,
    declared: u64,
    limit: u64,
) -> Result<Bytes> {
    hold(ctx, declared)?;
    continue_if_expected(session).await?;
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

/// Judge a complete body for this caller and route; an accepted call is audited.
pub fn judge(
    req: &RequestHeader,
    ctx: &RequestCtx,
    route: &CompiledRoute,
    body: &[u8],
    max_body: u64,
) -> std::result::Result<Judged, Refusal> {
    let judged = judge_body(
        &route.mcp,
        ctx.principal.as_deref(),
        body,
        header_str(req, &names::MCP_METHOD),
        header_str(req, &names::MCP_NAME),
        max_body,
    )?;
    crate::telemetry::audit_allowed(ctx, &route.name, &judged);
    Ok(judged)
}

/// Count a streamed chunk against the body limit (413 past it).
pub fn count(ctx: &mut RequestCtx, chunk: Option<&Bytes>, limit: u64) -> Result<()> {
    if let Some(b) = chunk {
        ctx.body_bytes += b.len() as u64;
        if ctx.body_bytes > limit {
            ctx.local_error = Some(GatewayError::BodyTooLarge.reason());
            return Err(Error::new(ErrorType::HTTPStatus(413)));
        }
    }
    Ok(())
}

/// Hold every byte back until the whole body is judged: the upstream gets none of a refused
/// body. (`Some(empty)`, not `None`, which would end the upstream body.) At the end the body is
/// judged and released whole, or refused: the refusal is answered from `fail_to_proxy`.
pub fn hold_and_judge(
    req: &RequestHeader,
    ctx: &mut RequestCtx,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    max_body: u64,
) -> Result<()> {
    if !matches!(ctx.body, BodyState::Held(_)) {
        return Ok(());
    }
    let chunk = body.take().unwrap_or_default();
    hold(ctx, chunk.len() as u64)?;
    let BodyState::Held(held) = &mut ctx.body else {
        return Ok(());
    };
    held.extend_from_slice(&chunk);
    if !end_of_stream {
        *body = Some(Bytes::new());
        return Ok(());
    }
    let whole = std::mem::take(held).freeze();
    stop_holding(ctx);
    let snapshot = ctx.snapshot.clone();
    let Some(route) = snapshot
        .as_ref()
        .zip(ctx.route_index)
        .and_then(|(s, i)| s.routes.get(i))
    else {
        return Error::e_explain(ErrorType::InternalError, "no route selected");
    };
    match judge(req, ctx, route, &whole, max_body) {
        Ok(judged) => {
            ctx.judged = Some(judged);
            ctx.body = BodyState::Released;
            *body = Some(whole);
            Ok(())
        }
        Err(refusal) => {
            let status = if matches!(refusal, Refusal::Invalid(_)) {
                400
            } else {
                403
            };
            ctx.body = BodyState::Refused(refusal);
            Err(Error::new(ErrorType::HTTPStatus(status)))
        }
    }
}
