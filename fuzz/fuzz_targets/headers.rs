//! Fuzzes request-header decoding and rewriting toward the upstream (`connection_listed`,
//! `strip_toward_upstream`, `prepare_upstream`, `forwarded`, `normalize_host`).
//!
//! Input: `name: value` lines, each becoming a request header when `http` accepts it.
//! Properties (module docs of `headers`): the strip decision ignores case; `Connection` tokens
//! come out trimmed, lower-case and non-empty; after `prepare_upstream` no hop-by-hop,
//! `Connection`-listed, credential, compression or client-sent identity header is left, and
//! every forwarding header is the gateway's own value, never the untrusted client's.
#![no_main]

use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcpgate_http::forwarded::{forwarded, ForwardedInput};
use mcpgate_http::headers::{
    connection_listed, prepare_upstream, strip_toward_upstream, UpstreamHeaders,
};
use mcpgate_http::routing::normalize_host;

fuzz_target!(|data: &[u8]| {
    let mut map = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if let Ok(text) = std::str::from_utf8(name) {
            let s = strip_toward_upstream(text);
            assert_eq!(
                s,
                strip_toward_upstream(&text.to_ascii_lowercase()),
                "{text:?}"
            );
            assert_eq!(
                s,
                strip_toward_upstream(&text.to_ascii_uppercase()),
                "{text:?}"
            );
        }
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    let values: Vec<&str> = map
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let listed = connection_listed(values.iter().copied());
    for t in &listed {
        assert!(
            !t.is_empty() && t.trim() == t && t.to_ascii_lowercase() == *t,
            "{t:?}"
        );
        assert!(t != "close" && t != "keep-alive");
    }

    let text = |k: &str| map.get(k).and_then(|v| v.to_str().ok());
    let host = text("host");
    if let Some(h) = host {
        let n = normalize_host(h);
        assert_eq!(n, n.to_ascii_lowercase());
        assert!(!n.ends_with('.'));
    }
    let fwd = forwarded(ForwardedInput {
        peer_ip: Some([203, 0, 113, 7].into()),
        peer_trusted: false,
        tls: true,
        host,
        incoming_for: text("x-forwarded-for"),
        incoming_proto: text("x-forwarded-proto"),
        incoming_host: text("x-forwarded-host"),
    });
    // An untrusted peer's forwarding claims are never believed.
    assert_eq!(fwd.for_chain.as_deref(), Some("203.0.113.7"));
    assert_eq!(fwd.proto, "https");
    let fwd_host = fwd.host.clone();

    let authority = HeaderValue::from_static("upstream.internal:8080");
    let who = HeaderName::from_static("x-who");
    let mut out = map.clone();
    let result = prepare_upstream(
        &mut out,
        UpstreamHeaders {
            authority: &authority,
            forwarded: fwd,
            configured: &[],
            strip: &[],
            identity_names: std::slice::from_ref(&who),
            identity: vec![(who.clone(), HeaderValue::from_static("alice"))],
            body_read: true,
        },
    );
    if result.is_err() {
        // Only a forwarded host the client sent can be unsendable; then nothing is sent.
        return;
    }
    let gateway_set = [
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-who",
    ];
    for name in out.keys() {
        let n = name.as_str();
        if gateway_set.contains(&n) {
            continue;
        }
        assert!(!strip_toward_upstream(n), "{n} reached the upstream");
        assert!(
            !listed.iter().any(|l| l == n),
            "Connection-listed {n} reached the upstream"
        );
        assert!(
            n != "accept-encoding" && n != "expect",
            "{n} reached the upstream"
        );
    }
    assert_eq!(out.get_all("host").iter().count(), 1);
    assert_eq!(out["host"], authority);
    assert_eq!(out.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(out["x-forwarded-for"], "203.0.113.7");
    assert_eq!(out["x-forwarded-proto"], "https");
    assert_eq!(out.get_all("x-who").iter().count(), 1);
    assert_eq!(out["x-who"], "alice");
    assert_eq!(
        out.get("x-forwarded-host").and_then(|v| v.to_str().ok()),
        fwd_host.as_deref()
    );
});
