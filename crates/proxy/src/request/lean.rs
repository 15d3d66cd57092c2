//! The lean path (issue 16): a POST whose small body the gateway has already read and judged is
//! sent to the upstream from `request_filter`, over pingora-core's HTTP/1 connector and its
//! connection pool, instead of through pingora-proxy's general loop — two halves joined by
//! channels, with cache, upgrade and retry machinery — that such a request never needs.
//!
//! The request and its answer pass the same steps as on the general path, in the same order
//! (`forward::toward_upstream`, `response::answer_header`, `response::transform_body`), and the
//! answer is written chunk by chunk as it arrives (an SSE answer is never buffered). Streams (GET,
//! `subscriptions/listen`) and large or chunked bodies stay on the general loop.
//! `MCPGATE_REQUEST_PATH=general` sends every request there; the e2e suite runs both ways.

use bytes::Bytes;
use futures_util::FutureExt;
use mcpgate_mcp::session::SessionBindings;
use pingora::connectors::http::v1::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::http::ResponseHeader;
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::protocols::http::HttpTask;
use pingora::proxy::Session as HttpSession;
use pingora::server::configuration::ServerConf;
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorType, Result};

use super::ctx::{BodyState, RequestCtx};
use super::{body, forward, names, response};

/// The environment variable that chooses the request path.
pub const REQUEST_PATH_VAR: &str = "MCPGATE_REQUEST_PATH";

/// The lean path's own upstream connector (and connection pool).
pub struct Lean {
    connector: Connector,
}

impl Lean {
    /// The lean path unless `MCPGATE_REQUEST_PATH` says `general`; any other value is refused.
    pub fn configured(conf: &ServerConf) -> std::result::Result<Option<Lean>, String> {
        match std::env::var(REQUEST_PATH_VAR).as_deref() {
            Err(_) | Ok("lean") => Ok(Some(Lean::new(conf))),
            Ok("general") => Ok(None),
            Ok(other) => Err(format!(
                "{REQUEST_PATH_VAR}={other:?}: expected \"lean\" (the default) or \"general\""
            )),
        }
    }

    fn new(conf: &ServerConf) -> Lean {
        Lean {
            connector: Connector::new(Some(ConnectorOptions::from_server_conf(conf))),
        }
    }

    /// Forward the request and write the upstream's answer. An error is answered by pingora's
    /// `fail_to_proxy`, as on the general path.
    pub async fn forward(
        &self,
        sessions: &SessionBindings,
        session: &mut HttpSession,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(body) = session.as_ref().get_retry_buffer() else {
            return Error::e_explain(ErrorType::InternalError, "lean path without its body");
        };
        crate::metrics::METRICS.lean_requests.inc();
        let peer = forward::choose_peer(ctx)?;
        // A failed connection carries no peer context, as on the general loop.
        let (mut upstream, _reused) =
            self.connector
                .get_http_session(&*peer)
                .await
                .map_err(|mut e| {
                    e.as_up();
                    e
                })?;
        upstream.read_timeout = peer.options.read_timeout;
        upstream.write_timeout = peer.options.write_timeout;
        let mut exchange = Exchange {
            sessions,
            session,
            ctx,
            upstream: &mut upstream,
            send_error: None,
        };
        let (reusable, result) = exchange.run(body).await;
        if reusable {
            self.connector
                .release_http_session(upstream, &*peer, peer.idle_timeout())
                .await;
        }
        result.map_err(|e| e.more_context(format!("Peer: {peer}")))
    }
}

/// Whether a request whose phases all passed may take the lean path: a small body read whole
/// (and kept by pingora for replay), not a stream, no chunked framing to re-frame.
pub fn eligible(session: &HttpSession, ctx: &RequestCtx) -> bool {
    matches!(ctx.body, BodyState::ReadEarly)
        && !ctx.streaming
        && !session
            .req_header()
            .headers
            .contains_key(&names::TRANSFER_ENCODING)
        && !session.as_ref().retry_buffer_truncated()
}

/// One request and its answer over one upstream connection.
struct Exchange<'a> {
    sessions: &'a SessionBindings,
    session: &'a mut HttpSession,
    ctx: &'a mut RequestCtx,
    upstream: &'a mut UpstreamSession,
    /// Writing the body failed: the answer may still come (the upstream may refuse early), but
    /// the connection is not reused, and this error wins if the answer does not come.
    send_error: Option<Box<Error>>,
}

