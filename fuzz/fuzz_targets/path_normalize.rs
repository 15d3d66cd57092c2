//! Fuzzes request-path normalisation (`normalize_path`, `encode_path`) and route matching.
//!
//! Properties (module docs of `path` and `routing`): a normalised path starts with `/`, holds no
//! `.`/`..` or empty segment (a trailing slash aside) and no byte the rules refuse; re-encoding it
//! for the upstream gives a target that normalises back to the very same path, so routing here
//! and the upstream see one path; the encoding uses only `pchar`, `/` and `%XX`. A route owns
//! its exact path and what lies below it, never a sibling sharing its prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_http::path::{encode_path, normalize_path};
use mcpgate_http::routing::{upstream_path, RouteTable};

const ROUTES: [&str; 5] = ["/", "/github/mcp", "/github", "/a/b/c", "/caf\u{e9}"];

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let Ok(n) = normalize_path(&raw) else {
        return;
    };
    let p = &n.path;
    assert!(p.starts_with('/'), "{p:?}");
    let inner = p.strip_suffix('/').unwrap_or(p);
    if !inner.is_empty() {
        for seg in inner[1..].split('/') {
            assert!(!matches!(seg, "" | "." | ".."), "segment {seg:?} in {p:?}");
        }
    }
    assert!(
        !p.bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b == b';' || b == b'%'),
        "{p:?}"
    );
    if let Some(q) = &n.query {
        assert!(
            raw.ends_with(q.as_str()),
            "query is passed through as received"
        );
    }
    let wire = encode_path(p);
    assert!(wire
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'\\' | b';')));
    let again = normalize_path(&wire).expect("the encoded form of a normalised path is refused");
    assert_eq!(&again.path, p, "normalise(encode(p)) != p");
    assert_eq!(again.query, None);
    assert_eq!(encode_path(&again.path), wire);

    let table = RouteTable::new(ROUTES.iter().map(|r| (None, *r)));
    let m = table
        .find(None, p)
        .expect("the root route catches every path");
    let route = ROUTES[m.index];
    assert!(m.remainder.is_empty() || m.remainder.starts_with('/'));
    if route == "/" {
        assert!(m.remainder == p || (p == "/" && m.remainder.is_empty()));
    } else {
        let owned = p == route || p == &format!("{route}/") || p.starts_with(&format!("{route}/"));
        assert!(owned, "{route:?} matched {p:?}");
        assert_eq!(
            format!("{route}{}", m.remainder).trim_end_matches('/'),
            p.trim_end_matches('/')
        );
    }
    // The longest owning route wins.
    for (i, r) in ROUTES.iter().enumerate() {
        if r.len() > route.len() && (p == r || p.starts_with(&format!("{r}/"))) {
            panic!("route {i} ({r:?}) is longer than the chosen {route:?} for {p:?}");
        }
    }
    let up = upstream_path("/mcp", m.remainder);
    let up_again = normalize_path(&encode_path(&up)).expect("upstream path refused");
    assert_eq!(up_again.path, up, "upstream path is not normal");
});
