//! Toward the upstream: which address to connect to, with which timeouts, and the request header
//! the upstream gets (prepared by `mcpgate_http::headers::prepare_upstream`).

use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use mcpgate_http::forwarded::{forwarded, ForwardedInput};
use mcpgate_http::headers::{prepare_upstream, UpstreamHeaders};
use pingora::http::RequestHeader;
use pingora::proxy::Session as HttpSession;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

use super::ctx::{BodyState, RequestCtx};
use super::names;
use super::phases::{client_ip, header_str};

/// The peer for this request: the route's next resolved address (502 while the name has never
/// resolved), with the stream idle timeout for GET streams and the request timeout otherwise.
pub fn choose_peer(ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    let Some(route) = ctx.route() else {
        return Error::e_explain(ErrorType::InternalError, "no route selected");
    };
    let upstream = &route.upstream;
    let Some(addr) = upstream.pick_addr() else {
        return Error::e_explain(
            ErrorType::ConnectNoRoute,
            format!("upstream host {} has not resolved", upstream.host),
        );
    };
    let peer = Box::new(upstream.peer(addr, ctx.streaming));
    ctx.upstream_addr = Some(addr);
    Ok(peer)
}

/// The request the upstream gets, on either path (`upstream_request_filter`, `lean`): built from
/// the client's request (its method; the route's upstream URI; only the headers that may cross,
/// and those the gateway vouches for), with its upstream span started.
///
/// Built as plain `http` parts, not edited in pingora's case-preserving header: one header map
/// instead of two, and names the gateway sets inserted without being parsed again. The upstream
/// therefore sees header names in canonical case (`Content-Type`, and lower case for names
/// without a canonical form, `mcp-session-id`), as HTTP/2 and HTTP/3 always do and as HAProxy
/// and Envoy send HTTP/1.1; names are case-insensitive (RFC 9110 §5.1).
pub fn upstream_request(session: &HttpSession, ctx: &mut RequestCtx) -> Result<RequestHeader> {
    let mut parts = session.req_header().as_owned_parts();
    prepare_request(session, &mut parts, ctx)?;
    let mut req = RequestHeader::from(parts);
    crate::telemetry::upstream_request(ctx, &mut req);
    Ok(req)
}

/// Rewrite the URI and headers of the request the upstream gets.
fn prepare_request(session: &HttpSession, parts: &mut Parts, ctx: &RequestCtx) -> Result<()> {
    let Some(route) = ctx.route() else {
        return Error::e_explain(ErrorType::InternalError, "no route selected");
    };
    parts.uri = ctx
        .upstream_uri
        .parse()
        .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream uri"))?;
    // Whatever the client spoke, the upstream is spoken to in HTTP/1.1.
    parts.version = http::Version::HTTP_11;

    let original = session.req_header();
    let fwd = forwarded(ForwardedInput {
        peer_ip: client_ip(session),
        peer_trusted: ctx.peer_trusted,
        tls: ctx.tls,
        host: header_str(original, &names::HOST).or(original.uri.authority().map(|a| a.as_str())),
        incoming_for: header_str(original, &names::X_FORWARDED_FOR),
        incoming_proto: header_str(original, &names::X_FORWARDED_PROTO),
        incoming_host: header_str(original, &names::X_FORWARDED_HOST),
    });
    let identity = route.mcp.identity.as_ref();
    let plan = UpstreamHeaders {
        authority: &route.upstream.authority_header,
        forwarded: fwd,
        configured: &route.upstream.headers,
        strip: &route.upstream.strip_headers,
        identity_names: identity.map_or(&[], |i| &i.strip[..]),
        identity: identity
            .zip(ctx.principal.as_deref())
            .map(|(i, p)| i.values(p))
            .unwrap_or_default(),
        // The gateway reads every POST body itself and answered any `Expect` already.
        body_read: matches!(ctx.body, BodyState::ReadEarly | BodyState::Held(_)),
    };
    prepare_upstream(&mut parts.headers, plan)
        .map_err(|e| Error::explain(ErrorType::InternalError, e.to_string()))?;
    unseal_session_id(&mut parts.headers, ctx)
}

/// The upstream knows its session by its own id, never by the sealed one the client holds.
fn unseal_session_id(headers: &mut HeaderMap, ctx: &RequestCtx) -> Result<()> {
    let Some(id) = &ctx.upstream_session_id else {
        return Ok(());
    };
    let id = HeaderValue::from_str(id)
        .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream session id"))?;
    headers.insert(names::MCP_SESSION_ID, id);
    Ok(())
}
