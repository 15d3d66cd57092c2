//! Classifying one POSTed JSON-RPC body: single message or batch, request / notification /
//! response, its method and, for the methods policy cares about, its target (the tool, resource
//! or prompt). Parsed strictly (duplicate keys refused, depth and size bounded) so mcpgate and
//! the upstream can never read two different messages out of one body.

use mcpgate_json::JsonError;
use scan::{Fields, Params, Scalar, Scanned, TargetFields};
use serde_json::Value;

#[cfg(test)]
mod differential;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod reference;
mod scan;

/// Bounds on the body (the strict parser's own limits).
pub use mcpgate_json::Limits;

/// What a message acts on, for the per-target rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `tools/call` by `params.name`.
    Tool(String),
    /// `resources/read` by `params.uri` (and resource templates by `uriTemplate` in lists).
    Resource(String),
    /// `prompts/get` by `params.name`.
    Prompt(String),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Tool(n) | Target::Resource(n) | Target::Prompt(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Notification,
    Response,
}

/// One JSON-RPC message, as far as the gateway needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Option<Value>,
    pub method: Option<String>,
    pub kind: MessageKind,
    pub target: Option<Target>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Single(Message),
    Batch(Vec<Message>),
}

/// A JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub id: Option<Value>,
}

pub use mcpgate_http::codes::{HEADER_MISMATCH, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};

impl RpcError {
    fn new(code: i64, message: impl Into<String>, id: Option<Value>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            id,
        }
    }

    /// A stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self.code {
            PARSE_ERROR => "parse_error",
            INVALID_PARAMS => "invalid_params",
            HEADER_MISMATCH => "header_mismatch",
            _ => "invalid_request",
        }
    }
}

/// Parse and classify a request body.
pub fn parse_body(bytes: &[u8], limits: Limits) -> Result<Body, RpcError> {
    match scan::scan(bytes, limits).map_err(parse_failure)? {
        Scanned::Batch(messages) => {
            if messages.is_empty() {
                return Err(RpcError::new(INVALID_REQUEST, "empty batch", None));
            }
            messages
                .into_iter()
                .map(message)
                .collect::<Result<Vec<_>, _>>()
                .map(Body::Batch)
        }
        Scanned::Single(fields) => message(fields).map(Body::Single),
    }
}

/// The answer to a body the strict parser refused. No id: none was read with certainty.
fn parse_failure(e: JsonError) -> RpcError {
    match e {
        JsonError::DuplicateKey(k) => RpcError::new(
            INVALID_REQUEST,
            format!("duplicate key {k:?} in the request"),
            None,
        ),
        other => RpcError::new(PARSE_ERROR, format!("parse error: {other}"), None),
    }
}

