//! Answers the gateway writes itself (errors, challenges, admin pages), without pingora's
//! `respond_error`, which forces `Connection: close` and adds a `Server` header.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// Write a complete local answer. `close` ends the connection afterwards (used when the request
/// body was not read, so the connection cannot be reused safely).
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
    if close {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await?;
    Ok(())
}
