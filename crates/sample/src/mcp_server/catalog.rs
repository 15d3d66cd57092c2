//! What the sample server offers: the tool, resource and prompt catalogue and
//! the behaviour of each entry. Pure functions; no transport concerns.

use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

/// A JSON-RPC error produced while serving a method.
#[derive(Debug)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError {
            code: -32602,
            message: message.into(),
        }
    }
}

/// Name of the tool whose answer is streamed as progress notifications.
pub(crate) const SLOW_COUNT: &str = "slow_count";

/// The result of calling a tool.
pub(crate) enum ToolOutcome {
    /// Finished: a text result.
    Text(String),
    /// `slow_count`: count to `n`, reporting progress along the way.
    SlowCount { n: u64 },
}

fn tool(name: &str, description: &str, schema: Value, annotations: Value) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": schema,
        "annotations": annotations,
    })
}

/// Name of the `i`th generated extra tool.
fn extra_tool_name(i: usize) -> String {
    format!("tool_{i:04}")
}

/// The `tools/list` catalogue: the fixed tools plus `extra` generated ones.
pub(crate) fn tools(extra: usize) -> Vec<Value> {
    let read_only = json!({ "readOnlyHint": true, "openWorldHint": false });
    let mut tools = vec![
        tool(
            "echo",
            "Returns its `text` argument unchanged.",
            json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            read_only.clone(),
        ),
        tool(
            "add",
            "Adds two numbers.",
            json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
            read_only.clone(),
        ),
        tool(
            SLOW_COUNT,
            "Counts to `n` (default 5), streaming one progress notification per step.",
            json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 10000}}}),
            read_only.clone(),
        ),
        tool(
            "delete_everything",
            "Pretends to delete everything (a destructive tool for policy tests; does nothing).",
            json!({"type": "object", "properties": {}}),
            json!({ "readOnlyHint": false, "destructiveHint": true, "idempotentHint": true }),
        ),
        tool(
            "create_item",
            "Pretends to create an item called `name`.",
            json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
            json!({ "readOnlyHint": false, "destructiveHint": false }),
        ),
        tool(
            "whoami",
            "Returns, as JSON text, the request headers named `authorization` or `x-mcp-*` that reached this server.",
            json!({"type": "object", "properties": {}}),
            read_only.clone(),
        ),
    ];
    tools.extend((0..extra).map(|i| {
        tool(
            &extra_tool_name(i),
            &format!("Generated tool number {i}."),
            json!({"type": "object", "properties": {"value": {"type": "string"}}}),
            read_only.clone(),
        )
    }));
    tools
}

fn string_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, RpcError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("missing string argument `{name}`")))
}

fn number_arg(args: &Map<String, Value>, name: &str) -> Result<f64, RpcError> {
    args.get(name)
        .and_then(Value::as_f64)
        .ok_or_else(|| RpcError::invalid_params(format!("missing number argument `{name}`")))
}

/// Runs tool `name` with `args`; `headers` are the incoming request's.
pub(crate) fn call_tool(
    name: &str,
    args: &Map<String, Value>,
    headers: &HeaderMap,
    extra: usize,
) -> Result<ToolOutcome, RpcError> {
    let text = match name {
        "echo" => string_arg(args, "text")?.to_owned(),
        "add" => {
            let sum = number_arg(args, "a")? + number_arg(args, "b")?;
            Value::from(sum).to_string()
        }
        SLOW_COUNT => {
            let n = match args.get("n") {
                None | Some(Value::Null) => 5,
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n <= 10_000)
                    .ok_or_else(|| RpcError::invalid_params("`n` must be an integer 0..=10000"))?,
            };
            return Ok(ToolOutcome::SlowCount { n });
        }
        "delete_everything" => "deleted everything (not really: this is the sample server)".into(),
        "create_item" => format!("created item {}", string_arg(args, "name")?),
        "whoami" => whoami(headers).to_string(),
        _ if is_extra_tool(name, extra) => format!("{name} called"),
        _ => return Err(RpcError::invalid_params(format!("unknown tool: {name}"))),
    };
    Ok(ToolOutcome::Text(text))
}

