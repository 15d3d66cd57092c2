//! Sessions that hold across replicas and restarts (issue 13): two real gateway processes in
//! front of one real MCP server, with sealed session ids (a shared key ring) or bindings in a real
//! Redis. A session is its opener's on every replica and after a restart, and nobody else's;
//! forged, foreign, expired and retired-key ids are refused like unknown ones; a lost Redis
//! refuses (503) instead of letting sessions through unchecked, and recovers.

mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::redis::Redis;
use common::*;
use futures_util::StreamExt;
use mcpgate_sample::{DemoIssuer, McpServerOptions, SampleMcpServer};
use serde_json::{json, Value};

/// The address clients use for every replica (a load balancer's), so one token fits all.
const PUBLIC: &str = "http://mcp.test";

fn key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

/// The identity provider and the MCP server the gateways share. The server answers an
/// `Mcp-Session-Id` it did not mint with its own 404 (code −32001), so a 200 through the
/// gateway proves the upstream got its own id back.
struct World {
    issuer: DemoIssuer,
    up: SampleMcpServer,
}

impl World {
    async fn start() -> World {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        World {
            issuer: DemoIssuer::start(loopback).await.unwrap(),
            up: SampleMcpServer::start(loopback, McpServerOptions::default())
                .await
                .unwrap(),
        }
    }

    /// A replica with this `sessions:` section, ready.
    async fn gateway(&self, sessions: &str) -> Gw {
        let yaml = format!(
            r#"public_url: {PUBLIC}
listeners:
  - bind: 127.0.0.1:{{port}}
admin:
  bind: 127.0.0.1:{{admin}}
logging: {{ level: info }}
issuers:
  - name: local
    issuer: {iss}
    jwks_uri: {iss}/jwks
    algorithms: [ES256]
routes:
  - name: main
    path: /mcp
    upstream: {{ url: "{up}" }}
    auth: {{ issuers: [local] }}
  - name: other
    path: /other
    upstream: {{ url: "{up}" }}
    auth: {{ issuers: [local] }}
  - name: legacy
    path: /legacy
    upstream: {{ url: "{root}" }}
    auth: {{ issuers: [local] }}
sessions: {sessions}
"#,
            iss = self.issuer.issuer_url(),
            up = self.up.url(),
            root = self.up.url().trim_end_matches("/mcp"),
        );
        let mut gw = Gw::start(&yaml);
        gw.ready().await;
        gw
    }

    /// `sub`'s token for the route at `path`.
    fn token(&self, sub: &str, path: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.issuer.mint(json!({
            "iss": self.issuer.issuer_url(), "sub": sub, "aud": format!("{PUBLIC}{path}"),
            "exp": now + 300, "iat": now, "scope": "mcp:read",
        }))
    }

    fn sessions_created(&self) -> u64 {
        self.up.stats.sessions_created()
    }
}

