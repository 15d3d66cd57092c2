//! Behaviour of `parse_str` / `load_file`: the valid model, defaults, and every error with its
//! key path.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mcpgate_config::*;

const UPSTREAM_SECRET: &str = "upstream-s3cr3t-value";
const INTROSPECT_SECRET: &str = "introspect-s3cr3t-value";

fn env(name: &str) -> Option<String> {
    match name {
        "UPSTREAM_KEY" => Some(UPSTREAM_SECRET.into()),
        "INTROSPECT_SECRET" => Some(INTROSPECT_SECRET.into()),
        "UPSTREAM_URL" => Some("http://10.1.2.3:9000/mcp".into()),
        _ => None,
    }
}

fn parse(yaml: &str) -> Result<Config, ConfigErrors> {
    parse_str(yaml, Path::new("/nonexistent-base-dir"), &env)
}

fn errors(yaml: &str) -> Vec<ConfigError> {
    match parse(yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => e.0,
    }
}

/// Asserts that some error has exactly `path` and a message containing `fragment`.
#[track_caller]
fn assert_error(errs: &[ConfigError], path: &str, fragment: &str) {
    assert!(
        errs.iter()
            .any(|e| e.path == path && e.message.contains(fragment)),
        "no error at {path:?} containing {fragment:?}; got:\n{}",
        ConfigErrors(errs.to_vec())
    );
}

/// A valid document with one route; `extra` is appended at top level, `route` into the route.
fn doc(route: &str, extra: &str) -> String {
    format!(
        "public_url: https://mcp.example.com\n\
         listeners:\n  - bind: 127.0.0.1:8080\n\
         routes:\n  - name: r\n    path: /r\n    upstream:\n      url: http://127.0.0.1:3001/mcp\n{route}\n\
         {extra}\n"
    )
}

fn route_with_auth_none(extra_route: &str) -> String {
    doc(&format!("    auth: none\n{extra_route}"), "")
}

/// An issuer-based route plus an `issuers:` section with the given issuer body.
fn with_issuer(issuer_body: &str) -> String {
    doc(
        "    auth: { issuers: [corp] }",
        &format!("issuers:\n  - name: corp\n    issuer: https://login.example.com\n{issuer_body}"),
    )
}

#[test]
fn minimal_document_gets_defaults() {
    let config = parse(&route_with_auth_none("")).unwrap();
    assert_eq!(config.public_url.as_str(), "https://mcp.example.com/");
    assert_eq!(config.listeners.len(), 1);
    let l = &config.listeners[0];
    assert_eq!(l.bind, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
    assert!(l.tls.is_none());
    assert!(!l.h2c);
    assert!(l.trusted_proxies.is_empty());
    assert!(config.admin.is_none());
    assert!(config.issuers.is_empty());
    let r = &config.routes[0];
    assert_eq!(
        (r.name.as_str(), r.path.as_str(), r.host.as_deref()),
        ("r", "/r", None)
    );
    assert!(matches!(r.auth, RouteAuth::None));
    assert_eq!(r.upstream.url.as_str(), "http://127.0.0.1:3001/mcp");
    assert_eq!(r.upstream.timeouts, UpstreamTimeouts::default());
    assert!(r.upstream.tls.ca_file.is_none() && r.upstream.tls.client_cert.is_none());
    assert!(r.upstream.headers.is_empty());
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.logging, Logging::default());
    assert_eq!(config.shutdown, Shutdown::default());
}

#[test]
fn issuer_defaults() {
    let config = parse(&with_issuer("    discovery: true\n")).unwrap();
    let i = &config.issuers[0];
    assert_eq!(i.jwks, Some(JwksSource::Discovery));
    assert_eq!(i.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(i.leeway, Duration::from_secs(30));
    assert_eq!(i.required_claims, vec!["exp".to_string()]);
    assert!(i.audiences.is_empty());
    assert!(!i.require_at_jwt);
    assert_eq!(i.claims, ClaimNames::default());
    assert_eq!(i.jwks_refresh, JwksRefresh::default());
    assert!(i.introspection.is_none());
    let RouteAuth::Required(auth) = &config.routes[0].auth else {
        panic!("expected auth")
    };
    assert_eq!(auth.issuers, vec!["corp".to_string()]);
    assert_eq!(auth.resource.as_str(), "https://mcp.example.com/r");
}

#[test]
fn public_url_is_normalised_and_checked() {
    let yaml = route_with_auth_none("")
        .replace("https://mcp.example.com", "HTTPS://MCP.Example.COM:8443/");
    let config = parse(&yaml).unwrap();
    assert_eq!(config.public_url.as_str(), "https://mcp.example.com:8443/");
    for (bad, why) in [
        ("ftp://x.example", "scheme must be http or https"),
        ("https://x.example/?a=1", "query"),
        ("https://x.example/#f", "fragment"),
        ("https://x.example/base", "must not have a path"),
        ("x.example", "invalid URL"),
    ] {
        let yaml = route_with_auth_none("").replace("https://mcp.example.com", bad);
        assert_error(&errors(&yaml), "public_url", why);
    }
}

#[test]
fn missing_required_keys_are_all_reported() {
    let errs = errors("logging: { level: debug }\n");
    for path in ["public_url", "listeners", "routes"] {
        assert_error(&errs, path, "missing required key");
    }
    let errs = errors("public_url: https://x.example\nlisteners: []\nroutes:\n  - {}\n");
    assert_error(&errs, "listeners", "at least one");
    for path in ["routes[0].name", "routes[0].path", "routes[0].upstream"] {
        assert_error(&errs, path, "missing required key");
    }
    assert_error(&errs, "routes[0].auth", "missing; set `auth: none`");
}

#[test]
fn empty_and_non_mapping_documents() {
    for (yaml, fragment) in [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("just a string\n", "must be a mapping"),
        ("a: [unclosed\n", "invalid YAML"),
    ] {
        let errs = errors(yaml);
        assert_eq!(errs.len(), 1, "{yaml:?}");
        assert_eq!(errs[0].path, "");
        assert!(errs[0].message.contains(fragment), "{yaml:?}: {}", errs[0]);
    }
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let yaml = doc("    auth: none\n    extra: 1", "").replace(" url:", " urll:");
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "routes[0].upstream.urll");
    assert!(
        errs[0].message.contains("unknown field `urll`"),
        "{}",
        errs[0]
    );
    let text = errs[0].to_string();
    assert!(
        text.starts_with("routes[0].upstream.urll: unknown field"),
        "{text}"
    );

    let errs = errors(&doc("    auth: none", "limits: { max_body: 1 }"));
    assert_eq!(errs[0].path, "limits.max_body");
    let errs = errors(&doc("    auth: { issuers: [a], audience: x }", ""));
    assert_eq!(errs[0].path, "routes[0].auth.audience");
}

