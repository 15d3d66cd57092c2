//! Bounded labels for metrics and spans taken from an MCP request: the method class (a fixed
//! list, so a client cannot grow a metric family by inventing methods), and the W3C trace
//! context an MCP request may carry in `params._meta` (MCP 2026-07-28, SEP-414).

use serde::Deserialize;

/// Methods counted under their own name; anything else is `other` (or `notification`).
const KNOWN: &[&str] = &[
    "initialize",
    "ping",
    "tools/call",
    "tools/list",
    "resources/read",
    "resources/list",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/get",
    "prompts/list",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "batch",
];

/// The label for a JSON-RPC method: a known method's own name, `notification` for any
/// `notifications/*`, `other` for the rest, `none` when there was no judged body (GET, DELETE).
pub fn method_class(method: Option<&str>) -> &'static str {
    let Some(m) = method else {
        return "none";
    };
    if let Some(known) = KNOWN.iter().find(|k| **k == m) {
        return known;
    }
    if m.starts_with("notifications/") {
        "notification"
    } else {
        "other"
    }
}

/// Longest `traceparent` accepted from a body: version 00 is 55 characters; later versions may
/// append fields, but nothing legitimate comes near this.
const MAX_TRACEPARENT: usize = 256;

#[derive(Deserialize)]
struct Probe {
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(rename = "_meta")]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    traceparent: Option<serde_json::Value>,
    tracestate: Option<serde_json::Value>,
}

/// The trace context in a single JSON-RPC request's `params._meta` (`traceparent`, and
/// `tracestate` if any), as strings; `None` for batches, bodies without one, or odd values.
/// The caller parses the `traceparent` strictly (W3C Trace Context) before trusting it.
pub fn meta_trace_context(body: &[u8]) -> Option<(String, Option<String>)> {
    let probe: Probe = serde_json::from_slice(body).ok()?;
    let meta = probe.params?.meta?;
    let text = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) if s.len() <= MAX_TRACEPARENT => Some(s),
        _ => None,
    };
    let parent = text(meta.traceparent)?;
    Some((parent, text(meta.tracestate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_classes_are_bounded() {
        assert_eq!(method_class(Some("tools/call")), "tools/call");
        assert_eq!(method_class(Some("initialize")), "initialize");
        assert_eq!(
            method_class(Some("notifications/initialized")),
            "notification"
        );
        assert_eq!(method_class(Some("x/../../made-up-by-a-client")), "other");
        assert_eq!(method_class(None), "none");
    }

    #[test]
    fn trace_context_comes_from_params_meta_only() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","_meta":{{"traceparent":"{tp}","tracestate":"k=v"}}}}}}"#
        );
        assert_eq!(
            meta_trace_context(body.as_bytes()),
            Some((tp.to_owned(), Some("k=v".to_owned())))
        );
        let top = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","_meta":{{"traceparent":"{tp}"}}}}"#
        );
        assert_eq!(meta_trace_context(top.as_bytes()), None);
        let batch = format!(r#"[{{"params":{{"_meta":{{"traceparent":"{tp}"}}}}}}]"#);
        assert_eq!(meta_trace_context(batch.as_bytes()), None);
        let number = r#"{"params":{"_meta":{"traceparent":5}}}"#;
        assert_eq!(meta_trace_context(number.as_bytes()), None);
        let long = format!(
            r#"{{"params":{{"_meta":{{"traceparent":"{}"}}}}}}"#,
            "a".repeat(300)
        );
        assert_eq!(meta_trace_context(long.as_bytes()), None);
    }
}
