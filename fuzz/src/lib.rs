//! Helpers shared by the fuzz targets: deterministic chunkings of one input (the same bytes must
//! mean the same thing however the network cuts them), a reading of an SSE stream the way a
//! client does, and the list-filtering policy the filter targets judge by.

use mcpgate_mcp::jsonrpc::{ListKind, Target};
use serde_json::Value;

/// Cut `data` into chunks whose lengths (0 included: empty reads happen) come from a small
/// xorshift generator seeded by `seed`. libFuzzer mutates the seed bytes like any others, so
/// the chunkings it explores are guided by coverage too.
pub fn chunks<'a>(seed: &[u8], data: &'a [u8], max_len: usize) -> Vec<&'a [u8]> {
    let mut state = seed.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |s, &b| {
        (s ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state % (max_len as u64 + 1)) as usize;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// The list kind named by a selector byte (the first byte of the filter targets' inputs).
pub fn list_kind(selector: u8) -> ListKind {
    match selector {
        b'T' => ListKind::Tools,
        b'P' => ListKind::Prompts,
        b'R' => ListKind::Resources,
        b'M' => ListKind::ResourceTemplates,
        b => [
            ListKind::Tools,
            ListKind::Prompts,
            ListKind::Resources,
            ListKind::ResourceTemplates,
        ][usize::from(b % 4)],
    }
}

/// The result array and naming member of a list kind (what `filter` documents).
pub fn list_shape(kind: ListKind) -> (&'static str, &'static str) {
    match kind {
        ListKind::Tools => ("tools", "name"),
        ListKind::Prompts => ("prompts", "name"),
        ListKind::Resources => ("resources", "uri"),
        ListKind::ResourceTemplates => ("resourceTemplates", "uriTemplate"),
    }
}

/// The policy of the filter targets: anything naming `delete` or `secret` is hidden.
pub fn allow(t: &Target) -> bool {
    allow_name(t.name())
}

pub fn allow_name(name: &str) -> bool {
    !name.contains("delete") && !name.contains("secret")
}

/// Assert that a list answer, as a client would read it, lists only items the policy allows,
/// each naming itself with the member the policy judged. Anything that is not a list answer of
/// `kind` is not the filter's business.
pub fn assert_only_allowed(kind: ListKind, answer: &Value) {
    let (array, field) = list_shape(kind);
    let Some(items) = answer
        .get("result")
        .and_then(|r| r.get(array))
        .and_then(Value::as_array)
    else {
        return;
    };
    for item in items {
        let name = item
            .as_object()
            .and_then(|o| o.get(field))
            .and_then(Value::as_str);
        match name {
            Some(n) => assert!(allow_name(n), "hidden item {item} passed the filter"),
            None => panic!("item without a string {field:?} member passed the filter: {item}"),
        }
    }
}

/// The events of an SSE stream as a client sees them (WHATWG HTML "event stream
/// interpretation"): bytes decoded as UTF-8 with replacement, lines ended by CRLF, LF or CR, a
/// blank line dispatches the data buffer without its final LF. Comments and other fields do not
/// matter to the filter. A last event without its blank line is never dispatched.
pub fn client_events(stream: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut events = Vec::new();
    let mut data = String::new();
    let mut has_data = false;
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    for line in lines {
        if line.is_empty() {
            if has_data {
                if data.ends_with('\n') {
                    data.pop();
                }
                events.push(std::mem::take(&mut data));
            }
            has_data = false;
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            data.push_str(value);
            data.push('\n');
            has_data = true;
        }
    }
    events
}