#[test]
fn wrong_types_name_their_path() {
    let errs = errors(&doc("    auth: none", "logging: { access_log: maybe }"));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "logging.access_log");
    let errs = errors(&doc("    auth: [none]", ""));
    assert_eq!(errs[0].path, "routes[0].auth");
    assert!(
        errs[0].message.contains("`none` or a mapping"),
        "{}",
        errs[0]
    );
    let errs = errors("public_url: https://x.example\nlisteners: { bind: x }\n");
    assert_eq!(errs[0].path, "listeners");
    let errs = errors("public_url: https://x.example\nroutes: [{ name: a, name: b }]\n");
    assert_eq!(errs[0].path, "routes[0]");
    assert!(errs[0].message.contains("duplicate entry"), "{}", errs[0]);
}

#[test]
fn auth_must_be_none_or_issuers() {
    assert!(parse(&doc("    auth: none", "")).is_ok());
    let errs = errors(&doc("", ""));
    assert_eq!(
        errs[0].to_string(),
        "routes[0].auth: missing; set `auth: none` to serve this route without authentication, \
         or list issuers"
    );
    assert_error(
        &errors(&doc("    auth: off", "")),
        "routes[0].auth",
        "invalid value \"off\"",
    );
    assert_error(
        &errors(&doc("    auth: { issuers: [] }", "")),
        "routes[0].auth.issuers",
        "at least one",
    );
}

#[test]
fn several_semantic_errors_are_all_reported() {
    let yaml = "\
public_url: https://mcp.example.com
listeners:
  - bind: x
  - bind: 0.0.0.0:8443
    trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]
