//! Per-request cost of the MCP layer: classifying a JSON-RPC body, a tool-policy decision, and
//! filtering a 200-tool `tools/list` answer (JSON body and one SSE event).
//!
//! `cargo bench -p mcpgate-mcp --bench decide`

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate_auth::Principal;
use mcpgate_config::{Access, McpPolicy, McpRule};
use mcpgate_mcp::filter::{filter_json, SseFilter};
use mcpgate_mcp::jsonrpc::{parse_body, Body, Limits, ListKind, Target};
use mcpgate_mcp::policy::RoutePolicy;
use serde_json::json;

fn rule(pattern: &str, scopes: &[&str], deny: bool) -> McpRule {
    McpRule {
        pattern: pattern.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        groups: vec![],
        deny,
    }
}

fn bench(c: &mut Criterion) {
    let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"create_issue","arguments":{"title":"hi","body":"some text"}}}"#;
    let access = Access {
        required_scopes: vec!["mcp:read".into()],
        allowed_domains: vec!["example.com".into()],
        scope_hierarchy: BTreeMap::from([
            ("mcp:admin".to_string(), vec!["mcp:write".to_string()]),
            ("mcp:write".to_string(), vec!["mcp:read".to_string()]),
        ]),
        ..Access::default()
    };
    let mcp = McpPolicy {
        tools: vec![
            rule("delete_*", &["mcp:admin"], false),
            rule("create_*", &["mcp:write"], false),
            rule("dangerous_tool", &[], true),
        ],
        ..McpPolicy::default()
    };
    let policy = RoutePolicy::compile(Some(&access), &mcp);
    let principal = Principal {
        issuer: "https://idp.example.com".into(),
        issuer_name: "idp".into(),
        subject: Some("alice".into()),
        client_id: Some("cli".into()),
        scopes: vec!["mcp:write".into()],
        audience: vec![],
        expires_at: None,
        email: Some("alice@example.com".into()),
        email_verified: true,
        groups: vec![],
        claims: Default::default(),
        token_hash: "h".into(),
    };
    let tools: Vec<_> = (0..200)
        .map(|i| json!({"name": format!("tool_{i:03}"), "description": "A benchmark tool.", "inputSchema": {"type": "object"}}))
        .collect();
    let listing = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}).to_string();
    let sse = format!("event: message\ndata: {listing}\n\n");
    let allow = |t: &Target| policy.allows_target(Some(&principal), t);

    let mut g = c.benchmark_group("mcp");
    g.bench_function("classify_tools_call", |b| {
        b.iter(|| std::hint::black_box(parse_body(call, Limits::default()).unwrap()))
    });
    let Body::Single(msg) = parse_body(call, Limits::default()).unwrap() else {
        unreachable!()
    };
    g.bench_function("policy_decision", |b| {
        // What production runs: the route baseline once per request, then the target's rule.
        b.iter(|| {
            let p = Some(&principal);
            let decision = policy.check_route(p).and_then(|()| {
                msg.target
                    .as_ref()
                    .map_or(Ok(()), |t| policy.check_target(p, t))
            });
            std::hint::black_box(decision).is_ok()
        })
    });
    g.bench_function("filter_200_tools_json", |b| {
        b.iter(|| std::hint::black_box(filter_json(ListKind::Tools, listing.as_bytes(), &allow)))
    });
    g.bench_function("filter_200_tools_sse_event", |b| {
        b.iter(|| {
            let mut f = SseFilter::new(ListKind::Tools);
            let mut out = Vec::new();
            f.push(sse.as_bytes(), &allow, &mut out);
            std::hint::black_box(out)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
