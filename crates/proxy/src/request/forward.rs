//! Toward the upstream: which address to connect to, with which timeouts, and the request header
//! the upstream gets (prepared by `mcpgate_http::headers::prepare_upstream`).

use http::{HeaderMap, HeaderName, HeaderValue};
use mcpgate_http::forwarded::{forwarded, ForwardedInput};
use mcpgate_http::headers::{prepare_upstream, HeaderEdit, InvalidHeader, UpstreamHeaders};
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

/// The request the upstream gets, on either path (`upstream_request_filter`, `lean`): rewritten,
/// and its upstream span started.
pub fn toward_upstream(
    session: &HttpSession,
    upstream_request: &mut RequestHeader,
    ctx: &mut RequestCtx,
) -> Result<()> {
    prepare_request(session, upstream_request, ctx)?;
    crate::telemetry::upstream_request(ctx, upstream_request);
    Ok(())
}

/// Rewrite the URI and headers of the request the upstream gets.
fn prepare_request(
    session: &HttpSession,
    upstream_request: &mut RequestHeader,
    ctx: &RequestCtx,
) -> Result<()> {
    let Some(route) = ctx.route() else {
        return Error::e_explain(ErrorType::InternalError, "no route selected");
    };
    let uri: http::Uri = ctx
        .upstream_uri
        .parse()
        .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream uri"))?;
    upstream_request.set_uri(uri);

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
    prepare_upstream(&mut EditRequest(upstream_request), plan)
        .map_err(|e| Error::explain(ErrorType::InternalError, e.to_string()))?;
    unseal_session_id(upstream_request, ctx)
}

/// The upstream knows its session by its own id, never by the sealed one the client holds.
fn unseal_session_id(upstream_request: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
    let Some(id) = &ctx.upstream_session_id else {
        return Ok(());
    };
    upstream_request
        .insert_header("mcp-session-id", id.as_str())
        .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream session id"))
}

/// pingora's request header, edited through its own methods so its case-preserving name map
/// stays in step with the header map.
struct EditRequest<'a>(&'a mut RequestHeader);

impl HeaderEdit for EditRequest<'_> {
    fn map(&self) -> &HeaderMap {
        &self.0.headers
    }

    fn remove(&mut self, name: &HeaderName) {
        self.0.remove_header(name);
    }

    fn set_static(&mut self, name: &'static str, value: HeaderValue) -> Result<(), InvalidHeader> {
        self.0
            .insert_header(name, value)
            .map_err(|_| InvalidHeader(name.to_owned()))
    }

    fn set(&mut self, name: &HeaderName, value: HeaderValue) -> Result<(), InvalidHeader> {
        self.0
            .insert_header(name, value)
            .map_err(|_| InvalidHeader(name.to_string()))
    }
}