/// `initialize` through `gw`; the session id the client gets.
async fn open(gw: &Gw, token: &str, path: &str) -> String {
    let params = json!({"protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "sessions-test", "version": "1"}});
    let r = mcp_post(&client(), &gw.url(path), &jsonrpc(1, "initialize", params))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "initialize: {}", gw.log());
    r.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

/// `ping` in session `sid`: the status and the JSON-RPC answer.
async fn ping(gw: &Gw, token: &str, path: &str, sid: &str) -> (u16, Value) {
    let r = mcp_post(&client(), &gw.url(path), &jsonrpc(2, "ping", json!({})))
        .bearer_auth(token)
        .header("mcp-session-id", sid)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Refused by the gateway as an unknown session (not by the upstream, whose code is −32001).
#[track_caller]
fn assert_not_found(answer: &(u16, Value), what: &str) {
    assert_eq!(answer.0, 404, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"]["code"], -32011, "{what}: {}", answer.1);
    assert_eq!(
        answer.1["error"]["data"]["reason"], "session_not_found",
        "{what}: the client is never told which check failed"
    );
}

#[track_caller]
fn assert_ok(answer: &(u16, Value), what: &str) {
    assert_eq!(answer.0, 200, "{what}: {}", answer.1);
    assert_eq!(answer.1["result"], json!({}), "{what}");
}

fn sealed(ring: &[u8]) -> String {
    let keys: Vec<String> = ring.iter().map(|b| format!("\"{}\"", key(*b))).collect();
    format!("{{ mode: sealed, keys: [{}] }}", keys.join(", "))
}

#[tokio::test]
async fn sealed_sessions_hold_across_replicas_and_restarts() {
    let w = World::start().await;
    let config = sealed(&[1]);
    let mut a = w.gateway(&config).await;
    let b = w.gateway(&config).await;
    let (alice, bob) = (w.token("alice", "/mcp"), w.token("bob", "/mcp"));

    let sid = open(&a, &alice, "/mcp").await;
    assert!(sid.starts_with("s1."), "the client gets a sealed id: {sid}");
    assert_eq!(
        a.counter("mcpgate_sessions_started_total{route=\"main\"}")
            .await,
        1
    );
    assert!(sid.bytes().all(|c| c.is_ascii_graphic()));
    assert_ok(
        &ping(&b, &alice, "/mcp", &sid).await,
        "Alice on the other replica",
    );
    assert_ok(
        &ping(&a, &alice, "/mcp", &sid).await,
        "Alice where she opened it",
    );

    for _ in 0..2 {
        let answer = ping(&b, &bob, "/mcp", &sid).await;
        assert_not_found(&answer, "Bob with Alice's id");
    }
    assert!(b.log().contains("session_owner_mismatch"), "audited");
    assert_ok(&ping(&b, &alice, "/mcp", &sid).await, "Bob claimed nothing");

    // Restart replica A: same configuration, nothing remembered in between.
    drop(std::mem::replace(&mut a, w.gateway(&config).await));
    assert_ok(
        &ping(&a, &alice, "/mcp", &sid).await,
        "Alice after a restart",
    );
    assert_not_found(&ping(&a, &bob, "/mcp", &sid).await, "Bob after a restart");
    assert_eq!(w.sessions_created(), 1, "one session, Alice's");

    // DELETE reaches the upstream with its own id and ends the session there.
    let r = client()
        .delete(b.url("/mcp"))
        .bearer_auth(&alice)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(w.up.stats.sessions_deleted(), 1);
    let gone = ping(&a, &alice, "/mcp", &sid).await;
    assert_eq!(gone.0, 404);
    assert_eq!(gone.1["error"]["code"], -32001, "the upstream's own 404");
}

#[tokio::test]
async fn callers_without_sub_own_sealed_sessions_by_their_token() {
    let w = World::start().await;
    let gw = w.gateway(&sealed(&[1])).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let machine = |jti: &str| {
        w.issuer.mint(json!({
            "iss": w.issuer.issuer_url(), "client_id": "shared-cli", "jti": jti,
            "aud": format!("{PUBLIC}/mcp"), "exp": now + 300, "iat": now,
        }))
    };
    let (first, second) = (machine("a"), machine("b"));
    let sid = open(&gw, &first, "/mcp").await;
    assert_ok(&ping(&gw, &first, "/mcp", &sid).await, "the opener's token");
    assert_not_found(
        &ping(&gw, &second, "/mcp", &sid).await,
        "another token of the same client",
    );
}

#[tokio::test]
async fn forged_foreign_and_garbage_sealed_ids_are_refused() {
    let w = World::start().await;
    let gw = w.gateway(&sealed(&[1])).await;
    let alice = w.token("alice", "/mcp");
    let sid = open(&gw, &alice, "/mcp").await;

    let body = &sid[3..];
    let mid = body.len() / 2;
    let flipped = if &body[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("s1.{}{flipped}{}", &body[..mid], &body[mid + 1..]);
    let other_ring = open(&w.gateway(&sealed(&[9])).await, &alice, "/mcp").await;
    for (what, bad) in [
        ("tampered", tampered),
        ("truncated", sid[..sid.len() - 4].to_string()),
        ("extended", format!("{sid}AAAA")),
        ("another version", sid.replacen("s1.", "s2.", 1)),
        ("garbage", "hello".to_string()),
        ("sealed by a gateway with other keys", other_ring),
    ] {
        assert_not_found(&ping(&gw, &alice, "/mcp", &bad).await, what);
    }
    assert!(gw.log().contains("session_unknown"));

    // Alice's own id, on another route (same upstream, her valid token for that route).
    let alice_other = w.token("alice", "/other");
    let foreign = ping(&gw, &alice_other, "/other", &sid).await;
    assert_not_found(&foreign, "another route");
    assert!(gw.log().contains("session_foreign"));
    assert_ok(
        &ping(&gw, &alice, "/mcp", &sid).await,
        "the real one still works",
    );
}

#[tokio::test]
async fn rotated_keys_open_old_sessions_until_the_old_key_is_removed() {
    let w = World::start().await;
    let alice = w.token("alice", "/mcp");
    let (old, new) = (1, 2);
    let before = w.gateway(&sealed(&[old])).await;
    let under_old = open(&before, &alice, "/mcp").await;
    drop(before);

    let rotating = w.gateway(&sealed(&[new, old])).await;
    assert_ok(
        &ping(&rotating, &alice, "/mcp", &under_old).await,
        "old key still in the ring",
    );
    let under_new = open(&rotating, &alice, "/mcp").await;
    drop(rotating);

    let retired = w.gateway(&sealed(&[new])).await;
    assert_not_found(
        &ping(&retired, &alice, "/mcp", &under_old).await,
        "old key removed",
    );
    assert_ok(
        &ping(&retired, &alice, "/mcp", &under_new).await,
        "sealed with the new key",
    );
}

#[tokio::test]
async fn sealed_ids_expire_after_their_max_age() {
    let w = World::start().await;
    let gw = w
        .gateway(&format!("{{ keys: [\"{}\"], max_age: 1s }}", key(1)))
        .await;
    let alice = w.token("alice", "/mcp");
    let sid = open(&gw, &alice, "/mcp").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = ping(&gw, &alice, "/mcp", &sid).await;
        if answer.0 == 404 {
            assert_not_found(&answer, "expired");
            break;
        }
        assert_ok(&answer, "young enough");
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gw.log().contains("session_expired"));
}

/// The next complete SSE event of `stream` (10 s at most).
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
) -> String {
    loop {
        if let Some(end) = buf.find("\n\n") {
            return buf.drain(..end + 2).collect();
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is open")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn legacy_sse_sessions_are_sealed_too() {
    let w = World::start().await;
    let config = sealed(&[1]);
    let a = w.gateway(&config).await;
    let b = w.gateway(&config).await;
    let (alice, bob) = (w.token("alice", "/legacy"), w.token("bob", "/legacy"));
    let sse = client()
        .get(a.url("/legacy/sse"))
        .header("accept", "text/event-stream")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let mut stream = sse.bytes_stream();
    let mut buf = String::new();
    let event = next_event(&mut stream, &mut buf).await;
    let endpoint = event
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap()
        .to_owned();
    assert!(
        endpoint.starts_with("/legacy/messages?mcpgate_session=s1.")
            && !endpoint.contains("sessionId"),
        "the upstream's session query is sealed: {endpoint}"
    );
    let post = |gw: &Gw, token: &str| {
        mcp_post(
            &client(),
            &gw.url(&endpoint),
            &jsonrpc(9, "tools/list", json!({})),
        )
        .bearer_auth(token.to_owned())
        .send()
    };
    let theirs = post(&b, &bob).await.unwrap();
    assert_eq!(theirs.status(), 404, "Bob cannot post into Alice's session");
    let v: Value = theirs.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32011);
    // Alice, through the other replica: the upstream gets its own `?sessionId=` and answers on
    // her stream.
    let mine = post(&b, &alice).await.unwrap();
    assert_eq!(mine.status(), 202);
    let answer = next_event(&mut stream, &mut buf).await;
    assert!(
        answer.contains("\"id\":9") && answer.contains("tools"),
        "{answer}"
    );
}

/// The Redis keys of live bindings (`KEYS` is fine on a test's own Redis).
fn binding_keys(redis: &Redis) -> Vec<String> {
    redis
        .command(&["KEYS", "mcpgate:session:*"])
        .lines()
        .filter(|l| l.starts_with("mcpgate:session:"))
        .map(str::to_owned)
        .collect()
}

fn in_redis(redis: &Redis) -> String {
    format!("{{ mode: redis, redis: \"{}\" }}", redis.url())
}

#[tokio::test]
async fn redis_bindings_hold_across_replicas_and_restarts_and_can_be_revoked() {
    let redis = Redis::start();
    let w = World::start().await;
    let config = in_redis(&redis);
    let mut a = w.gateway(&config).await;
    let b = w.gateway(&config).await;
    let (alice, bob) = (w.token("alice", "/mcp"), w.token("bob", "/mcp"));

    let sid = open(&a, &alice, "/mcp").await;
    assert!(!sid.starts_with("s1."), "the upstream's own id");
    let keys = binding_keys(&redis);
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(&sid), "the id is not stored, its hash is");
    let ttl: i64 = redis
        .command(&["PTTL", &keys[0]])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 3_600_000, "the route's idle time: {ttl}");

    assert_ok(
        &ping(&b, &alice, "/mcp", &sid).await,
        "Alice on the other replica",
    );
    assert_not_found(&ping(&b, &bob, "/mcp", &sid).await, "Bob with Alice's id");
    assert_ok(&ping(&a, &alice, "/mcp", &sid).await, "Bob claimed nothing");

    drop(std::mem::replace(&mut a, w.gateway(&config).await));
    assert_ok(
        &ping(&a, &alice, "/mcp", &sid).await,
        "Alice after a restart",
    );
    assert_not_found(&ping(&a, &bob, "/mcp", &sid).await, "Bob after a restart");

    // An operator revokes the session: its key goes, and the id is unknown everywhere.
    redis.command(&["DEL", &keys[0]]);
    assert_not_found(&ping(&b, &alice, "/mcp", &sid).await, "revoked");
    assert!(b.log().contains("session_unknown"));

    // DELETE through any replica removes the binding.
    let second = open(&b, &alice, "/mcp").await;
    assert_eq!(binding_keys(&redis).len(), 1);
    let r = client()
        .delete(a.url("/mcp"))
        .bearer_auth(&alice)
        .header("mcp-session-id", &second)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(binding_keys(&redis).is_empty());
}

#[tokio::test]
async fn a_lost_redis_refuses_sessions_and_recovers() {
    let mut redis = Redis::start();
    let w = World::start().await;
    let mut gw = w.gateway(&in_redis(&redis)).await;
    let alice = w.token("alice", "/mcp");
    let sid = open(&gw, &alice, "/mcp").await;
    assert_ok(&ping(&gw, &alice, "/mcp", &sid).await, "Redis up");

    redis.stop();
    for who in ["alice", "bob"] {
        let (status, body) = ping(&gw, &w.token(who, "/mcp"), "/mcp", &sid).await;
        assert_eq!(status, 503, "{who}: {body}");
        assert_eq!(body["error"]["code"], -32003);
        assert_eq!(body["error"]["data"]["reason"], "session_store_unavailable");
    }
    // A session opened now cannot be bound: it is never usable, not usable by anyone.
    let unbound = open(&gw, &alice, "/mcp").await;
    assert!(gw.child.try_wait().unwrap().is_none(), "still running");
    let health = client().get(gw.admin("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(gw.log().contains("session_store_unavailable"));
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("mcpgate_redis_errors_total{purpose=\"sessions\""),
        "Redis failures are metered:\n{metrics}"
    );

    // Redis returns, empty (no persistence): the gateway reconnects by itself; bindings that
    // lived only in the lost Redis are unknown now, and new sessions work.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let answer = ping(&gw, &alice, "/mcp", &sid).await;
        if answer.0 != 503 {
            break answer;
        }
        assert!(Instant::now() < deadline, "never recovered:\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_not_found(&answer, "binding lost with Redis's memory");
    assert_not_found(
        &ping(&gw, &alice, "/mcp", &unbound).await,
        "opened while Redis was down: never bound",
    );
    let fresh = open(&gw, &alice, "/mcp").await;
    assert_ok(&ping(&gw, &alice, "/mcp", &fresh).await, "after recovery");
}
