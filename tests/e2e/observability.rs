//! Observability end to end: metrics on the admin port move, request spans reach a real OTLP
//! receiver (protobuf decoded with `opentelemetry-proto`) with the caller's trace id and the tool
//! name, the upstream sees the gateway's span as parent, and JSON audit lines carry every field
//! under its own key, once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const META_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const META_SPAN: &str = "b7ad6b7169203331";

/// An HTTP server on a free loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// An MCP upstream that answers every POST and remembers each request's `traceparent`.
async fn upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/up",
        post(move |headers: HeaderMap| {
            let s = s.clone();
            async move {
                let tp = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                s.lock().unwrap().push(tp);
                (
                    [("content-type", "application/json")],
                    r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
                )
            }
        }),
    );
    (format!("{}/up", serve(app).await), seen)
}

/// An OTLP/HTTP receiver: decodes `/v1/traces` protobuf bodies and keeps every span.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let s = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let s = s.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut s = s.lock().unwrap();
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        s.extend(ss.spans);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    (serve(app).await, spans)
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

struct Setup {
    issuer: mcpgate_sample::DemoIssuer,
    gw: Gw,
    upstream_seen: Arc<Mutex<Vec<String>>>,
}

async fn setup(extra: &str) -> Setup {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let issuer = mcpgate_sample::DemoIssuer::start(loopback).await.unwrap();
    let (up, upstream_seen) = upstream().await;
    let mut gw = Gw::start(&format!(
        r#"public_url: http://127.0.0.1:{{port}}
listeners: [{{ bind: "127.0.0.1:{{port}}" }}]
admin: {{ bind: "127.0.0.1:{{admin}}" }}
issuers: [{{ name: local, issuer: "{iss}", jwks_uri: "{iss}/jwks", algorithms: [ES256] }}]
routes:
  - name: main
    path: /mcp
    upstream: {{ url: "{up}" }}
    auth: {{ issuers: [local] }}
    tools: [{{ match: "delete_*", deny: true }}]
{extra}
"#,
        iss = issuer.issuer_url(),
    ));
    gw.ready().await;
    Setup {
        issuer,
        gw,
        upstream_seen,
    }
}

impl Setup {
    fn token(&self) -> String {
        self.issuer
            .mint_default(&self.gw.url("/mcp"), "mcp:read", Duration::from_secs(300))
    }

    async fn call(&self, token: &str, body: &Value, traceparent: Option<&str>) -> u16 {
        let mut req = mcp_post(&client(), &self.gw.url("/mcp"), body).bearer_auth(token);
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp);
        }
        req.send().await.unwrap().status().as_u16()
    }
}

