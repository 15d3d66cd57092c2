//! MCP Streamable HTTP transport: `POST` (one JSON-RPC message, answered as
//! JSON or as an event stream), `GET` (the server-to-client event stream) and
//! `DELETE` (session termination) on the configured endpoint path.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::rpc::{self, Reply};
use super::{json_response, message_event, Shared};
use crate::sse;
use crate::util::{lock, random_id};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Request header (or query parameter `stream`) asking for an event-stream
/// answer to any request, when `Accept` allows it.
const FORCE_STREAM_HEADER: &str = "x-sample-stream";

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("text/event-stream"))
    })
}

fn force_stream(query: &HashMap<String, String>, headers: &HeaderMap) -> bool {
    let truthy = |v: &str| matches!(v, "1" | "true" | "yes");
    query.get("stream").is_some_and(|v| truthy(v))
        || headers
            .get(FORCE_STREAM_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(truthy)
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
}

/// The 400 answer to an unsupported `MCP-Protocol-Version` header, if any.
fn version_rejection(headers: &HeaderMap) -> Option<Response> {
    match headers.get(VERSION_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) if rpc::SUPPORTED_VERSIONS.contains(&v) => None,
        Some(_) => Some(json_response(
            StatusCode::BAD_REQUEST,
            rpc::error(Value::Null, -32600, "unsupported MCP-Protocol-Version"),
        )),
    }
}

/// The 404 answer to an unknown `Mcp-Session-Id`, if any (no header is fine).
fn session_rejection(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    match session_id(headers) {
        Some(id) if !lock(&shared.sessions).contains(id) => Some(json_response(
            StatusCode::NOT_FOUND,
            rpc::error(Value::Null, -32001, "session not found"),
        )),
        _ => None,
    }
}

pub(super) async fn post(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = version_rejection(&headers) {
        return response;
    }
    let incoming = match rpc::parse(&body) {
        Ok(incoming) => incoming,
        Err(error) => return json_response(StatusCode::BAD_REQUEST, error),
    };
    let initialize = incoming.method() == Some("initialize");
    if !initialize {
        if let Some(response) = session_rejection(&shared, &headers) {
            return response;
        }
    }
    let event_stream = accepts_event_stream(&headers);
    let interval = shared.options.stream_interval;
    match rpc::dispatch(&shared.context(&headers), incoming) {
        Reply::Nothing => StatusCode::ACCEPTED.into_response(),
        Reply::Message(message) => {
            let succeeded = message.get("result").is_some();
            let mut response = if event_stream && force_stream(&query, &headers) {
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = tx.send(message_event(Some("1"), &message));
                sse::response(rx, shared.stream_options(Box::new(())))
            } else {
                json_response(StatusCode::OK, message)
            };
            if initialize && succeeded {
                let id = random_id(24);
                lock(&shared.sessions).insert(id.clone());
                shared.stats.record_session_created();
                let value = HeaderValue::from_str(&id).expect("base64url is a valid header value");
                response.headers_mut().insert(SESSION_HEADER, value);
            }
            response
        }
        Reply::SlowCount(job) if event_stream => {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                let mut seq = 0u64;
                let mut send = |message: Value| {
                    seq += 1;
                    tx.send(message_event(Some(&seq.to_string()), &message))
                        .is_ok()
                };
                let last = job.run(interval, &mut send).await;
                send(last);
            });
            sse::response(rx, shared.stream_options(Box::new(())))
        }
        Reply::SlowCount(job) => json_response(StatusCode::OK, job.run(interval, |_| true).await),
    }
}

pub(super) async fn get(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(response) = version_rejection(&headers) {
        return response;
    }
    if !accepts_event_stream(&headers) {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
        return response;
    }
    if let Some(response) = session_rejection(&shared, &headers) {
        return response;
    }
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let hello = json!({
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {
            "level": "info",
            "logger": "mcpgate-sample",
            "data": { "stream": "server-to-client", "lastEventId": last_event_id },
        },
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(message_event(Some("get-1"), &hello));
    // The stream holds its own sender so it stays open until the client leaves.
    sse::response(rx, shared.stream_options(Box::new(tx)))
}

pub(super) async fn delete(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(id) = session_id(&headers) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            rpc::error(Value::Null, -32600, "missing Mcp-Session-Id"),
        );
    };
    if lock(&shared.sessions).remove(id) {
        shared.stats.record_session_deleted();
        StatusCode::OK.into_response()
    } else {
        json_response(
            StatusCode::NOT_FOUND,
            rpc::error(Value::Null, -32001, "session not found"),
        )
    }
}
