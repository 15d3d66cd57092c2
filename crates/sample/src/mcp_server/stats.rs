//! Counters the sample MCP server keeps so tests can assert on what actually
//! reached the upstream (request count, per-tool calls, sessions, and the
//! headers of the most recent request).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::http::HeaderMap;

use crate::util::lock;

/// Observable counters of a [`crate::SampleMcpServer`]. All methods are cheap
/// snapshots; counters only grow.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    sessions_created: AtomicU64,
    sessions_deleted: AtomicU64,
    tool_calls: Mutex<HashMap<String, u64>>,
    last_headers: Mutex<HeaderMap>,
    last_path: Mutex<String>,
}

impl Stats {
    /// Total HTTP requests received, on every route.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// How many `tools/call` requests named `name` were received.
    pub fn tool_calls(&self, name: &str) -> u64 {
        lock(&self.tool_calls).get(name).copied().unwrap_or(0)
    }

    /// How many `tools/call` requests were received, all tools together.
    pub fn total_tool_calls(&self) -> u64 {
        lock(&self.tool_calls).values().sum()
    }

    /// The headers of the most recent HTTP request (any route; with
    /// concurrent requests, whichever arrived last).
    pub fn last_headers(&self) -> HeaderMap {
        lock(&self.last_headers).clone()
    }

    /// The path (without query) of the most recent HTTP request.
    pub fn last_path(&self) -> String {
        lock(&self.last_path).clone()
    }

    /// Sessions created: Streamable HTTP `initialize` answers that minted an
    /// `Mcp-Session-Id`, plus legacy `/sse` connections.
    pub fn sessions_created(&self) -> u64 {
        self.sessions_created.load(Ordering::SeqCst)
    }

    /// Streamable HTTP sessions terminated by a successful `DELETE`.
    pub fn sessions_deleted(&self) -> u64 {
        self.sessions_deleted.load(Ordering::SeqCst)
    }

    pub(crate) fn record_request(&self, path: &str, headers: &HeaderMap) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        *lock(&self.last_headers) = headers.clone();
        *lock(&self.last_path) = path.to_owned();
    }

    pub(crate) fn record_tool_call(&self, name: &str) {
        *lock(&self.tool_calls).entry(name.to_owned()).or_insert(0) += 1;
    }

    pub(crate) fn record_session_created(&self) {
        self.sessions_created.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn record_session_deleted(&self) {
        self.sessions_deleted.fetch_add(1, Ordering::SeqCst);
    }
}