/// The value of one series in a Prometheus text exposition (0 when absent).
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_move_for_calls_refusals_caches_and_keys() {
    let s = setup("").await;
    let before = s.gw.metrics().await;
    let token = s.token();
    let call = jsonrpc(1, "tools/call", json!({"name": "echo"}));
    assert_eq!(s.call(&token, &call, None).await, 200);
    assert_eq!(s.call(&token, &call, None).await, 200);
    let denied = jsonrpc(2, "tools/call", json!({"name": "delete_everything"}));
    assert_eq!(s.call(&token, &denied, None).await, 403);
    assert_eq!(s.call("garbage", &call, None).await, 401);
    let after = s.gw.metrics().await;
    let moved = |name: &str| series(&after, name) - series(&before, name);

    let calls = r#"mcpgate_mcp_requests_total{method="tools/call",route="main",status="200"}"#;
    assert_eq!(moved(calls), 2.0, "{after}");
    let denials = r#"mcpgate_mcp_requests_total{method="tools/call",route="main",status="403"}"#;
    assert_eq!(moved(denials), 1.0, "{after}");
    // Refused before its body was read: no method to count it under.
    let unread = r#"mcpgate_mcp_requests_total{method="none",route="main",status="401"}"#;
    assert_eq!(moved(unread), 1.0, "{after}");
    assert_eq!(
        moved(r#"mcpgate_auth_decisions_total{reason="ok",route="main"}"#),
        3.0
    );
    assert_eq!(
        moved(r#"mcpgate_auth_decisions_total{reason="malformed_token",route="main"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"mcpgate_upstream_duration_seconds_count{route="main"}"#),
        2.0
    );
    // Both accepted calls took the lean path (none with MCPGATE_REQUEST_PATH=general, the suite's
    // second run); the refused ones never reached an upstream path at all.
    let lean = match std::env::var("MCPGATE_REQUEST_PATH").as_deref() {
        Ok("general") => 0.0,
        _ => 2.0,
    };
    assert_eq!(moved("mcpgate_lean_path_requests_total"), lean, "{after}");
    // One JWT verified, then remembered for the next two requests.
    assert_eq!(
        moved(r#"mcpgate_token_cache_lookups_total{cache="jwt",result="miss"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"mcpgate_token_cache_lookups_total{cache="jwt",result="hit"}"#),
        2.0
    );
    assert!(series(&after, r#"mcpgate_jwks_fetches_total{issuer="local"}"#) >= 1.0);
    assert_eq!(
        series(
            &after,
            r#"mcpgate_jwks_fetch_failures_total{issuer="local"}"#
        ),
        0.0
    );
    assert!(after.contains(r#"mcpgate_jwks_keys_age_seconds{issuer="local"}"#));
    // Bounded labels: no token, hash or subject ever names a series.
    assert!(!after.contains(&token[..20]) && !after.contains("garbage"));
}

#[tokio::test]
async fn spans_reach_the_otlp_receiver_and_the_upstream_sees_the_gateway_as_parent() {
    let (otlp, spans) = otlp_receiver().await;
    let s = setup(&format!(
        "tracing: {{ otlp_endpoint: \"{otlp}\", service_name: mcpgate-test }}"
    ))
    .await;
    let token = s.token();
    let header_tp = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let call = jsonrpc(1, "tools/call", json!({"name": "echo"}));
    assert_eq!(s.call(&token, &call, Some(&header_tp)).await, 200);
    // No header: the MCP request's `params._meta.traceparent` (SEP-414) names the trace.
    let meta_tp = format!("00-{META_TRACE}-{META_SPAN}-01");
    let with_meta = jsonrpc(
        2,
        "tools/call",
        json!({"name": "echo", "_meta": {"traceparent": meta_tp}}),
    );
    assert_eq!(s.call(&token, &with_meta, None).await, 200);

    let upstream_tps = s.upstream_seen.lock().unwrap().clone();
    assert_eq!(upstream_tps.len(), 2, "{upstream_tps:?}");
    let (tp_a, tp_b) = (&upstream_tps[0], &upstream_tps[1]);
    assert!(tp_a.starts_with(&format!("00-{CALLER_TRACE}-")), "{tp_a}");
    assert!(
        !tp_a.contains(CALLER_SPAN),
        "the upstream's parent is the gateway's span"
    );
    assert!(tp_b.starts_with(&format!("00-{META_TRACE}-")), "{tp_b}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let (root, upstream_span) = loop {
        let got = spans.lock().unwrap().clone();
        let trace = hex::decode(CALLER_TRACE).unwrap();
        let root = got
            .iter()
            .find(|sp| sp.trace_id == trace && sp.name.starts_with("POST"))
            .cloned();
        let up = got
            .iter()
            .find(|sp| sp.trace_id == trace && sp.name == "mcpgate.upstream")
            .cloned();
        let meta_root = got.iter().any(|sp| {
            sp.trace_id == hex::decode(META_TRACE).unwrap() && sp.name.starts_with("POST")
        });
        if let (Some(r), Some(u), true) = (root, up, meta_root) {
            break (r, u);
        }
        assert!(
            Instant::now() < deadline,
            "spans never arrived: {:?}\n{}",
            got.iter().map(|s| &s.name).collect::<Vec<_>>(),
            s.gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(root.name, "POST main");
    assert_eq!(hex::encode(&root.parent_span_id), CALLER_SPAN);
    assert_eq!(attr(&root, "mcpgate.route").as_deref(), Some("main"));
    assert_eq!(
        attr(&root, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(attr(&root, "gen_ai.tool.name").as_deref(), Some("echo"));
    assert_eq!(attr(&root, "mcp.target.name").as_deref(), Some("echo"));
    assert_eq!(attr(&root, "mcpgate.decision").as_deref(), Some("allow"));
    assert_eq!(
        attr(&root, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(upstream_span.parent_span_id, root.span_id);
    // What the upstream was told is its parent is exactly the gateway's upstream span.
    assert_eq!(
        tp_a.split('-').nth(2).unwrap(),
        hex::encode(&upstream_span.span_id)
    );
    let all = spans.lock().unwrap().clone();
    for child in ["mcpgate.authenticate", "mcpgate.policy"] {
        assert!(
            all.iter()
                .any(|sp| sp.name == child && sp.parent_span_id == root.span_id),
            "{child} missing"
        );
    }
    // Nothing identifying the caller rides on a span: no token, no subject.
    for sp in &all {
        for kv in &sp.attributes {
            let v = format!("{:?}", kv.value);
            assert!(!v.contains(&token[..20]), "token in {}", kv.key);
            assert!(kv.key != "enduser.id" && !kv.key.contains("subject"));
        }
    }
}

/// The keys of a JSON object in document order, duplicates kept (serde_json's `Map` would
/// silently keep the last of two equal keys — exactly the bug this guards against).
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

fn assert_unique_keys(line: &str) {
    let Keys(keys) = serde_json::from_str(line).unwrap();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "duplicate keys in {line}");
}

#[tokio::test]
async fn json_audit_lines_have_every_field_once_in_their_own_file() {
    let s = setup("logging: { format: json, level: info, audit_file: audit.jsonl }").await;
    let token = s.token();
    let tp = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let call = jsonrpc(7, "tools/call", json!({"name": "echo"}));
    assert_eq!(s.call(&token, &call, Some(&tp)).await, 200);
    let denied = jsonrpc(8, "tools/call", json!({"name": "delete_everything"}));
    assert_eq!(s.call(&token, &denied, None).await, 403);

    let path = s.gw.dir.path().join("audit.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= 2 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "audit file: {text:?}\n{}",
            s.gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for l in &lines {
        assert_unique_keys(l);
    }
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let allow = parsed.iter().find(|v| v["decision"] == "allow").unwrap();
    let deny = parsed.iter().find(|v| v["decision"] == "deny").unwrap();
    assert_eq!(allow["target"], "mcpgate::audit");
    assert_eq!(allow["target_kind"], "tool");
    assert_eq!(allow["target_name"], "echo");
    assert_eq!(allow["mcp_method"], "tools/call");
    assert_eq!(allow["route"], "main");
    assert_eq!(allow["issuer"], s.issuer.issuer_url());
    assert_eq!(allow["jsonrpc_id"], "7");
    assert_eq!(allow["trace_id"], CALLER_TRACE);
    assert_eq!(allow["request_id"].as_str().unwrap().len(), 16);
    assert!(!allow["token_hash"].as_str().unwrap().is_empty());
    for key in ["subject", "client_id", "session_hash", "reason"] {
        assert!(allow.get(key).is_some(), "{key} missing in {allow}");
    }
    assert_eq!(deny["target_name"], "delete_everything");
    assert_ne!(deny["request_id"], allow["request_id"]);
    assert!(
        !lines.iter().any(|l| l.contains(&token)),
        "a token in the audit trail"
    );
    // Written once: the main log keeps its access lines but not the audit lines.
    let log = s.gw.log();
    assert!(!log.contains("mcp decision"), "{log}");
    let access = log
        .lines()
        .find(|l| l.contains("mcpgate::access") && l.contains(CALLER_TRACE))
        .expect("access line with the trace id");
    assert_unique_keys(access);
    let access: Value = serde_json::from_str(access).unwrap();
    assert_eq!(access["request_id"], allow["request_id"]);
}

#[tokio::test]
async fn forged_or_malformed_trace_context_restarts_the_trace() {
    let (otlp, _spans) = otlp_receiver().await;
    let s = setup(&format!("tracing: {{ otlp_endpoint: \"{otlp}\" }}")).await;
    let token = s.token();
    let call = jsonrpc(1, "tools/call", json!({"name": "echo"}));
    let bad = [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // all-zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
        "garbage\u{7f}",
    ];
    for tp in bad {
        let mut req = mcp_post(&client(), &s.gw.url("/mcp"), &call).bearer_auth(&token);
        if let Ok(v) = reqwest::header::HeaderValue::from_str(tp) {
            req = req.header("traceparent", v);
        }
        assert_eq!(req.send().await.unwrap().status(), 200, "{tp}");
    }
    for tp in s.upstream_seen.lock().unwrap().iter() {
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[0], "00");
        assert_ne!(parts[1], "0".repeat(32));
        assert_ne!(parts[1], CALLER_TRACE);
        assert!(parts[1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}

#[tokio::test]
async fn certificate_expiry_is_reported_per_listener_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["mcp.test".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2031, 5, 17);
    let cert = params.self_signed(&key).unwrap();
    write_file(dir.path(), "e.pem", &cert.pem());
    write_file(dir.path(), "e.key", &key.serialize_pem());
    let cert_path = dir.path().join("e.pem");
    let mut gw = Gw::start_in(
        dir,
        "public_url: https://mcp.test:{port}\nlisteners:\n  - bind: 127.0.0.1:{port}\n    tls:\n      certificates:\n        - { cert: e.pem, key: e.key }\nadmin: { bind: \"127.0.0.1:{admin}\" }\nroutes:\n  - name: main\n    path: /mcp\n    upstream: { url: \"http://127.0.0.1:9/mcp\" }\n    auth: none\n",
    );
    gw.ready().await;
    let text = gw.metrics().await;
    let name = format!(
        "mcpgate_certificate_expiry_seconds{{cert=\"{}\",listener=\"127.0.0.1:{}\"}}",
        cert_path.display(),
        gw.port
    );
    // 2031-05-17T00:00:00Z
    assert_eq!(series(&text, &name), 1_936_742_400.0, "{text}");
}
