//! Fuzzes the legacy HTTP+SSE `endpoint` rewrite (`EndpointMapping::rewrite`).
//!
//! Input: a byte choosing one of a few route/upstream mappings, then the upstream's `endpoint`
//! event data, then (after a newline) the upstream path of the SSE request.
//! Properties (module docs): a rewritten endpoint is a request target the gateway accepts, under
//! this route; and when the upstream named an absolute path (or a URL on its own origin), the
//! gateway forwards a POST to that endpoint to exactly that upstream path, with its query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_http::legacy_sse::EndpointMapping;
use mcpgate_http::path::{encode_path, normalize_path};
use mcpgate_http::routing::{upstream_path, RouteTable};

const MAPPINGS: [(&str, &str); 4] = [
    ("/legacy", "/"),
    ("/github/mcp", "/mcp"),
    ("/", "/"),
    ("/g", "/mcp/v1/"),
];
const ORIGIN: &str = "http://127.0.0.1:3001";

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (event_data, sse_path) = text.split_once('\n').unwrap_or((text, "/mcp/sse"));
    let (route, base) = MAPPINGS[usize::from(sel) % MAPPINGS.len()];
    let mapping = EndpointMapping {
        route_path: route.into(),
        upstream_base: base.into(),
        upstream_origin: ORIGIN.into(),
    };
    let Some(out) = mapping.rewrite(event_data, sse_path) else {
        return;
    };
    // What the gateway does with the client's POST to `out`.
    let got = normalize_path(&out).unwrap_or_else(|e| {
        panic!("rewrote {event_data:?} to {out:?}, which the gateway refuses: {e}")
    });
    let table = RouteTable::new([(None, route)]);
    let m = table
        .find(None, &got.path)
        .unwrap_or_else(|| panic!("{out:?} is not under the route {route:?}"));
    let forwarded = normalize_path(&encode_path(&upstream_path(base, m.remainder)))
        .expect("upstream path")
        .path;
    // What the upstream announced, when it is an absolute reference.
    let d = event_data.trim();
    let announced = match d.strip_prefix(ORIGIN) {
        Some(r) if r.starts_with('/') || r.is_empty() => Some(r),
        _ if d.starts_with('/') && !d.starts_with("//") => Some(d),
        _ => None,
    };
    if let Some(a) = announced {
        let (path, query) = match a.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (a, None),
        };
        let want = normalize_path(if path.is_empty() { "/" } else { path })
            .expect("announced path")
            .path;
        // The route's own path with or without a trailing slash is the route's endpoint
        // (`routing` docs), so an endpoint at the upstream base plus `/` reaches the base.
        let (forwarded, want) = if m.remainder.is_empty() {
            (forwarded.trim_end_matches('/'), want.trim_end_matches('/'))
        } else {
            (forwarded.as_str(), want.as_str())
        };
        assert_eq!(
            forwarded, want,
            "{event_data:?} -> {out:?} reaches another upstream path"
        );
        assert_eq!(
            got.query.as_deref(),
            query,
            "{event_data:?} -> {out:?} changes the query"
        );
    }
});
