//! The one way the gateway writes an answer itself: a [`LocalAnswer`] is recorded (access-log
//! reason, counters, audit line) and written without pingora's `respond_error`, which forces
//! `Connection: close` and adds a `Server` header.

use bytes::Bytes;
use mcpgate_mcp::answer::LocalAnswer;
use pingora::http::ResponseHeader;
use pingora::proxy::Session as HttpSession;
use pingora::Result;

use super::ctx::RequestCtx;

/// Unread request bodies up to this size are drained before a local answer so the connection
/// stays usable; larger or unknown-length bodies end the connection instead.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// Record and write a local answer, unless a final answer has already started (then only
/// record). After a `100 Continue` the final answer is still ours to write.
pub async fn write_answer(
    session: &mut HttpSession,
    ctx: &mut RequestCtx,
    answer: LocalAnswer,
) -> Result<()> {
    ctx.record(&answer);
    if session
        .response_written()
        .is_some_and(|r| !r.status.is_informational())
    {
        return Ok(());
    }
    write(session, answer).await
}

/// Write a complete answer. The connection ends afterwards when the answer asks for it, or when
/// an unread request body is too large to drain (closing with unread data makes the kernel send
/// a reset, and the client may lose our answer).
async fn write(session: &mut HttpSession, answer: LocalAnswer) -> Result<()> {
    let mut resp = ResponseHeader::build(answer.status, Some(4 + answer.headers.len()))?;
    resp.insert_header("content-type", answer.content_type)?;
    resp.insert_header("content-length", answer.body.len().to_string())?;
    resp.insert_header("cache-control", "no-store")?;
    for (name, value) in answer.headers {
        resp.append_header(name, value)?;
    }
    if answer.close || !settle_request_body(session).await {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(answer.body)), true)
        .await?;
    Ok(())
}

/// Read and discard a small unread request body. True when the body is fully consumed. A client
/// that asked `Expect: 100-continue` and was not told to continue sends no body: waiting for it
/// would hold the answer until the read timeout, so the connection ends after the answer instead.
async fn settle_request_body(session: &mut HttpSession) -> bool {
    if session.is_body_done() {
        return true;
    }
    if super::body::expects_continue(session.req_header())
        && session.response_written().is_none_or(|r| r.status != 100)
    {
        return false;
    }
    let small = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= DRAIN_LIMIT);
    small && session.drain_request_body().await.is_ok() && session.is_body_done()
}
