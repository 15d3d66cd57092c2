//! JSON-RPC 2.0 handling, independent of the transport: parsing one incoming
//! message, dispatching MCP methods to the catalogue, and producing the
//! answer (immediate, or the streamed `slow_count` sequence).

use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

use super::catalog::{self, RpcError, ToolOutcome};
use super::stats::Stats;

/// Protocol revisions this server negotiates (newest last).
pub(crate) const SUPPORTED_VERSIONS: &[&str] =
    &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Offered when the client asks for a revision we do not know.
pub(crate) const LATEST_VERSION: &str = "2025-11-25";

/// One parsed JSON-RPC message from the client.
pub(crate) enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
    },
    /// The client answering a server-to-client request: nothing to do.
    Response,
}

impl Incoming {
    pub fn method(&self) -> Option<&str> {
        match self {
            Incoming::Request { method, .. } | Incoming::Notification { method } => Some(method),
            Incoming::Response => None,
        }
    }
}

/// Parses a single JSON-RPC message. On failure, returns the JSON-RPC error
/// response to send back (with HTTP 400).
pub(crate) fn parse(body: &[u8]) -> Result<Incoming, Value> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| error(Value::Null, -32700, format!("parse error: {e}")))?;
    let invalid = |why: &str| error(Value::Null, -32600, format!("invalid request: {why}"));
    let Value::Object(msg) = value else {
        return Err(invalid(
            "expected one JSON-RPC message object (batches are not supported)",
        ));
    };
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("`jsonrpc` must be \"2.0\""));
    }
    let method = msg.get("method").and_then(Value::as_str).map(str::to_owned);
    match (method, msg.get("id")) {
        (Some(method), Some(id @ (Value::String(_) | Value::Number(_)))) => Ok(Incoming::Request {
            id: id.clone(),
            method,
            params: msg.get("params").cloned().unwrap_or_else(|| json!({})),
        }),
        (Some(_), Some(_)) => Err(invalid("`id` must be a string or a number")),
        (Some(method), None) => Ok(Incoming::Notification { method }),
        (None, Some(_)) if msg.contains_key("result") || msg.contains_key("error") => {
            Ok(Incoming::Response)
        }
        (None, _) => Err(invalid("missing `method`")),
    }
}

/// A JSON-RPC success response.
pub(crate) fn success(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A JSON-RPC error response.
pub(crate) fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message.into() } })
}

/// What to send back for one incoming message.
pub(crate) enum Reply {
    /// Notification or client response: acknowledge with 202, no body.
    Nothing,
    /// One JSON-RPC response.
    Message(Value),
    /// A `slow_count` call: progress notifications, then the response.
    SlowCount(SlowCount),
}

/// A pending `slow_count` tool call.
pub(crate) struct SlowCount {
    id: Value,
    progress_token: Value,
    n: u64,
}

impl SlowCount {
    /// Emits `n` `notifications/progress` messages `interval` apart through
    /// `emit` (stopping early if it returns `false`: the client went away),
    /// then returns the final JSON-RPC response.
    pub async fn run(self, interval: Duration, mut emit: impl FnMut(Value) -> bool) -> Value {
        for i in 1..=self.n {
            let note = json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": { "progressToken": self.progress_token, "progress": i, "total": self.n },
            });
            if !emit(note) {
                break;
            }
            tokio::time::sleep(interval).await;
        }
        success(
            &self.id,
            catalog::text_result(format!("counted to {}", self.n)),
        )
    }
}

/// What a method handler may look at besides the message itself.
pub(crate) struct Context<'a> {
    pub headers: &'a HeaderMap,
    pub stats: &'a Stats,
    pub tool_count_extra: usize,
}

/// Serves one message.
pub(crate) fn dispatch(ctx: &Context<'_>, incoming: Incoming) -> Reply {
    let Incoming::Request { id, method, params } = incoming else {
        return Reply::Nothing;
    };
    let empty = Map::new();
    let object = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
    };
    let string = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params(format!("missing `{name}`")))
    };
    let result = match method.as_str() {
        "initialize" => Ok(initialize_result(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({ "tools": catalog::tools(ctx.tool_count_extra) })),
        "tools/call" => {
            let outcome = string("name").and_then(|name| {
                ctx.stats.record_tool_call(name);
                catalog::call_tool(name, object("arguments"), ctx.headers, ctx.tool_count_extra)
            });
            match outcome {
                Ok(ToolOutcome::Text(text)) => Ok(catalog::text_result(text)),
                Ok(ToolOutcome::SlowCount { n }) => {
                    let progress_token = object("_meta")
                        .get("progressToken")
                        .cloned()
                        .unwrap_or_else(|| id.clone());
                    return Reply::SlowCount(SlowCount {
                        id,
                        progress_token,
                        n,
                    });
                }
                Err(e) => Err(e),
            }
        }
        "resources/list" => Ok(catalog::resources()),
        "resources/templates/list" => Ok(catalog::resource_templates()),
        "resources/read" => string("uri").and_then(catalog::read_resource),
        "prompts/list" => Ok(catalog::prompts()),
        "prompts/get" => {
            string("name").and_then(|name| catalog::get_prompt(name, object("arguments")))
        }
        _ => Err(RpcError {
            code: -32601,
            message: format!("method not found: {method}"),
        }),
    };
    Reply::Message(match result {
        Ok(value) => success(&id, value),
        Err(e) => error(id, e.code, e.message),
    })
}

fn initialize_result(params: &Value) -> Value {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let version = requested
        .filter(|v| SUPPORTED_VERSIONS.contains(v))
        .unwrap_or(LATEST_VERSION);
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": { "listChanged": false },
            "resources": { "subscribe": false, "listChanged": false },
            "prompts": { "listChanged": false },
        },
        "serverInfo": { "name": "mcpgate-sample", "version": env!("CARGO_PKG_VERSION") },
        "instructions": "Sample MCP server embedded in mcpgate, for demos and tests.",
    })
}
