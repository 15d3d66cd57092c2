//! Rate limits end to end: budgets per subject and per tool, the unauthenticated budget that
//! stops a flood of junk tokens before any token work, the 429 answer's shape, and budgets in a
//! real Redis shared by two gateway processes, including Redis going away and coming back.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{client, jsonrpc, mcp_post, Gw};
use mcpgate_sample::{DemoIssuer, McpServerOptions, SampleMcpServer};
use serde_json::{json, Value};

/// Tokens name this audience (accepted by the issuer's `audiences`), so one token works on
/// every gateway process of a test whatever its port.
const AUDIENCE: &str = "urn:mcpgate-test";

struct Peers {
    issuer: DemoIssuer,
    up: SampleMcpServer,
}

impl Peers {
    async fn start() -> Peers {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Peers {
            issuer: DemoIssuer::start(loopback).await.unwrap(),
            up: SampleMcpServer::start(loopback, McpServerOptions::default())
                .await
                .unwrap(),
        }
    }

    /// A gateway in front of the peers with this `rate_limits` section.
    async fn gateway(&self, rate_limits: &str) -> Gw {
        let yaml = format!(
            r#"public_url: http://127.0.0.1:{{port}}
listeners:
  - bind: 127.0.0.1:{{port}}
admin:
  bind: 127.0.0.1:{{admin}}
issuers:
  - name: local
    issuer: {iss}
    jwks_uri: {iss}/jwks
    algorithms: [ES256]
    audiences: ["{AUDIENCE}"]
    introspection:
      endpoint: {iss}/introspect
      client_id: demo-client
      client_secret: demo-secret
      timeout: 2s
routes:
  - name: main
    path: /mcp
    upstream: {{ url: "{up}" }}
    auth: {{ issuers: [local] }}
{rate_limits}"#,
            iss = self.issuer.issuer_url(),
            up = self.up.url(),
        );
        let mut gw = Gw::start(&yaml);
        gw.ready().await;
        gw
    }

    fn token(&self, sub: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.issuer.mint(json!({
            "iss": self.issuer.issuer_url(), "sub": sub, "aud": AUDIENCE,
            "exp": now + 300, "iat": now, "scope": "mcp:read",
        }))
    }
}

async fn post(gw: &Gw, token: Option<&str>, body: &Value) -> reqwest::Response {
    let c = client();
    let mut req = mcp_post(&c, &gw.url("/mcp"), body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn list(id: i64) -> Value {
    jsonrpc(id, "tools/list", json!({}))
}

fn call(id: i64, tool: &str) -> Value {
    jsonrpc(
        id,
        "tools/call",
        json!({"name": tool, "arguments": {"text": "hi"}}),
    )
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The counter of `mcpgate_rate_limit_decisions_total` for a rule and decision (0 if none).
async fn decisions(gw: &Gw, rule: &str, decision: &str) -> u64 {
    gw.counter(&format!(
        "mcpgate_rate_limit_decisions_total{{decision=\"{decision}\",rule=\"{rule}\"}}"
    ))
    .await
}

/// One request an hour with a burst of 3: nothing refills while a test runs.
const PER_USER: &str = "rate_limits:
  rules:
    - { name: per-user, key: subject, rate: 1/h, burst: 3 }
";

#[tokio::test]
async fn each_subject_has_its_own_budget_and_a_refusal_is_a_429_with_the_ietf_headers() {
    let p = Peers::start().await;
    let gw = p.gateway(PER_USER).await;
    let (alice, bob) = (p.token("alice"), p.token("bob"));
    for remaining in [2, 1, 0] {
        let r = post(&gw, Some(&alice), &list(1)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-policy"), "\"per-user\";q=3;w=10800");
        assert!(
            header(&r, "ratelimit").starts_with(&format!("\"per-user\";r={remaining};t=")),
            "{}",
            header(&r, "ratelimit")
        );
    }
    let upstream_before = p.up.stats.requests();
    let r = post(&gw, Some(&alice), &list(4)).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!(
        (3500..=3600).contains(&retry),
        "one request an hour: {retry}"
    );
    assert_eq!(header(&r, "ratelimit-policy"), "\"per-user\";q=3;w=10800");
    assert!(header(&r, "ratelimit").starts_with("\"per-user\";r=0;t="));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32014);
    assert_eq!(body["error"]["data"]["reason"], "rate_limited");
    assert_eq!(
        p.up.stats.requests(),
        upstream_before,
        "refused before the upstream"
    );

    // Bob's budget is his own.
    for _ in 0..3 {
        assert_eq!(post(&gw, Some(&bob), &list(1)).await.status(), 200);
    }
    assert_eq!(post(&gw, Some(&bob), &list(1)).await.status(), 429);
    assert_eq!(decisions(&gw, "per-user", "allowed").await, 6);
    assert_eq!(decisions(&gw, "per-user", "limited").await, 2);
    assert!(gw.log().contains("rate_limited"), "audited:\n{}", gw.log());
}

#[tokio::test]
async fn a_tool_rule_counts_only_matching_tools_and_answers_with_the_request_id() {
    let p = Peers::start().await;
    let rules = "rate_limits:
  tools_call_answer: http_429
  rules:
    - { name: deletes, key: subject, tools: [\"delete_*\"], rate: 1/h, burst: 1 }
";
    let gw = p.gateway(rules).await;
    let alice = p.token("alice");
    assert_eq!(
        post(&gw, Some(&alice), &call(7, "delete_everything"))
            .await
            .status(),
        200
    );
    let r = post(&gw, Some(&alice), &call(8, "delete_everything")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "ratelimit-policy"), "\"deletes\";q=1;w=3600");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 8, "the request's own id");
    assert_eq!(body["error"]["data"]["reason"], "rate_limited");
    for id in 10..15 {
        let r = post(&gw, Some(&alice), &call(id, "echo")).await;
        assert_eq!(r.status(), 200, "other tools are not counted");
    }
    assert_eq!(post(&gw, Some(&alice), &list(20)).await.status(), 200);
    assert_eq!(p.up.stats.tool_calls("delete_everything"), 1);
    assert_eq!(p.up.stats.tool_calls("echo"), 5);

    // A chunked body is judged after request_filter; the same rule holds there.
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        serde_json::to_vec(&call(9, "delete_everything")).unwrap(),
    )]);
    let r = client()
        .post(gw.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&alice)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 9);
    assert_eq!(p.up.stats.tool_calls("delete_everything"), 1);
}