impl Exchange<'_> {
    /// The bool: the upstream connection may go back to the pool.
    async fn run(&mut self, body: Bytes) -> (bool, Result<()>) {
        let sent = self.send(body).await;
        if let Err(e) = sent {
            return (e.reusable, Err(e.error));
        }
        match self.relay_answer().await {
            Ok(()) => (self.send_error.is_none(), Ok(())),
            Err(e) => (false, Err(e)),
        }
    }

    /// The request header, then the body, as the general loop sends them: the header (with the
    /// vendored pingora-core patch 2) waits to leave with the body in one write.
    async fn send(&mut self, body: Bytes) -> std::result::Result<(), SendError> {
        let limit = self
            .ctx
            .snapshot
            .as_ref()
            .map_or(u64::MAX, |s| s.limits.max_request_body);
        let prepared = body::count(self.ctx, Some(&body), limit)
            .and_then(|()| forward::upstream_request(self.session, self.ctx));
        // Nothing was written yet: the connection is still as good as it was.
        let req = prepared.map_err(SendError::before_writing)?;
        self.upstream
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| SendError::after_writing(e.into_up()))?;
        let written = match self.upstream.write_body(&body).await {
            Ok(_) => self.upstream.finish_body().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "the request body did not reach the upstream whole");
            self.send_error = Some(e.into_up());
        }
        Ok(())
    }

    /// Read the answer and write it to the client as it comes: what has already arrived is
    /// written together (a header and a small body in one write, as the general loop batches
    /// them), the rest chunk by chunk.
    async fn relay_answer(&mut self) -> Result<()> {
        loop {
            let first = self.next_task().await?;
            let mut done = first.is_end();
            let mut batch = vec![self.filter(first).await?];
            let mut deferred = None;
            while !done {
                match self.upstream.read_response_task().now_or_never() {
                    Some(Ok(task)) => {
                        done = task.is_end();
                        batch.push(self.filter(task).await?);
                    }
                    Some(Err(e)) => {
                        deferred = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            self.session.write_response_tasks(batch).await?;
            if let Some(e) = deferred {
                return Err(self.answer_failed(e));
            }
            if done {
                return Ok(());
            }
        }
    }

    /// The next piece of the answer. Meanwhile the client connection is watched, as the general
    /// loop watches it: a client that leaves ends the exchange at once, not at the read timeout.
    async fn next_task(&mut self) -> Result<HttpTask> {
        let mut watching = true;
        loop {
            tokio::select! {
                biased;
                task = self.upstream.read_response_task() => {
                    return task.map_err(|e| self.answer_failed(e));
                }
                idle = self.session.downstream_session.read_body_or_idle(true), if watching => {
                    match idle {
                        Err(e) => return Err(e.into_down()),
                        // Only an error or nothing is expected; should data come, stop watching.
                        Ok(_) => watching = false,
                    }
                }
            }
        }
    }

    /// Reading the answer failed; a failed body write, if any, is the cause to report.
    fn answer_failed(&mut self, e: Box<Error>) -> Box<Error> {
        self.send_error.take().unwrap_or(e).into_up()
    }

    /// The answer's steps, per piece, as on the general path.
    async fn filter(&mut self, task: HttpTask) -> Result<HttpTask> {
        match task {
            HttpTask::Header(mut header, end) => {
                refuse_unasked_upgrade(&header)?;
                keep_framed(self.session, &mut header, end)?;
                response::answer_header(self.sessions, self.session, &mut header, self.ctx).await?;
                Ok(HttpTask::Header(header, end))
            }
            HttpTask::Body(mut data, end) => {
                response::transform_body(self.sessions, self.ctx, &mut data, end);
                Ok(HttpTask::Body(data, end))
            }
            other => Ok(other),
        }
    }
}

/// Why sending the request failed, and whether the connection is still fit for the pool.
struct SendError {
    error: Box<Error>,
    reusable: bool,
}

impl SendError {
    fn before_writing(error: Box<Error>) -> SendError {
        SendError {
            error,
            reusable: true,
        }
    }

    fn after_writing(error: Box<Error>) -> SendError {
        SendError {
            error,
            reusable: false,
        }
    }
}

/// The gateway never asks an upstream to switch protocols (it strips `Upgrade`), so a `101` is a
/// broken answer: refused as pingora's general loop refuses it.
fn refuse_unasked_upgrade(header: &ResponseHeader) -> Result<()> {
    if header.status == http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(Error::explain(
            ErrorType::InvalidHTTPHeader,
            "upstream switched protocols for a request that asked for no upgrade",
        )
        .into_up());
    }
    Ok(())
}

/// An answer that ends by closing the connection (no length, not chunked: HTTP/1.0 style) is
/// chunked toward the client instead, so the client connection can stay open — what pingora's
/// general loop does before `response_filter`. Answers that cannot have a body are left alone.
fn keep_framed(session: &HttpSession, header: &mut ResponseHeader, end: bool) -> Result<()> {
    let bodiless = session.req_header().method == http::Method::HEAD
        || matches!(header.status.as_u16(), 204 | 304)
        || header.status.is_informational();
    let framed = header.headers.contains_key(&names::TRANSFER_ENCODING)
        || header.headers.contains_key(http::header::CONTENT_LENGTH);
    if !bodiless && !framed && !end {
        header.set_version(http::Version::HTTP_11);
        header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(())
}
