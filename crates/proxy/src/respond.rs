//! Answers the gateway writes itself (errors, challenges, admin pages), without pingora's
//! `respond_error`, which forces `Connection: close` and adds a `Server` header.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// Unread request bodies up to this size are drained before a local answer so the connection
/// stays usable; larger or unknown-length bodies end the connection instead.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// Write a complete local answer. `close` forces the connection to end afterwards; it also ends
/// when an unread request body is too large to drain (closing with unread data makes the kernel
/// send a reset, and the client may lose our answer).
pub async fn write_local(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
    close: bool,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(4 + headers.len()))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("cache-control", "no-store")?;
    for (name, value) in headers {
        resp.append_header(name.to_string(), value.as_str())?;
    }
    if close || !settle_request_body(session).await {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await?;
    Ok(())
}

/// Read and discard a small unread request body. True when the body is fully consumed.
async fn settle_request_body(session: &mut Session) -> bool {
    if session.is_body_done() {
        return true;
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
