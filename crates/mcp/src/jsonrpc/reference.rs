//! The body classifier as it was before [`super::scan`]: the whole body parsed into a strict
//! `Value` by `mcpgate_json::parse`, then its members read. Kept unchanged as the oracle the
//! differential tests and the `jsonrpc_body` fuzz target hold [`super::parse_body`] to, which
//! is why it repeats the checks instead of sharing them. Not an API: built only for tests and
//! with the `fuzzing` feature.

use super::{Body, Limits, Message, MessageKind, RpcError, Target};
use super::{INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};
use mcpgate_json::JsonError;
use serde_json::{Map, Value};

/// Parse and classify a request body, the old way.
pub fn parse_body(bytes: &[u8], limits: Limits) -> Result<Body, RpcError> {
    let value = mcpgate_json::parse(bytes, limits).map_err(|e| match e {
        JsonError::DuplicateKey(k) => RpcError::new(
            INVALID_REQUEST,
            format!("duplicate key {k:?} in the request"),
            None,
        ),
        other => RpcError::new(PARSE_ERROR, format!("parse error: {other}"), None),
    })?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(RpcError::new(INVALID_REQUEST, "empty batch", None));
            }
            items
                .into_iter()
                .map(message)
                .collect::<Result<Vec<_>, _>>()
                .map(Body::Batch)
        }
        other => message(other).map(Body::Single),
    }
}

fn message(v: Value) -> Result<Message, RpcError> {
    let Value::Object(obj) = v else {
        return Err(RpcError::new(
            INVALID_REQUEST,
            "a JSON-RPC message must be an object",
            None,
        ));
    };
    let id = match obj.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id.clone()),
        Some(_) => {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "id must be a string, number or null",
                None,
            ))
        }
    };
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(RpcError::new(
            INVALID_REQUEST,
            "jsonrpc must be \"2.0\"",
            id,
        ));
    }
    let method = match obj.get("method") {
        None => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "method must be a string",
                id,
            ))
        }
    };
    let Some(method) = method else {
        if obj.contains_key("result") || obj.contains_key("error") {
            return Ok(Message {
                id,
                method: None,
                kind: MessageKind::Response,
                target: None,
            });
        }
        return Err(RpcError::new(
            INVALID_REQUEST,
            "a request needs a method",
            id,
        ));
    };
    let params = match obj.get("params") {
        None => None,
        Some(Value::Object(p)) => Some(p),
        Some(Value::Array(_)) => None,
        Some(_) => {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "params must be an object or array",
                id,
            ))
        }
    };
    let target =
        target(&method, params).map_err(|m| RpcError::new(INVALID_PARAMS, m, id.clone()))?;
    let kind = if obj.contains_key("id") {
        MessageKind::Request
    } else {
        MessageKind::Notification
    };
    Ok(Message {
        id,
        method: Some(method),
        kind,
        target,
    })
}

fn target(method: &str, params: Option<&Map<String, Value>>) -> Result<Option<Target>, String> {
    let field = |name: &str| -> Result<String, String> {
        params
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{method} needs a string params.{name}"))
    };
    Ok(match method {
        "tools/call" => Some(Target::Tool(field("name")?)),
        "resources/read" => Some(Target::Resource(field("uri")?)),
        "prompts/get" => Some(Target::Prompt(field("name")?)),
        _ => None,
    })
}
