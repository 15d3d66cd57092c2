//! Fuzzes JSON-RPC body classification (`parse_body`) and the MCP 2026 header agreement check
//! (`check_mcp_headers`).
//!
//! Input: optional header lines (`Mcp-Method: …`, `Mcp-Name: …`) ended by a blank line, then the
//! body; without a blank line the whole input is the body. Properties: `parse_body` gives the
//! same answer (the same messages, or the same error code, message and id) as the classifier it
//! replaced (`jsonrpc::reference`, which parses a whole `Value` first) under the default limits
//! and a small depth bound; a classified body is one the strict parser accepts; each message's
//! method and target are the ones in the body (authorization judges the target, so it must be
//! what the upstream will execute); headers that pass the check agree with the body after
//! trimming and decoding the `=?base64?…?=` form, and the body's own values, sent as a
//! 2026-07-28 client sends them, always pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_mcp::jsonrpc::{
    check_mcp_headers, decode_header_value, parse_body, reference, Body, Limits, Message, Target,
};
use serde_json::Value;

fn headers(head: &[u8]) -> (Option<String>, Option<String>) {
    let (mut method, mut name) = (None, None);
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("mcp-method") {
                method = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("mcp-name") {
                name = Some(v.to_string());
            }
        }
    }
    (method, name)
}

/// The target as the body states it, read from the strictly parsed value.
fn expected_target(obj: &serde_json::Map<String, Value>) -> Option<Target> {
    let method = obj.get("method")?.as_str()?;
    let param = |k: &str| obj.get("params")?.get(k)?.as_str().map(str::to_owned);
    match method {
        "tools/call" => param("name").map(Target::Tool),
        "resources/read" => param("uri").map(Target::Resource),
        "prompts/get" => param("name").map(Target::Prompt),
        _ => None,
    }
}

fn check(msg: &Message, value: &Value, method: Option<&str>, name: Option<&str>) {
    let obj = value
        .as_object()
        .expect("a classified message is an object");
    assert_eq!(
        msg.method.as_deref(),
        obj.get("method").and_then(Value::as_str)
    );
    assert_eq!(msg.target, expected_target(obj));
    assert_eq!(
        msg.kind == mcpgate_mcp::jsonrpc::MessageKind::Request,
        msg.method.is_some() && obj.contains_key("id")
    );
    if check_mcp_headers(msg, method, name).is_ok() {
        if let Some(m) = method {
            let decoded = decode_header_value(m.trim()).expect("a passing Mcp-Method decodes");
            assert_eq!(msg.method.as_deref(), Some(decoded.as_ref()));
        }
        if let Some(n) = name {
            // 2026-07-28: a header passes when its decoded value is the body's.
            let decoded = decode_header_value(n.trim()).expect("a passing Mcp-Name decodes");
            assert_eq!(
                msg.target.as_ref().map(Target::name),
                Some(decoded.as_ref())
            );
        }
    }
    // What a conforming client sends for the body's own values always passes.
    let own_method = msg.method.as_deref().map(client_encoding);
    let own_name = msg.target.as_ref().map(|t| client_encoding(t.name()));
    assert!(check_mcp_headers(msg, own_method.as_deref(), own_name.as_deref()).is_ok());
}

/// How a 2026-07-28 client sends a name: as it is when it is plain visible ASCII without edge
/// spaces and does not look like the sentinel, otherwise `=?base64?{standard Base64}?=`.
fn client_encoding(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !value.starts_with("=?base64?");
    if plain {
        value.to_owned()
    } else {
        use base64::Engine;
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&data[..0], data),
    };
    let (method, name) = headers(head);
    let shallow = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    assert_eq!(
        parse_body(body, shallow),
        reference::parse_body(body, shallow)
    );
    let limits = Limits::default();
    let classified = parse_body(body, limits);
    assert_eq!(classified, reference::parse_body(body, limits));
    let Ok(parsed) = classified else {
        return;
    };
    let value = mcpgate_json::parse(body, limits).expect("classified but not strict JSON");
    match (parsed, value) {
        (Body::Single(m), v) => check(&m, &v, method.as_deref(), name.as_deref()),
        (Body::Batch(ms), Value::Array(vs)) => {
            assert!(!ms.is_empty());
            assert_eq!(ms.len(), vs.len());
            for (m, v) in ms.iter().zip(&vs) {
                check(m, v, method.as_deref(), name.as_deref());
            }
        }
        (Body::Batch(_), _) => panic!("a batch from a body that is not an array"),
    }
});
