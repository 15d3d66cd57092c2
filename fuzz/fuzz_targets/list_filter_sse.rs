//! Fuzzes `*/list` filtering inside `text/event-stream` answers (`SseFilter`, `ListFilter::Sse`).
//!
//! Input: a byte choosing the list kind, two bytes seeding the chunking, then the stream.
//! Properties (module docs and the `every_split_point_gives_the_same_events` test): never a
//! panic; the same stream fed in any chunking gives byte-identical output (one chunk, a
//! generated chunking, byte by byte); and every event a client reads from the output that is a
//! list answer of this kind lists only items the policy allows.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mcpgate_fuzz::{allow, assert_only_allowed, chunks, client_events, list_kind};
use mcpgate_mcp::filter::ListFilter;
use mcpgate_mcp::jsonrpc::ListKind;
use serde_json::Value;

fn run(kind: ListKind, pieces: &[&[u8]]) -> Vec<u8> {
    let mut f = ListFilter::new(kind, true, Value::Null);
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&f.push(Some(Bytes::copy_from_slice(p)), false, &allow));
    }
    out.extend_from_slice(&f.push(None, true, &allow));
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let kind = list_kind(data[0]);
    let (seed, stream) = data[1..].split_at(2);
    let whole = run(kind, &[stream]);
    let generated = run(kind, &chunks(seed, stream, 16));
    assert_eq!(generated, whole, "output depends on the chunking");
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(kind, &bytewise), whole, "byte-by-byte output differs");
    for data in client_events(&whole) {
        if let Ok(v) = serde_json::from_str::<Value>(&data) {
            assert_only_allowed(kind, &v);
        }
    }
});