#[tokio::test]
async fn tools_call_answer_tool_error_gives_the_model_a_result_it_can_read() {
    let p = Peers::start().await;
    // tool_error is the default for tools/call.
    let rules = "rate_limits:
  rules:
    - { name: calls, key: subject, methods: [tools/call], rate: 1/h, burst: 1 }
";
    let gw = p.gateway(rules).await;
    let alice = p.token("alice");
    assert_eq!(
        post(&gw, Some(&alice), &call(1, "echo")).await.status(),
        200
    );
    let r = post(&gw, Some(&alice), &call(2, "echo")).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() > 0);
    assert!(header(&r, "ratelimit").starts_with("\"calls\";r=0;"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 2);
    assert_eq!(body["result"]["isError"], true);
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Retry after"), "{text}");
    assert_eq!(p.up.stats.tool_calls("echo"), 1);
}

#[tokio::test]
async fn a_flood_of_junk_tokens_costs_no_introspection_past_the_unauthenticated_budget() {
    let p = Peers::start().await;
    let rules = "rate_limits:
  unauthenticated: { rate: 1/h, burst: 3 }
";
    let gw = p.gateway(rules).await;
    let good = p.token("alice");
    // A good token spends nothing from the address's budget.
    for _ in 0..5 {
        assert_eq!(post(&gw, Some(&good), &list(1)).await.status(), 200);
    }
    let mut statuses = Vec::new();
    for i in 0..20 {
        let junk = format!("opaque-junk-{i}-{}", "x".repeat(20));
        statuses.push(post(&gw, Some(&junk), &list(1)).await.status().as_u16());
    }
    assert_eq!(&statuses[..3], [401, 401, 401], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(
        p.issuer.introspections(),
        3,
        "only the junk within the budget was introspected"
    );
    // Requests without any token charge the same budget and are refused as well.
    assert_eq!(post(&gw, None, &list(1)).await.status(), 429);
    assert_eq!(decisions(&gw, "unauthenticated", "limited").await, 18);
}

const SHARED: &str = "rate_limits:
  store: {redis}
  store_timeout: 300ms
  on_store_error: {policy}
  rules:
    - { name: per-user, key: subject, rate: 1/h, burst: 4 }
";

fn shared(redis: &Redis, policy: &str) -> String {
    SHARED
        .replace("{redis}", &redis.url())
        .replace("{policy}", policy)
}

#[tokio::test]
async fn two_gateways_on_one_redis_share_one_budget() {
    let redis = Redis::start();
    let p = Peers::start().await;
    let (a, b) = (
        p.gateway(&shared(&redis, "deny")).await,
        p.gateway(&shared(&redis, "deny")).await,
    );
    let alice = p.token("alice");
    let mut statuses = Vec::new();
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        statuses.push(post(gw, Some(&alice), &list(i)).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    // The budget lives under a hashed, hash-tagged key that names no subject.
    let keys = redis.command(&["KEYS", "*"]);
    assert!(keys.contains("mcpgate:rl:{"), "{keys}");
    assert!(!keys.contains("alice"), "{keys}");
    let ttl = redis.command(&["PTTL", key_in(&keys).as_str()]);
    assert!(
        ttl.starts_with(':') && !ttl.starts_with(":-"),
        "expires: {ttl}"
    );
}

/// The first `mcpgate:rl:{…}` key of a raw `KEYS` reply.
fn key_in(reply: &str) -> String {
    reply
        .lines()
        .map(str::trim_end)
        .find(|l| l.starts_with("mcpgate:rl:"))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn redis_going_away_follows_on_store_error_and_recovers() {
    let mut redis = Redis::start();
    let p = Peers::start().await;
    let deny = p.gateway(&shared(&redis, "deny")).await;
    let mut allow = p.gateway(&shared(&redis, "allow")).await;
    let alice = p.token("alice");
    assert_eq!(post(&deny, Some(&alice), &list(1)).await.status(), 200);
    assert_eq!(post(&allow, Some(&alice), &list(1)).await.status(), 200);

    redis.stop();
    let r = post(&deny, Some(&alice), &list(2)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "retry-after"), "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], Value::Null);
    assert_eq!(
        body["error"]["data"]["reason"],
        "rate_limit_store_unavailable"
    );
    for _ in 0..5 {
        assert_eq!(post(&allow, Some(&alice), &list(3)).await.status(), 200);
    }
    assert!(decisions(&deny, "per-user", "store_error_denied").await >= 1);
    assert!(decisions(&allow, "per-user", "store_error_allowed").await >= 5);
    let metrics = deny.metrics().await;
    assert!(
        metrics.contains("mcpgate_redis_errors_total{purpose=\"rate_limits\""),
        "Redis failures are metered:\n{metrics}"
    );
    assert!(
        deny.counter("mcpgate_redis_duration_seconds_count{purpose=\"rate_limits\"}")
            .await
            >= 2,
        "every round trip is timed"
    );
    assert!(allow.log().contains("rate-limit store did not answer"));
    assert!(allow.child.try_wait().unwrap().is_none(), "still running");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = post(&deny, Some(&alice), &list(4)).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "never recovered:\n{}",
            deny.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run tests/python/sdk_rate_limited.py against `gw` with the official MCP Python SDK pinned in
/// `requirements` (installed into target/`venv`).
async fn python_sdk_over_budget(gw: &Gw, token: String, requirements: &str, venv: &str) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let scripts = root.join("tests/python");
    let venv = std::process::Command::new("bash")
        .arg(scripts.join("ensure-venv.sh"))
        .arg(scripts.join(requirements))
        .arg(root.join("target").join(venv))
        .output()
        .expect("run ensure-venv.sh");
    assert!(
        venv.status.success(),
        "installing the MCP Python SDK failed:\n{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_string();
    let url = gw.url("/mcp");
    let script = scripts.join("sdk_rate_limited.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([url.as_str(), token.as_str(), "echo"])
            .output()
            .expect("run the SDK client")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "SDK client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    serde_json::from_slice(out.stdout.trim_ascii()).unwrap()
}

/// What the official Python SDK (2.x and 1.x) makes of each answer shape to a rate-limited
/// `tools/call` — the measurement behind `tools_call_answer`'s default (docs/configuration.md).
#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_over_budget_with_each_answer_shape() {
    let p = Peers::start().await;
    for shape in ["http_429", "tool_error"] {
        let rules = format!(
            "rate_limits:
  tools_call_answer: {shape}
  rules:
    - {{ name: calls, key: subject, methods: [tools/call], rate: 1/h, burst: 1 }}
"
        );
        let gw = p.gateway(&rules).await;
        let summary = python_sdk_over_budget(
            &gw,
            p.token(&format!("sdk-{shape}")),
            "requirements.txt",
            "py-venv",
        )
        .await;
        let sdk1 = python_sdk_over_budget(
            &gw,
            p.token(&format!("sdk1-{shape}")),
            "requirements-sdk1.txt",
            "py-venv-sdk1",
        )
        .await;
        eprintln!("{shape}: sdk 2.x {summary}\n{shape}: sdk 1.x {sdk1}");
        assert_eq!(summary["transport"], "ok", "{summary}");
        assert_eq!(summary["first_is_error"], false, "{summary}");
        assert_eq!(
            summary["after"], "usable",
            "the session survives: {summary}"
        );
        assert_eq!(sdk1["first_is_error"], false, "{sdk1}");
        if shape == "http_429" {
            // SDK 2.x raises the JSON-RPC error to the host application, not to the model.
            assert_eq!(summary["over"], "exception", "{summary}");
            let error = summary["over_error"].as_str().unwrap();
            assert!(error.contains("rate limit \"calls\" exceeded"), "{summary}");
            // SDK 1.x treats the 429 as a broken transport: the whole session dies.
            let transport = sdk1["transport"].as_str().unwrap();
            assert!(transport.starts_with("crashed: HTTPStatusError"), "{sdk1}");
            assert!(transport.contains("429"), "{sdk1}");
        } else {
            // Both read the refusal as the tool's result, which the model sees, and go on.
            for s in [&summary, &sdk1] {
                assert_eq!(s["transport"], "ok", "{s}");
                assert_eq!(s["over"], "tool_error", "{s}");
                assert!(
                    s["over_text"].as_str().unwrap().contains("Retry after"),
                    "{s}"
                );
                assert_eq!(s["after"], "usable", "{s}");
            }
        }
    }
    assert_eq!(
        p.up.stats.tool_calls("echo"),
        4,
        "one call per shape and SDK got through"
    );
}
