//! Server-Sent Events plumbing shared by the sample MCP server: the one place
//! that formats SSE frames (`event:` / `id:` / `data:` lines and comments) and
//! the one place that turns a channel of frames into a streaming HTTP response.
//!
//! Every frame is sent to hyper as its own body chunk, so it reaches the wire
//! as soon as it is produced (tests rely on that to prove a proxy does not
//! buffer event streams).

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

/// Formats one SSE event. Multi-line `data` is split over several `data:`
/// lines, as the SSE grammar requires.
pub(crate) fn event(name: Option<&str>, id: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(name) = name {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Formats an SSE comment line (ignored by clients, used as keepalive).
pub(crate) fn comment(text: &str) -> String {
    format!(": {text}\n\n")
}

/// What keeps an event stream going besides its channel.
pub(crate) struct StreamOptions {
    /// Send `: keepalive` this often while idle (`None`: never).
    pub keepalive: Option<Duration>,
    /// The stream ends as soon as this flips to `true` (server shutdown).
    pub shutdown: watch::Receiver<bool>,
    /// Dropped when the stream ends (client gone or finished): lets the
    /// caller clean up, or keep the sending half alive for long-lived streams.
    pub guard: Box<dyn Send + Sync>,
}

struct StreamState {
    rx: mpsc::UnboundedReceiver<String>,
    keepalive: Option<tokio::time::Interval>,
    shutdown: watch::Receiver<bool>,
    _guard: Box<dyn Send + Sync>,
}

/// Builds a `200 text/event-stream` response that forwards every frame
/// received on `rx` (already formatted with [`event`] / [`comment`]) and ends
/// when all senders are dropped or the server shuts down.
pub(crate) fn response(rx: mpsc::UnboundedReceiver<String>, options: StreamOptions) -> Response {
    let keepalive = options.keepalive.map(|period| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let state = StreamState {
        rx,
        keepalive,
        shutdown: options.shutdown,
        _guard: options.guard,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        if *state.shutdown.borrow() {
            return None;
        }
        let frame = tokio::select! {
            frame = state.rx.recv() => frame?,
            _ = tick(&mut state.keepalive) => comment("keepalive"),
            _ = state.shutdown.changed() => return None,
        };
        Some((
            Ok::<Bytes, std::convert::Infallible>(Bytes::from(frame)),
            state,
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_named_event_with_id() {
        assert_eq!(
            event(Some("message"), Some("3"), "{\"a\":1}"),
            "event: message\nid: 3\ndata: {\"a\":1}\n\n"
        );
    }

    #[test]
    fn splits_multiline_data() {
        assert_eq!(event(None, None, "a\nb"), "data: a\ndata: b\n\n");
    }

    #[test]
    fn formats_comment() {
        assert_eq!(comment("keepalive"), ": keepalive\n\n");
    }
}
