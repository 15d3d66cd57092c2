//! The sample MCP server: an axum app speaking MCP Streamable HTTP
//! (2025-03-26 / 2025-06-18 / 2025-11-25) at a configurable path, and the
//! legacy HTTP+SSE transport (2024-11-05) under a configurable prefix.
//! This module owns startup, shared state and routing; the transports live in
//! `streamable` and `legacy`, JSON-RPC handling in `rpc`, the offered tools,
//! resources and prompts in `catalog`, and the test-visible counters in `stats`.

mod catalog;
mod legacy;
mod rpc;
mod stats;
mod streamable;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use stats::Stats;

use crate::sse;
use crate::util::Running;

/// How to run a [`SampleMcpServer`].
#[derive(Debug, Clone)]
pub struct McpServerOptions {
    /// Streamable HTTP endpoint path (default `/mcp`).
    pub path: String,
    /// Prefix of the legacy HTTP+SSE endpoints: `""` (default) serves
    /// `/sse` + `/messages`, `"/legacy"` serves `/legacy/sse` + `/legacy/messages`.
    pub legacy_prefix: String,
    /// Spacing of `slow_count` progress events (default 200 ms).
    pub stream_interval: Duration,
    /// Idle keepalive comment period on event streams (default 15 s).
    pub keepalive_interval: Duration,
    /// Extra generated tools `tool_0000`.. listed after the fixed ones (default 0).
    pub tool_count_extra: usize,
}

impl Default for McpServerOptions {
    fn default() -> Self {
        McpServerOptions {
            path: "/mcp".into(),
            legacy_prefix: String::new(),
            stream_interval: Duration::from_millis(200),
            keepalive_interval: Duration::from_secs(15),
            tool_count_extra: 0,
        }
    }
}

/// A running sample MCP server. Dropping it without [`SampleMcpServer::shutdown`]
/// leaves it serving until the tokio runtime ends.
pub struct SampleMcpServer {
    /// The address actually bound.
    pub addr: SocketAddr,
    /// Counters for tests.
    pub stats: Arc<Stats>,
    options: McpServerOptions,
    running: Running,
}

impl SampleMcpServer {
    /// Binds `bind` (e.g. `127.0.0.1:0`) and starts serving.
    pub async fn start(
        bind: SocketAddr,
        options: McpServerOptions,
    ) -> std::io::Result<SampleMcpServer> {
        let stats = Arc::new(Stats::default());
        let running = Running::start(bind, |_, shutdown| {
            router(Arc::new(Shared {
                options: options.clone(),
                stats: stats.clone(),
                sessions: Mutex::default(),
                legacy_sessions: Mutex::default(),
                shutdown,
            }))
        })
        .await?;
        Ok(SampleMcpServer {
            addr: running.addr,
            stats,
            options,
            running,
        })
    }

    /// The Streamable HTTP endpoint, e.g. `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.options.path)
    }

    /// The legacy HTTP+SSE endpoint, e.g. `http://127.0.0.1:PORT/sse`.
    pub fn legacy_sse_url(&self) -> String {
        format!("http://{}{}/sse", self.addr, self.options.legacy_prefix)
    }

    /// Stops the server, ending open event streams.
    pub async fn shutdown(self) {
        self.running.stop().await;
    }
}

/// State shared by every handler.
struct Shared {
    options: McpServerOptions,
    stats: Arc<Stats>,
    /// Live Streamable HTTP session ids.
    sessions: Mutex<HashSet<String>>,
    /// Live legacy sessions: id -> the session's SSE stream.
    legacy_sessions: Mutex<HashMap<String, mpsc::UnboundedSender<String>>>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn context<'a>(&'a self, headers: &'a HeaderMap) -> rpc::Context<'a> {
        rpc::Context {
            headers,
            stats: &self.stats,
            tool_count_extra: self.options.tool_count_extra,
        }
    }

    /// Event-stream settings; `guard` is dropped when the stream ends.
    fn stream_options(&self, guard: Box<dyn Send + Sync>) -> sse::StreamOptions {
        sse::StreamOptions {
            keepalive: Some(self.options.keepalive_interval),
            shutdown: self.shutdown.clone(),
            guard,
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let prefix = &shared.options.legacy_prefix;
    Router::new()
        .route(
            &shared.options.path,
            post(streamable::post)
                .get(streamable::get)
                .delete(streamable::delete),
        )
        .route(&format!("{prefix}/sse"), get(legacy::sse))
        .route(&format!("{prefix}/messages"), post(legacy::messages))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

/// Counts every request (unknown paths included) and remembers its headers.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    shared
        .stats
        .record_request(request.uri().path(), request.headers());
    next.run(request).await
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// One JSON-RPC message as an SSE `message` event.
fn message_event(id: Option<&str>, message: &Value) -> String {
    sse::event(Some("message"), id, &message.to_string())
}