routes:
  - name: a
    path: /a
    upstream: { url: http://127.0.0.1:1/mcp }
    auth: { issuers: [corp, foo] }
  - name: b
    path: /b/../c
    upstream:
      url: htp:/x
      timeouts: { request: 5 parsecs }
    auth: none
  - name: a
    path: /a/
    upstream: { url: http://127.0.0.1:1/mcp }
    auth: none
issuers:
  - name: corp
    issuer: https://login.example.com
    discovery: true
    algorithms: [RS256, none, HS256, XY999]
    leeway: 10m
limits: { max_request_body: 4 MegaBytes }
logging: { format: xml }
";
    let errs = errors(yaml);
    let expected = [
        ("listeners[0].bind", "invalid socket address \"x\""),
        (
            "listeners[1].trusted_proxies[1]",
            "prefix length must be 0..=32",
        ),
        (
            "routes[1].path",
            "invalid path \"/b/../c\": must not contain '.' or '..' segments",
        ),
        ("routes[1].upstream.url", "invalid URL \"htp:/x\""),
        (
            "routes[1].upstream.timeouts.request",
            "invalid duration \"5 parsecs\" (use e.g. 30s, 5m; units are ms, s, m, h, d)",
        ),
        (
            "routes[2].name",
            "duplicate route name \"a\" (also at routes[0].name)",
        ),
        ("routes[2].path", "duplicate route for host and path"),
        (
            "issuers[0].algorithms[1]",
            "HMAC/none algorithms are never accepted",
        ),
        (
            "issuers[0].algorithms[2]",
            "HMAC/none algorithms are never accepted",
        ),
        ("issuers[0].algorithms[3]", "invalid algorithm \"XY999\""),
        ("issuers[0].leeway", "must be at most 5m"),
        ("routes[0].auth.issuers[1]", "unknown issuer \"foo\""),
        ("limits.max_request_body", "invalid size \"4 MegaBytes\""),
        (
            "logging.format",
            "invalid value \"xml\" (expected one of: text, json)",
        ),
    ];
    for (path, fragment) in expected {
        assert_error(&errs, path, fragment);
    }
    assert_eq!(errs.len(), expected.len(), "{}", ConfigErrors(errs.clone()));
    // Display: one error per line, `path: message`.
    let text = ConfigErrors(errs).to_string();
    assert_eq!(text.lines().count(), expected.len());
    assert!(text
        .lines()
        .any(|l| l == "routes[0].auth.issuers[1]: unknown issuer \"foo\""));
}

#[test]
fn listener_binds() {
    let yaml = route_with_auth_none("").replace("127.0.0.1:8080", "localhost:8080");
    let config = parse(&yaml).unwrap();
    assert_eq!(
        config.listeners[0].bind,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );

    let yaml = route_with_auth_none("").replace(
        "  - bind: 127.0.0.1:8080\n",
        "  - bind: 127.0.0.1:8080\n  - bind: localhost:8080\n",
    );
    assert_error(
        &errors(&yaml),
        "listeners[1].bind",
        "duplicate listener bind address",
    );

    let admin = doc("    auth: none", "admin: { bind: localhost:8080 }");
    assert_error(
        &errors(&admin),
        "admin.bind",
        "127.0.0.1:8080 is also listeners[0].bind",
    );
    let admin = doc("    auth: none", "admin: { bind: 127.0.0.1:9090 }");
    let config = parse(&admin).unwrap();
    assert_eq!(
        config.admin.unwrap().bind,
        "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn trusted_proxies_parse_into_networks() {
    let yaml = route_with_auth_none("").replace(
        "  - bind: 127.0.0.1:8080\n",
        "  - bind: 127.0.0.1:8080\n    trusted_proxies: [10.0.0.0/8, 127.0.0.1, \"::1\", fd00::/8]\n",
    );
    let config = parse(&yaml).unwrap();
    let nets = &config.listeners[0].trusted_proxies;
    assert_eq!(
        nets.iter().map(|n| n.prefix).collect::<Vec<_>>(),
        vec![8, 32, 128, 8]
    );
    assert!(nets[0].contains("10.200.0.1".parse().unwrap()));
    assert!(!nets[0].contains("192.168.0.1".parse().unwrap()));
    assert!(nets[1].contains("127.0.0.1".parse().unwrap()));
    assert!(!nets[1].contains("127.0.0.2".parse().unwrap()));
    assert!(nets[3].contains("fd12::1".parse().unwrap()));
    assert_eq!("10.0.0.0/8".parse::<IpNet>().unwrap(), nets[0]);
    assert!("10.0.0.0/40".parse::<IpNet>().is_err());

    let bad = route_with_auth_none("").replace(
        "  - bind: 127.0.0.1:8080\n",
        "  - bind: 127.0.0.1:8080\n    trusted_proxies: [not-an-ip]\n",
    );
    assert_error(
        &errors(&bad),
        "listeners[0].trusted_proxies[0]",
        "invalid trusted proxy \"not-an-ip\"",
    );
}

#[test]
fn listener_h2c_is_for_plaintext_listeners_only() {
    let with = |listener: &str| {
        route_with_auth_none("").replace(
            "  - bind: 127.0.0.1:8080\n",
            &format!("  - bind: 127.0.0.1:8080\n{listener}"),
        )
    };
    let config = parse(&with("    h2c: true\n")).unwrap();
    assert!(config.listeners[0].h2c);
    let config = parse(&with("    h2c: false\n")).unwrap();
    assert!(!config.listeners[0].h2c);

    let errs = errors(&with("    h2c: maybe\n"));
    assert_eq!(errs[0].path, "listeners[0].h2c");

    let dir = tempfile::tempdir().unwrap();
    for f in ["cert.pem", "key.pem"] {
        std::fs::write(dir.path().join(f), "pem").unwrap();
    }
    let tls = "    tls: { cert: cert.pem, key: key.pem }\n";
    let errs = parse_str(&with(&format!("{tls}    h2c: true\n")), dir.path(), &env)
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{}", ConfigErrors(errs.clone()));
    assert_eq!(
        errs[0].to_string(),
        "listeners[0].h2c: only for plaintext listeners: with `tls`, HTTP/2 is negotiated by ALPN already"
    );
    let config = parse_str(&with(&format!("{tls}    h2c: false\n")), dir.path(), &env).unwrap();
    assert!(config.listeners[0].tls.is_some() && !config.listeners[0].h2c);
}

#[test]
fn route_paths_and_hosts() {
    let ok = route_with_auth_none("    host: MCP.Example.com\n").replace("path: /r", "path: /r/x/");
    let config = parse(&ok).unwrap();
    assert_eq!(config.routes[0].path, "/r/x");
    assert_eq!(config.routes[0].host.as_deref(), Some("mcp.example.com"));
    let root = route_with_auth_none("").replace("path: /r", "path: /");
    assert_eq!(parse(&root).unwrap().routes[0].path, "/");

    for (path, why) in [
        ("r", "must start with '/'"),
        ("/a//b", "'//'"),
        ("/a%2F", "'%'"),
        ("/a;x", "';'"),
        ("\"/a?x\"", "query"),
        ("\"/a b\"", "whitespace"),
        ("/./a", "'.' or '..'"),
    ] {
        let yaml = route_with_auth_none("").replace("path: /r", &format!("path: {path}"));
        assert_error(&errors(&yaml), "routes[0].path", why);
    }
    for (host, why) in [
        ("https://x.example", "scheme"),
        ("x.example/p", "path"),
        ("x.example:443", "port"),
    ] {
        let yaml = route_with_auth_none(&format!("    host: \"{host}\"\n"));
        assert_error(&errors(&yaml), "routes[0].host", why);
    }
    let bad_name = route_with_auth_none("").replace("name: r", "name: my route");
    assert_error(
        &errors(&bad_name),
        "routes[0].name",
        "invalid name \"my route\"",
    );
}

#[test]
fn same_path_on_different_hosts_is_allowed() {
    let yaml = "\
public_url: https://mcp.example.com
listeners: [{ bind: 127.0.0.1:8080 }]
routes:
  - { name: a, path: /mcp, host: a.example.com, upstream: { url: http://127.0.0.1:1/ }, auth: none }
  - { name: b, path: /mcp, host: b.example.com, upstream: { url: http://127.0.0.1:2/ }, auth: none }
  - { name: c, path: /mcp/, host: B.example.com, upstream: { url: http://127.0.0.1:2/ }, auth: none }
";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1);
    assert_error(
        &errs,
        "routes[2].path",
        "duplicate route for host and path \"b.example.com/mcp\" (also at routes[1].path)",
    );
}

#[test]
fn upstream_url_rules() {
    for (url, why) in [
        ("htp:/x", "scheme must be http or https"),
        ("ftp://h/x", "scheme must be http or https"),
        ("http://h/x?q=1", "query"),
        ("http://h/x#f", "fragment"),
        ("http://user:pw@h/x", "credentials"),
        ("/relative", "invalid URL"),
    ] {
        let yaml = route_with_auth_none("").replace("http://127.0.0.1:3001/mcp", url);
        assert_error(&errors(&yaml), "routes[0].upstream.url", why);
    }
}

#[test]
fn upstream_timeouts() {
    let yaml = doc(
        "      timeouts: { connect: 500ms, stream_idle: 1h }\n    auth: none",
        "",
    );
    let t = parse(&yaml).unwrap().routes[0].upstream.timeouts;
    assert_eq!(t.connect, Duration::from_millis(500));
    assert_eq!(t.request, UpstreamTimeouts::default().request);
    assert_eq!(t.stream_idle, Duration::from_secs(3600));
    let zero = doc("      timeouts: { request: 0s }\n    auth: none", "");
    assert_error(
        &errors(&zero),
        "routes[0].upstream.timeouts.request",
        "greater than 0s",
    );
}

#[test]
fn durations_accept_only_the_documented_units() {
    // Issue 12: humantime read `10M` as ten months. Each key path is named in the error.
    let cases = [
        (
            with_issuer("    discovery: true\n    jwks_refresh: { unknown_kid_cooldown: 10M }\n"),
            "issuers[0].jwks_refresh.unknown_kid_cooldown",
            "10M",
        ),
        (
            with_issuer("    discovery: true\n    leeway: 1min\n"),
            "issuers[0].leeway",
            "1min",
        ),
        (
            doc("      timeouts: { request: 2w }\n    auth: none", ""),
            "routes[0].upstream.timeouts.request",
            "2w",
        ),
        (
            route_with_auth_none("").replace("routes:", "shutdown: { grace_period: 1y }\nroutes:"),
            "shutdown.grace_period",
            "1y",
        ),
    ];
    for (yaml, path, value) in cases {
        assert_error(
            &errors(&yaml),
            path,
            &format!("invalid duration \"{value}\" (use e.g. 30s, 5m; units are ms, s, m, h, d)"),
        );
    }
    let ok = parse(&with_issuer(
        "    discovery: true\n    leeway: 500ms\n    jwks_refresh: { min_interval: 1m, max_interval: 1d, stale_window: 1h 30m }\n",
    ))
    .unwrap();
    let i = &ok.issuers[0];
    assert_eq!(i.leeway, Duration::from_millis(500));
    assert_eq!(i.jwks_refresh.min_interval, Duration::from_secs(60));
    assert_eq!(i.jwks_refresh.max_interval, Duration::from_secs(86_400));
    assert_eq!(i.jwks_refresh.stale_window, Duration::from_secs(5400));
}

#[test]
fn upstream_tls_requires_https_and_pairs() {
    let yaml = doc(
        "      tls: { server_name: internal.example }\n    auth: none",
        "",
    );
    assert_error(
        &errors(&yaml),
        "routes[0].upstream.tls",
        "only allowed with an https",
    );

    let https = |tls: &str| {
        doc(&format!("      tls: {tls}\n    auth: none"), "")
            .replace("http://127.0.0.1:3001", "https://127.0.0.1:3001")
    };
    let config = parse(&https("{ server_name: Internal.Example }")).unwrap();
    assert_eq!(
        config.routes[0].upstream.tls.server_name.as_deref(),
        Some("internal.example")
    );
    assert_error(
        &errors(&https("{ client_cert: c.pem }")),
        "routes[0].upstream.tls",
        "set both `client_cert` and `client_key`",
    );
    let errs = errors(&https(
        "{ ca_file: ca.pem, client_cert: c.pem, client_key: k.pem }",
    ));
    assert_error(
        &errs,
        "routes[0].upstream.tls.ca_file",
        "cannot read \"/nonexistent-base-dir/ca.pem\": No such file or directory",
    );
    assert_error(&errs, "routes[0].upstream.tls.client_cert", "cannot read");
    assert_error(&errs, "routes[0].upstream.tls.client_key", "cannot read");
}

#[test]
fn upstream_headers() {
    let yaml = doc(
        "      headers: { X-Api-Key: \"${UPSTREAM_KEY}\", X-Plain: literal }\n    auth: none",
        "",
    );
    let h = &parse(&yaml).unwrap().routes[0].upstream.headers;
    assert_eq!(h["x-api-key"].expose(), UPSTREAM_SECRET);
    assert_eq!(h["x-plain"].expose(), "literal");
    assert!(
        !format!("{h:?}").contains(UPSTREAM_SECRET),
        "Debug must not show secrets"
    );

    let bad = doc(
        "      headers: { \"Bad Name\": x, Host: y }\n    auth: none",
        "",
    );
    let errs = errors(&bad);
    assert_error(
        &errs,
        "routes[0].upstream.headers.Bad Name",
        "invalid header name",
    );
    assert_error(
        &errs,
        "routes[0].upstream.headers.Host",
        "managed by the gateway",
    );
    let injected = doc(
        "      headers: { X-A: \"a\\r\\nX-B: b\" }\n    auth: none",
        "",
    );
    assert_error(
        &errors(&injected),
        "routes[0].upstream.headers.X-A",
        "not allowed in an HTTP header",
    );
}

#[test]
fn headers_file_reads_and_trims_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "from-file-secret\n").unwrap();
    let yaml = doc(
        "      headers_file: { X-Api-Key: key }\n      headers: { x-other: v }\n    auth: none",
        "",
    );
    let config = parse_str(&yaml, dir.path(), &env).unwrap();
    let h = &config.routes[0].upstream.headers;
    assert_eq!(h["x-api-key"].expose(), "from-file-secret");
    assert_eq!(h.len(), 2);

    let dup = doc(
        "      headers_file: { X-Api-Key: key }\n      headers: { x-api-key: v }\n    auth: none",
        "",
    );
    let errs = parse_str(&dup, dir.path(), &env).unwrap_err().0;
    assert_error(
        &errs,
        "routes[0].upstream.headers_file.X-Api-Key",
        "duplicate header \"x-api-key\"",
    );

    let missing = doc(
        "      headers_file: { X-Api-Key: nope }\n    auth: none",
        "",
    );
    let errs = parse_str(&missing, dir.path(), &env).unwrap_err().0;
    let expected = format!(
        "cannot read {:?}",
        dir.path().join("nope").display().to_string()
    );
    assert_error(
        &errs,
        "routes[0].upstream.headers_file.X-Api-Key",
        &expected,
    );
}

#[test]
fn env_interpolation() {
    let yaml = doc("    auth: none", "").replace("http://127.0.0.1:3001/mcp", "${UPSTREAM_URL}");
    let config = parse(&yaml).unwrap();
    assert_eq!(
        config.routes[0].upstream.url.as_str(),
        "http://10.1.2.3:9000/mcp"
    );

    // A free-text field carries the references (logging.level is checked as a filter).
    let header = |value: &str| {
        doc(
            &format!("      headers: {{ X-Carrier: \"{value}\" }}\n    auth: none"),
            "",
        )
    };
    let escaped = parse(&header("$${NOT_A_VAR}")).unwrap();
    assert_eq!(
        escaped.routes[0].upstream.headers["x-carrier"].expose(),
        "${NOT_A_VAR}"
    );

    let errs = errors(&header("${MISSING_VAR}"));
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "routes[0].upstream.headers.X-Carrier: environment variable MISSING_VAR is not set"
    );
}

#[test]
fn env_values_are_not_parsed_as_yaml() {
    let env = |name: &str| (name == "CARRIED").then(|| "info, foo: [bar {".to_string());
    let yaml = doc(
        "      headers: { X-Carrier: \"${CARRIED}\" }\n    auth: none",
        "",
    );
    let config = parse_str(&yaml, Path::new("/"), &env).unwrap();
    assert_eq!(
        config.routes[0].upstream.headers["x-carrier"].expose(),
        "info, foo: [bar {"
    );
}

#[test]
fn secret_values_never_appear_in_errors() {
    // A secret ends up in a field where it is invalid: the message quotes the reference.
    let yaml = route_with_auth_none("").replace("http://127.0.0.1:3001/mcp", "${UPSTREAM_KEY}");
    let errs = errors(&yaml);
    assert_error(
        &errs,
        "routes[0].upstream.url",
        "invalid URL \"${UPSTREAM_KEY}\" (after interpolation)",
    );
    let yaml = doc(
        "    auth: none",
        "shutdown: { grace_period: \"${INTROSPECT_SECRET}\" }",
    );
    let all = ConfigErrors(errors(&yaml)).to_string();
    assert!(all.contains("${INTROSPECT_SECRET}"));
    assert!(!all.contains(INTROSPECT_SECRET), "{all}");

    let header = doc(
        "      headers: { X-A: \"${UPSTREAM_KEY}\\n\" }\n    auth: none",
        "",
    );
    let all = ConfigErrors(errors(&header)).to_string();
    assert!(!all.contains(UPSTREAM_SECRET), "{all}");
}

#[test]
fn introspection_secrets() {
    let intro = |secret_lines: &str| {
        with_issuer(&format!(
            "    introspection:\n      endpoint: https://idp.example.com/introspect\n      \
             client_id: mcpgate\n{secret_lines}"
        ))
    };
    let config = parse(&intro("      client_secret: ${INTROSPECT_SECRET}\n")).unwrap();
    let i = &config.issuers[0];
    assert!(i.jwks.is_none(), "introspection alone needs no key source");
    let x = i.introspection.as_ref().unwrap();
    assert_eq!(x.client_secret.expose(), INTROSPECT_SECRET);
    assert_eq!(x.auth_method, ClientAuthMethod::ClientSecretBasic);
    assert_eq!(x.cache_ttl, Duration::from_secs(300));
    assert_eq!(x.negative_cache_ttl, Duration::from_secs(10));
    assert_eq!(x.timeout, Duration::from_secs(5));
    assert_eq!(x.max_concurrent, 16);
    assert!(
        !x.accept_missing_audience,
        "audience-less answers are refused unless opted in"
    );
    assert!(!format!("{config:?}").contains(INTROSPECT_SECRET));

    let errs = errors(&intro("      client_secret: ${NO_SUCH_SECRET}\n"));
    assert_eq!(
        errs[0].to_string(),
        "issuers[0].introspection.client_secret: environment variable NO_SUCH_SECRET is not set"
    );
    assert_error(
        &errors(&intro("")),
        "issuers[0].introspection.client_secret",
        "missing required key",
    );
    assert_error(
        &errors(&intro(
            "      client_secret: a\n      client_secret_file: b\n",
        )),
        "issuers[0].introspection",
        "not both",
    );
    assert_error(
        &errors(&intro(
            "      client_secret: a\n      auth_method: private_key_jwt\n",
        )),
        "issuers[0].introspection.auth_method",
        "expected one of: client_secret_basic, client_secret_post",
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "file-secret\r\n").unwrap();
    let yaml = intro("      client_secret_file: secret\n      auth_method: client_secret_post\n");
    let config = parse_str(&yaml, dir.path(), &env).unwrap();
    let x = config.issuers[0].introspection.as_ref().unwrap();
    assert_eq!(x.client_secret.expose(), "file-secret");
    assert_eq!(x.auth_method, ClientAuthMethod::ClientSecretPost);

    let errs = errors(&intro("      client_secret_file: /no/such/secret\n"));
    assert_eq!(
        errs[0].to_string(),
        "issuers[0].introspection.client_secret_file: cannot read \"/no/such/secret\": \
         No such file or directory"
    );
}

#[test]
fn introspection_audience_and_concurrency_settings() {
    let intro = |lines: &str| {
        with_issuer(&format!(
            "    introspection:\n      endpoint: https://idp.example.com/introspect\n      \
             client_id: mcpgate\n      client_secret: s\n{lines}"
        ))
    };
    let config = parse(&intro(
        "      accept_missing_audience: true\n      max_concurrent: 4\n",
    ))
    .unwrap();
    let x = config.issuers[0].introspection.as_ref().unwrap();
    assert!(x.accept_missing_audience);
    assert_eq!(x.max_concurrent, 4);
    let config = parse(&intro("      accept_missing_audience: false\n")).unwrap();
    let x = config.issuers[0].introspection.as_ref().unwrap();
    assert!(!x.accept_missing_audience);

    for bad in ["0", "-1", "1.5", "many", "4097"] {
        assert_error(
            &errors(&intro(&format!("      max_concurrent: {bad}\n"))),
            "issuers[0].introspection.max_concurrent",
            &format!("invalid count \"{bad}\" (a whole number from 1 to 4096)"),
        );
    }
    assert_error(
        &errors(&intro("      accept_missing_audience: sometimes\n")),
        "issuers[0].introspection.accept_missing_audience",
        "",
    );
}

#[test]
fn issuer_key_sources() {
    let none = errors(&with_issuer(""));
    assert_error(&none, "issuers[0]", "no signing keys");
    let two = errors(&with_issuer(
        "    discovery: true\n    jwks_uri: https://x.example/jwks\n",
    ));
    assert_error(&two, "issuers[0]", "set only one of");
    let uri = parse(&with_issuer("    jwks_uri: https://x.example/jwks\n")).unwrap();
    assert_eq!(
        uri.issuers[0].jwks,
        Some(JwksSource::Uri("https://x.example/jwks".parse().unwrap()))
    );
    let bad_uri = errors(&with_issuer("    jwks_uri: file:///etc/jwks\n"));
    assert_error(
        &bad_uri,
        "issuers[0].jwks_uri",
        "scheme must be http or https",
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), "{\"keys\":[]}").unwrap();
    let yaml = with_issuer("    jwks_file: ./jwks.json\n");
    let config = parse_str(&yaml, dir.path(), &env).unwrap();
    assert_eq!(
        config.issuers[0].jwks,
        Some(JwksSource::File(dir.path().join("./jwks.json")))
    );
    assert_error(&errors(&yaml), "issuers[0].jwks_file", "cannot read");

    let not_url =
        with_issuer("    discovery: true\n").replace("https://login.example.com", "corp-idp");
    assert_error(
        &errors(&not_url),
        "issuers[0].issuer",
        "must be an http(s) URL",
    );
    // Without discovery the issuer string is kept exactly as written.
    let opaque = with_issuer("    jwks_uri: https://x.example/jwks\n").replace(
        "https://login.example.com",
        "https://Login.Example.com/realms/corp/",
    );
    assert_eq!(
        parse(&opaque).unwrap().issuers[0].issuer,
        "https://Login.Example.com/realms/corp/"
    );
}

#[test]
fn issuer_settings() {
    let yaml = with_issuer(
        "    discovery: true
    algorithms: [ES384, EdDSA, ES384]
    leeway: 0s
    required_claims: [exp, sub]
    audiences: [mcp]
    require_at_jwt: true
    claims: { groups: roles }
    jwks_refresh: { min_interval: 5m, max_interval: 5m, stale_window: 1h }
",
    );
    let i = &parse(&yaml).unwrap().issuers[0];
    assert_eq!(i.algorithms, vec![Algorithm::ES384, Algorithm::EdDSA]);
    assert_eq!(i.leeway, Duration::ZERO);
    assert_eq!(i.required_claims, vec!["exp", "sub"]);
    assert_eq!(i.audiences, vec!["mcp"]);
    assert!(i.require_at_jwt);
    assert_eq!(i.claims.groups, "roles");
    assert_eq!(i.claims.email, "email");
    assert_eq!(i.jwks_refresh.min_interval, Duration::from_secs(300));
    assert_eq!(i.jwks_refresh.stale_window, Duration::from_secs(3600));
    assert_eq!(i.jwks_refresh.timeout, JwksRefresh::default().timeout);

    let errs = errors(&with_issuer(
        "    discovery: true\n    jwks_refresh: { min_interval: 2h }\n    algorithms: []\n",
    ));
    assert_error(
        &errs,
        "issuers[0].jwks_refresh.min_interval",
        "max_interval",
    );
    assert_error(&errs, "issuers[0].algorithms", "at least one algorithm");
}

#[test]
fn hmac_and_none_algorithms_are_rejected() {
    for alg in ["none", "HS256", "HS384", "HS512", "hs256"] {
        let yaml = with_issuer(&format!("    discovery: true\n    algorithms: [{alg}]\n"));
        let errs = errors(&yaml);
        assert_eq!(
            errs[0].to_string(),
            format!(
                "issuers[0].algorithms[0]: invalid algorithm \"{alg}\": HMAC/none algorithms \
                 are never accepted"
            )
        );
    }
}

#[test]
fn issuer_names_are_unique_and_referenced() {
    let yaml = doc(
        "    auth: { issuers: [corp, corp] }",
        "issuers:
  - { name: corp, issuer: a, jwks_uri: https://a.example/jwks }
  - { name: corp, issuer: b, jwks_uri: https://b.example/jwks }",
    );
    let errs = errors(&yaml);
    assert_error(&errs, "issuers[1].name", "duplicate issuer name \"corp\"");
    assert_error(
        &errs,
        "routes[0].auth.issuers[1]",
        "duplicate issuer \"corp\"",
    );
    assert_eq!(errs.len(), 2, "{}", ConfigErrors(errs.clone()));
}

#[test]
fn route_resource() {
    let explicit = doc(
        "    auth: { issuers: [corp], resource: https://api.example.com/r }",
        "issuers: [{ name: corp, issuer: x, jwks_uri: https://x.example/k }]",
    );
    let RouteAuth::Required(a) = &parse(&explicit).unwrap().routes[0].auth else {
        panic!()
    };
    assert_eq!(a.resource.as_str(), "https://api.example.com/r");

    let bad = explicit.replace("https://api.example.com/r", "urn:example:r");
    assert_error(
        &errors(&bad),
        "routes[0].auth.resource",
        "scheme must be http or https",
    );

    let hosted = doc(
        "    host: other.example.com\n    auth: { issuers: [corp] }",
        "issuers: [{ name: corp, issuer: x, jwks_uri: https://x.example/k }]",
    );
    let RouteAuth::Required(a) = &parse(&hosted).unwrap().routes[0].auth else {
        panic!()
    };
    assert_eq!(a.resource.as_str(), "https://other.example.com/r");
}

#[test]
fn listener_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["cert.pem", "key.pem", "b.crt", "b.key"] {
        std::fs::write(dir.path().join(f), "pem").unwrap();
    }
    let with_tls = |tls: &str| {
        route_with_auth_none("").replace(
            "  - bind: 127.0.0.1:8080\n",
            &format!("  - bind: 127.0.0.1:8080\n    tls: {tls}\n"),
        )
    };
    let config = parse_str(
        &with_tls("{ cert: cert.pem, key: key.pem }"),
        dir.path(),
        &env,
    )
    .unwrap();
    let tls = config.listeners[0].tls.as_ref().unwrap();
    assert_eq!(
        tls.certificates,
        vec![CertificatePair {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem")
        }]
    );
    let multi = with_tls(
        "{ certificates: [{ cert: cert.pem, key: key.pem }, { cert: b.crt, key: b.key }] }",
    );
    let config = parse_str(&multi, dir.path(), &env).unwrap();
    assert_eq!(
        config.listeners[0].tls.as_ref().unwrap().certificates.len(),
        2
    );

    let errs = errors(&with_tls("{ cert: /x/cert.pem, key: /x/key.pem }"));
    assert_eq!(
        errs[0].to_string(),
        "listeners[0].tls.cert: cannot read \"/x/cert.pem\": No such file or directory"
    );
    assert_error(&errs, "listeners[0].tls.key", "cannot read \"/x/key.pem\"");

    let both = with_tls("{ cert: cert.pem, key: key.pem, certificates: [] }");
    assert_error(
        &parse_str(&both, dir.path(), &env).unwrap_err().0,
        "listeners[0].tls",
        "not both",
    );
    let half = with_tls("{ cert: cert.pem }");
    assert_error(
        &parse_str(&half, dir.path(), &env).unwrap_err().0,
        "listeners[0].tls.key",
        "missing required key",
    );
    let dir_as_cert = with_tls("{ cert: ., key: key.pem }");
    assert_error(
        &parse_str(&dir_as_cert, dir.path(), &env).unwrap_err().0,
        "listeners[0].tls.cert",
        "Is a directory",
    );
    let empty = with_tls("{ certificates: [] }");
    assert_error(
        &errors(&empty),
        "listeners[0].tls.certificates",
        "at least one",
    );
}

#[test]
fn limits_logging_shutdown() {
    let yaml = doc(
        "    auth: none",
        "limits: { max_request_body: 1048576, max_request_headers: 32KiB, client_keepalive: 2m }
logging: { format: json, level: \"mcpgate=debug,info\", access_log: false }
shutdown: { grace_period: 0s }",
    );
    let config = parse(&yaml).unwrap();
    assert_eq!(config.limits.max_request_body, 1 << 20);
    assert_eq!(config.limits.max_request_headers, 32 * 1024);
    assert_eq!(config.limits.client_keepalive, Duration::from_secs(120));
    assert_eq!(
        config.limits.client_read_timeout,
        Limits::default().client_read_timeout
    );
    assert_eq!(config.logging.format, LogFormat::Json);
    assert_eq!(config.logging.level, "mcpgate=debug,info");
    assert!(!config.logging.access_log);
    assert_eq!(config.shutdown.grace_period, Duration::ZERO);

    let bad = doc(
        "    auth: none",
        "limits: { max_request_body: 0, client_read_timeout: 0s, max_request_headers: 1.5KiB }",
    );
    let errs = errors(&bad);
    assert_error(&errs, "limits.max_request_body", "must be greater than 0");
    assert_error(
        &errs,
        "limits.client_read_timeout",
        "must be greater than 0s",
    );
    assert_error(
        &errs,
        "limits.max_request_headers",
        "invalid size \"1.5KiB\"",
    );
}

#[test]
fn load_file_resolves_relative_paths_and_reports_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), "{}").unwrap();
    let file = dir.path().join("gw.yaml");
    std::fs::write(&file, with_issuer("    jwks_file: jwks.json\n")).unwrap();
    let config = load_file(&file).unwrap();
    assert_eq!(
        config.issuers[0].jwks,
        Some(JwksSource::File(dir.path().join("jwks.json")))
    );
    let err = load_file(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn logging_level_must_be_a_filter_the_gateway_can_install() {
    // `debugg` would be read by tracing as a target name and silence every log line.
    for (level, fragment) in [
        ("debugg", "is not a level"),
        ("info,mcpgate", "a target needs one too"),
        ("mcpgate=loud", "not a valid filter"),
    ] {
        let errs = errors(&doc(
            "    auth: none",
            &format!("logging: {{ level: \"{level}\" }}"),
        ));
        assert_error(&errs, "logging.level", fragment);
    }
    let ok = doc(
        "    auth: none",
        "logging: { level: \"warn,mcpgate=debug\" }",
    );
    assert_eq!(parse(&ok).unwrap().logging.level, "warn,mcpgate=debug");
}

#[test]
fn binds_that_cannot_coexist_are_refused() {
    // 0.0.0.0:8080 takes port 8080 on every address: 127.0.0.1:8080 could never bind next to it.
    let wildcard = route_with_auth_none("").replace(
        "  - bind: 127.0.0.1:8080\n",
        "  - bind: 0.0.0.0:8080\n  - bind: 127.0.0.1:8080\n  - bind: 127.0.0.1:8081\n",
    );
    let errs = errors(&wildcard);
    assert_error(
        &errs,
        "listeners[1].bind",
        "overlaps listeners[0].bind 0.0.0.0:8080",
    );
    assert_eq!(errs.len(), 1, "8081 is fine");

    let admin = doc("    auth: none", "admin: { bind: \"[::]:8080\" }");
    assert_error(&errors(&admin), "admin.bind", "overlaps listeners[0].bind");
    let other_port = doc("    auth: none", "admin: { bind: 0.0.0.0:9090 }");
    assert!(parse(&other_port).is_ok());
}

#[test]
fn tracing_is_off_when_absent_and_defaults_when_present() {
    let cfg = parse(&doc("    auth: none", "")).unwrap();
    assert!(cfg.tracing.is_none());
    let cfg = parse(&doc(
        "    auth: none",
        "tracing:\n  otlp_endpoint: http://collector:4318\n",
    ))
    .unwrap();
    let t = cfg.tracing.unwrap();
    assert_eq!(t.traces_url.as_str(), "http://collector:4318/v1/traces");
    assert_eq!(t.service_name, "mcpgate");
    assert_eq!(t.sample_ratio, 1.0);
    assert!(t.headers.is_empty());
}

#[test]
fn tracing_keys_are_checked_and_header_values_never_quoted() {
    let errs = errors(&doc(
        "    auth: none",
        "tracing:\n  otlp_endpoint: ftp://collector\n  sample_ratio: 1.5\n  headers:\n    \"bad name\": x\n    x-api-key: \"a\\nb\"\n",
    ));
    assert_error(
        &errs,
        "tracing.otlp_endpoint",
        "scheme must be http or https",
    );
    assert_error(&errs, "tracing.sample_ratio", "0.0 to 1.0");
    assert_error(&errs, "tracing.headers.bad name", "header name");
    assert_error(&errs, "tracing.headers.x-api-key", "control characters");
    let cfg = parse(&doc(
        "    auth: none",
        "tracing:\n  otlp_endpoint: https://otel.example.com/otlp/\n  sample_ratio: 0.25\n  headers:\n    X-Api-Key: ${UPSTREAM_KEY}\n",
    ))
    .unwrap();
    let t = cfg.tracing.unwrap();
    assert_eq!(
        t.traces_url.as_str(),
        "https://otel.example.com/otlp/v1/traces"
    );
    assert_eq!(t.sample_ratio, 0.25);
    assert_eq!(t.headers[0].0, "x-api-key");
    assert_eq!(t.headers[0].1.expose(), UPSTREAM_SECRET);
    assert!(!format!("{t:?}").contains(UPSTREAM_SECRET));
}

#[test]
fn audit_file_resolves_against_the_config_directory() {
    let cfg = parse(&doc(
        "    auth: none",
        "logging:\n  audit_file: audit.jsonl\n",
    ))
    .unwrap();
    assert_eq!(
        cfg.logging.audit_file.as_deref(),
        Some(Path::new("/nonexistent-base-dir/audit.jsonl"))
    );
}