fn is_extra_tool(name: &str, extra: usize) -> bool {
    name.strip_prefix("tool_")
        .and_then(|digits| digits.parse::<usize>().ok())
        .is_some_and(|i| i < extra && extra_tool_name(i) == name)
}

/// The headers a gateway forwarded that tests care about, as a JSON object
/// (lower-case names; repeated headers are joined with `, `).
fn whoami(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let key = name.as_str();
        if key == "authorization" || key.starts_with("x-mcp-") {
            let values: Vec<String> = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            out.insert(key.to_owned(), Value::from(values.join(", ")));
        }
    }
    Value::Object(out)
}

/// A tool result carrying one text block.
pub(crate) fn text_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": false })
}

const PUBLIC_README: &str = "file:///public/readme.txt";
const SECRET_KEYS: &str = "file:///secret/keys.txt";

/// The `resources/list` result.
pub(crate) fn resources() -> Value {
    json!({ "resources": [
        { "uri": PUBLIC_README, "name": "readme.txt", "title": "Public readme", "mimeType": "text/plain" },
        { "uri": SECRET_KEYS, "name": "keys.txt", "title": "Secret keys (for policy tests)", "mimeType": "text/plain" },
    ]})
}

/// The `resources/templates/list` result.
pub(crate) fn resource_templates() -> Value {
    json!({ "resourceTemplates": [
        { "uriTemplate": "file:///public/{name}", "name": "public-file", "title": "Any public file", "mimeType": "text/plain" },
    ]})
}

/// The `resources/read` result for `uri`.
pub(crate) fn read_resource(uri: &str) -> Result<Value, RpcError> {
    let text = match uri {
        PUBLIC_README => "Welcome to the mcpgate sample server.".to_owned(),
        SECRET_KEYS => "TOP-SECRET-SAMPLE-KEY=not-a-real-secret".to_owned(),
        _ => match uri.strip_prefix("file:///public/") {
            Some(name) if !name.is_empty() && !name.contains("..") => {
                format!("Contents of public file {name}.")
            }
            _ => {
                return Err(RpcError {
                    code: -32002,
                    message: format!("resource not found: {uri}"),
                })
            }
        },
    };
    Ok(json!({ "contents": [{ "uri": uri, "mimeType": "text/plain", "text": text }] }))
}

/// The `prompts/list` result.
pub(crate) fn prompts() -> Value {
    json!({ "prompts": [{
        "name": "greeting",
        "title": "Greeting",
        "description": "Greets someone by name.",
        "arguments": [{ "name": "name", "description": "Who to greet", "required": true }],
    }]})
}

/// The `prompts/get` result for prompt `name`.
pub(crate) fn get_prompt(name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
    if name != "greeting" {
        return Err(RpcError::invalid_params(format!("unknown prompt: {name}")));
    }
    let who = string_arg(args, "name")?;
    Ok(json!({
        "description": "Greets someone by name.",
        "messages": [{ "role": "user", "content": { "type": "text", "text": format!("Hello, {who}!") } }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_tools_are_recognised_only_within_count() {
        assert!(is_extra_tool("tool_0000", 1));
        assert!(!is_extra_tool("tool_0001", 1));
        assert!(!is_extra_tool("tool_1", 5));
        assert!(is_extra_tool("tool_12345", 20000));
        assert_eq!(tools(3).len(), 9);
    }

    #[test]
    fn whoami_reports_only_interesting_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer x".parse().unwrap());
        headers.insert("x-mcp-user", "alice".parse().unwrap());
        headers.insert("x-other", "no".parse().unwrap());
        let v = whoami(&headers);
        assert_eq!(
            v,
            json!({"authorization": "Bearer x", "x-mcp-user": "alice"})
        );
    }
}
