//! Legacy MCP HTTP+SSE transport (2024-11-05): `GET {prefix}/sse` opens a
//! session stream whose first event names the message endpoint, and
//! `POST {prefix}/messages?sessionId=..` accepts a JSON-RPC message whose
//! answer is delivered on that stream.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::rpc::{self, Reply};
use super::{json_response, message_event, Shared};
use crate::sse;
use crate::util::{lock, random_id};

/// Forgets a legacy session when its event stream ends.
struct SessionGuard {
    shared: Arc<Shared>,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        lock(&self.shared.legacy_sessions).remove(&self.id);
    }
}

pub(super) async fn sse(State(shared): State<Arc<Shared>>) -> Response {
    let id = random_id(16);
    let (tx, rx) = mpsc::unbounded_channel();
    let endpoint = format!("{}/messages?sessionId={id}", shared.options.legacy_prefix);
    let _ = tx.send(sse::event(Some("endpoint"), None, &endpoint));
    lock(&shared.legacy_sessions).insert(id.clone(), tx);
    shared.stats.record_session_created();
    let guard = SessionGuard {
        shared: shared.clone(),
        id,
    };
    sse::response(rx, shared.stream_options(Box::new(guard)))
}

#[derive(Deserialize)]
pub(super) struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

pub(super) async fn messages(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<SessionQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(id) = query.session_id else {
        return json_response(
            StatusCode::BAD_REQUEST,
            rpc::error(Value::Null, -32600, "missing sessionId"),
        );
    };
    let Some(tx) = lock(&shared.legacy_sessions).get(&id).cloned() else {
        return json_response(
            StatusCode::NOT_FOUND,
            rpc::error(Value::Null, -32001, "session not found"),
        );
    };
    let incoming = match rpc::parse(&body) {
        Ok(incoming) => incoming,
        Err(error) => return json_response(StatusCode::BAD_REQUEST, error),
    };
    let send = move |message: Value| tx.send(message_event(None, &message)).is_ok();
    match rpc::dispatch(&shared.context(&headers), incoming) {
        Reply::Nothing => {}
        Reply::Message(message) => {
            send(message);
        }
        Reply::SlowCount(job) => {
            let interval = shared.options.stream_interval;
            tokio::spawn(async move {
                let last = job.run(interval, &send).await;
                send(last);
            });
        }
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