/// Validate one message's members (`None`: it was not an object). The order of the checks
/// decides which error a message with several faults gets, and whether it carries the id.
fn message(fields: Option<Fields<'_>>) -> Result<Message, RpcError> {
    let Some(fields) = fields else {
        return Err(RpcError::new(
            INVALID_REQUEST,
            "a JSON-RPC message must be an object",
            None,
        ));
    };
    let id = match fields.id {
        None => None,
        Some(Scalar::Str(s)) => Some(Value::String(s.into_owned())),
        Some(Scalar::Number(n)) => Some(Value::Number(n)),
        Some(Scalar::Null) => Some(Value::Null),
        Some(Scalar::Other) => {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "id must be a string, number or null",
                None,
            ))
        }
    };
    if !matches!(&fields.jsonrpc, Some(Scalar::Str(v)) if v == "2.0") {
        return Err(RpcError::new(
            INVALID_REQUEST,
            "jsonrpc must be \"2.0\"",
            id,
        ));
    }
    let method = match fields.method {
        None => None,
        Some(Scalar::Str(m)) => Some(m.into_owned()),
        Some(_) => {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "method must be a string",
                id,
            ))
        }
    };
    let Some(method) = method else {
        if fields.answer {
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
    let params = match fields.params {
        None | Some(Params::Array) => None,
        Some(Params::Object(p)) => Some(p),
        Some(Params::Other) => {
            return Err(RpcError::new(
                INVALID_REQUEST,
                "params must be an object or array",
                id,
            ))
        }
    };
    let target =
        target(&method, params).map_err(|m| RpcError::new(INVALID_PARAMS, m, id.clone()))?;
    // A member "id" of any accepted type (null included) makes a request.
    let kind = if id.is_some() {
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

/// The target of `method`, from its `params` object's string member.
fn target(method: &str, params: Option<TargetFields<'_>>) -> Result<Option<Target>, String> {
    let (make, field): (fn(String) -> Target, &str) = match method {
        "tools/call" => (Target::Tool, "name"),
        "resources/read" => (Target::Resource, "uri"),
        "prompts/get" => (Target::Prompt, "name"),
        _ => return Ok(None),
    };
    params
        .and_then(|p| p.take(field))
        .map(|value| Some(make(value.into_owned())))
        .ok_or_else(|| format!("{method} needs a string params.{field}"))
}

/// MCP 2026-07-28 request headers must agree with the body (authorization uses the body).
/// Values that are not plain ASCII (or have edge spaces, or look like the sentinel) arrive as
/// `=?base64?…?=` and are compared decoded; a malformed encoding is refused like a mismatch.
pub fn check_mcp_headers(
    msg: &Message,
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
) -> Result<(), RpcError> {
    let mismatch = |what: &str| {
        RpcError::new(
            HEADER_MISMATCH,
            format!("the {what} header does not match the request body"),
            msg.id.clone(),
        )
    };
    if let Some(h) = mcp_method {
        let method = decode_header_value(h.trim()).ok_or_else(|| mismatch("Mcp-Method"))?;
        if msg.method.as_deref() != Some(method.as_ref()) {
            return Err(mismatch("Mcp-Method"));
        }
    }
    if let Some(h) = mcp_name {
        let name = decode_header_value(h.trim()).ok_or_else(|| mismatch("Mcp-Name"))?;
        if msg.target.as_ref().map(Target::name) != Some(name.as_ref()) {
            return Err(mismatch("Mcp-Name"));
        }
    }
    Ok(())
}

const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// An MCP header value as the client meant it: plain, or decoded from the 2026-07-28 sentinel
/// form `=?base64?{standard Base64 of the UTF-8 bytes}?=` (markers exact and lower-case).
/// `None` for a sentinel whose Base64 is not canonical or whose bytes are not UTF-8.
pub fn decode_header_value(value: &str) -> Option<std::borrow::Cow<'_, str>> {
    use base64::Engine;
    let Some(encoded) = value
        .strip_prefix(BASE64_PREFIX)
        .and_then(|v| v.strip_suffix(BASE64_SUFFIX))
    else {
        return Some(value.into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok().map(Into::into)
}

/// The list methods whose answers can be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

pub fn list_kind(method: &str) -> Option<ListKind> {
    match method {
        "tools/list" => Some(ListKind::Tools),
        "prompts/list" => Some(ListKind::Prompts),
        "resources/list" => Some(ListKind::Resources),
        "resources/templates/list" => Some(ListKind::ResourceTemplates),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn single(s: &str) -> Message {
        match parse_body(s.as_bytes(), Limits::default()).unwrap() {
            Body::Single(m) => m,
            Body::Batch(_) => panic!("batch"),
        }
    }
    fn err(s: &str) -> RpcError {
        parse_body(s.as_bytes(), Limits::default()).unwrap_err()
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let m = single(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#,
        );
        assert_eq!(m.kind, MessageKind::Request);
        assert_eq!(m.id, Some(json!(1)));
        assert_eq!(m.target, Some(Target::Tool("echo".into())));
        let m = single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(m.kind, MessageKind::Notification);
        assert_eq!(m.target, None);
        let m = single(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#);
        assert_eq!(m.kind, MessageKind::Response);
        assert_eq!(
            single(
                r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///x"}}"#
            )
            .target,
            Some(Target::Resource("file:///x".into()))
        );
        assert_eq!(
            single(r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}}"#)
                .target,
            Some(Target::Prompt("p".into()))
        );
    }

    #[test]
    fn escaped_spellings_classify_like_plain_ones() {
        let m = single(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\u002fcall","params":{"n\u0061me":"delete\u005feverything"}}"#,
        );
        assert_eq!(m.method.as_deref(), Some("tools/call"));
        assert_eq!(m.target, Some(Target::Tool("delete_everything".into())));
    }

    #[test]
    fn batches() {
        match parse_body(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}]"#, Limits::default()).unwrap() {
            Body::Batch(ms) => {
                assert_eq!(ms.len(), 2);
                assert_eq!(ms[1].target, Some(Target::Tool("x".into())));
            }
            Body::Single(_) => panic!(),
        }
        assert_eq!(err("[]").code, INVALID_REQUEST);
    }

    #[test]
    fn refuses_what_is_not_strict_json_rpc() {
        assert_eq!(err("{nope").code, PARSE_ERROR);
        assert_eq!(err("").code, PARSE_ERROR);
        assert_eq!(
            err(&format!("{}1{}", "[".repeat(100), "]".repeat(100))).code,
            PARSE_ERROR
        );
        let dup = err(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete"}}"#,
        );
        assert_eq!(dup.code, INVALID_REQUEST);
        assert!(dup.message.contains("name"));
        assert_eq!(
            err(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1,"method":7}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).code,
            INVALID_REQUEST
        );
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1}"#).code, INVALID_REQUEST);
        assert_eq!(err("5").code, INVALID_REQUEST);
        let e = err(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":5}}"#);
        assert_eq!((e.code, e.id), (INVALID_PARAMS, Some(json!(9))));
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call"}"#).code,
            INVALID_PARAMS
        );
        let small = Limits {
            max_depth: 64,
            max_bytes: 10,
        };
        assert_eq!(
            parse_body(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, small)
                .unwrap_err()
                .code,
            PARSE_ERROR
        );
    }

    #[test]
    fn mcp_headers_must_agree_with_the_body() {
        let m =
            single(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo"}}"#);
        assert!(check_mcp_headers(&m, None, None).is_ok());
        assert!(check_mcp_headers(&m, Some("tools/call"), Some("echo")).is_ok());
        let e = check_mcp_headers(&m, Some("tools/list"), None).unwrap_err();
        assert_eq!((e.code, e.id), (HEADER_MISMATCH, Some(json!(4))));
        assert_eq!(
            check_mcp_headers(&m, Some("tools/call"), Some("delete"))
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
        let ping = single(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#);
        assert_eq!(
            check_mcp_headers(&ping, None, Some("x")).unwrap_err().code,
            HEADER_MISMATCH
        );
        assert_eq!(check_mcp_headers(&ping, Some("ping"), None), Ok(()));
    }

    #[test]
    fn list_kinds() {
        assert_eq!(list_kind("tools/list"), Some(ListKind::Tools));
        assert_eq!(
            list_kind("resources/templates/list"),
            Some(ListKind::ResourceTemplates)
        );
        assert_eq!(list_kind("tools/call"), None);
    }

    #[test]
    fn mcp_name_in_the_base64_sentinel_form_is_compared_decoded() {
        let get =
            single(r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"résumé"}}"#);
        // "résumé" in UTF-8, standard Base64.
        assert!(
            check_mcp_headers(&get, Some("prompts/get"), Some("=?base64?csOpc3Vtw6k=?=")).is_ok()
        );
        let call = single(
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"=?base64?eA==?="}}"#,
        );
        // A name that looks like the sentinel is itself sent encoded.
        assert!(check_mcp_headers(&call, None, Some("=?base64?PT9iYXNlNjQ/ZUE9PT89?=")).is_ok());
        assert_eq!(
            check_mcp_headers(&call, None, Some("=?base64?eA==?="))
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
        for bad in [
            "=?base64?%%%?=",
            "=?base64?csOpc3Vtw6k?=",
            "=?base64?/w==?=",
        ] {
            assert_eq!(
                check_mcp_headers(&get, None, Some(bad)).unwrap_err().code,
                HEADER_MISMATCH,
                "{bad} must be refused"
            );
        }
        // Markers are exact: an upper-case one is a plain value, which does not match.
        assert!(check_mcp_headers(&get, None, Some("=?BASE64?csOpc3Vtw6k=?=")).is_err());
    }
}
