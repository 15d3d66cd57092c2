//! End-to-end: the real gateway proxying MCP Streamable HTTP and legacy HTTP+SSE to a real
//! sample MCP server — headers, streaming without buffering, routing and path attacks,
//! limits, upstream failures, admin endpoints and graceful shutdown.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use mcpgate_sample::SampleMcpServer;
use serde_json::{json, Value};

fn config(routes: &str, extra: &str) -> String {
    format!(
        "public_url: http://127.0.0.1:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\n{extra}admin:\n  bind: 127.0.0.1:{{admin}}\nshutdown:\n  grace_period: 10s\nroutes:\n{routes}"
    )
}

fn open_route(name: &str, path: &str, upstream_url: &str, extra: &str) -> String {
    format!("  - name: {name}\n    path: {path}\n    upstream:\n      url: {upstream_url}\n{extra}    auth: none\n")
}

async fn gateway_for(up: &SampleMcpServer) -> Gw {
    gateway_with(up, "/github/mcp", "").await
}

/// A ready gateway with one open route at `path` to `up`, plus `extra` top-level configuration.
async fn gateway_with(up: &SampleMcpServer, path: &str, extra: &str) -> Gw {
    let mut gw = Gw::start(&config(&open_route("main", path, &up.url(), ""), extra));
    gw.ready().await;
    gw
}

#[tokio::test(flavor = "multi_thread")]
async fn json_round_trip_and_header_handling() {
    let up = sample_upstream().await;
    let gw = gateway_for(&up).await;
    let c = client();

    let init = mcp_post(&c, &gw.url("/github/mcp"), &jsonrpc(1, "initialize", json!({
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}
    })))
    .header("authorization", "Bearer should-never-reach-upstream")
    .header("x-forwarded-for", "6.6.6.6")
    .header("x-mcp-subject", "spoofed")
    .header("connection", "x-secret")
    .header("x-secret", "hop")
    .send()
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init
        .headers()
        .get("mcp-session-id")
        .expect("session id passes back")
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = init.json().await.unwrap();
    assert_eq!(body["result"]["serverInfo"]["name"], "mcpgate-sample");

    let seen = up.stats.last_headers();
    assert!(
        seen.get("authorization").is_none(),
        "client token must not reach the upstream"
    );
    assert_eq!(
        seen.get("x-forwarded-for").unwrap(),
        "127.0.0.1",
        "spoofed XFF replaced"
    );
    assert_eq!(seen.get("x-forwarded-proto").unwrap(), "http");
    assert!(seen.get("x-mcp-subject").is_none());
    assert!(
        seen.get("x-secret").is_none(),
        "Connection-listed header is hop-by-hop"
    );

    let call = mcp_post(
        &c,
        &gw.url("/github/mcp"),
        &jsonrpc(
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
        ),
    )
    .header("mcp-session-id", &session)
    .header("mcp-protocol-version", "2025-06-18")
    .header("mcp-method", "tools/call")
    .header("mcp-name", "echo")
    .header("mcp-param-region", "eu")
    .send()
    .await
    .unwrap();
    assert_eq!(call.status(), 200);
    let body: Value = call.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "hi");
    let seen = up.stats.last_headers();
    for (h, v) in [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
        ("mcp-param-region", "eu"),
    ] {
        assert_eq!(
            seen.get(h).map(|v| v.to_str().unwrap()),
            Some(v),
            "{h} passes through"
        );
    }
    assert_eq!(up.stats.tool_calls("echo"), 1);

    let del = c
        .delete(gw.url("/github/mcp"))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let again = c
        .delete(gw.url("/github/mcp"))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        404,
        "upstream's 404 for a gone session is passed through"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_events_arrive_as_written_not_buffered() {
    let up = sample_upstream().await; // events 200 ms apart by default
    let gw = gateway_for(&up).await;
    let c = client();
    let started = Instant::now();
    let resp = mcp_post(
        &c,
        &gw.url("/github/mcp"),
        &jsonrpc(
            3,
            "tools/call",
            json!({"name": "slow_count", "arguments": {"n": 4}}),
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let ev: String = buf.drain(..end + 2).collect();
            if ev.contains("data:") {
                arrivals.push(started.elapsed());
            }
        }
    }
    assert_eq!(arrivals.len(), 5, "4 progress events and the result");
    let total = *arrivals.last().unwrap();
    assert!(
        total >= Duration::from_millis(700),
        "upstream paces the events: {arrivals:?}"
    );
    // Buffering would make every event arrive together at the end.
    assert!(
        total - arrivals[0] >= Duration::from_millis(500),
        "first event came early: {arrivals:?}"
    );
    for w in arrivals.windows(2).take(3) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(120),
            "events ~200 ms apart, got {gap:?} in {arrivals:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_stream_passes_last_event_id() {
    let up = sample_upstream().await;
    let gw = gateway_for(&up).await;
    let c = client();
    let resp = c
        .get(gw.url("/github/mcp"))
        .header("accept", "text/event-stream")
        .header("last-event-id", "evt-41")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("evt-41"));
    assert_eq!(
        up.stats.last_headers().get("last-event-id").unwrap(),
        "evt-41"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_sse_endpoint_points_at_the_gateway() {
    let up = sample_upstream().await;
    let upstream_root = format!("http://{}", up.addr);
    let mut gw = Gw::start(&config(
        &open_route("legacy", "/legacy", &upstream_root, ""),
        "",
    ));
    gw.ready().await;
    let c = client();
    let resp = c
        .get(gw.url("/legacy/sse"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let endpoint = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(end) = buf.find("\n\n") {
            let ev: String = buf.drain(..end + 2).collect();
            assert!(ev.contains("event: endpoint"), "{ev}");
            let data = ev
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap()
                .to_string();
            break data;
        }
    };
    assert!(
        endpoint.starts_with("/legacy/messages?sessionId="),
        "rewritten to the gateway path: {endpoint}"
    );
    let post = mcp_post(&c, &gw.url(&endpoint), &jsonrpc(9, "tools/list", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 202);
    let answer = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(end) = buf.find("\n\n") {
            let ev: String = buf.drain(..end + 2).collect();
            if ev.contains("event: message") {
                break ev;
            }
        }
    };
    assert!(
        answer.contains("\"id\":9") && answer.contains("echo"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_and_path_normalisation_attacks() {
    let a = sample_upstream().await;
    let b = sample_upstream().await;
    let routes = open_route("a", "/a/mcp", &a.url(), "") + &open_route("b", "/b/mcp", &b.url(), "");
    let mut gw = Gw::start(&config(&routes, ""));
    gw.ready().await;
    let c = client();

    let r = c.get(gw.url("/nothing/here")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "no_route");

    for (path, want) in [
        ("/a/mcp/../admin", 404),
        ("/a/mcp/%2e%2e/admin", 404),
        ("/a/mcp/%2E%2E/%2e%2e/b/mcp/x", 404), // resolves to /a/b/mcp/x: no route, never route b
        ("/a/mcp;/../../b/mcp", 400),
        ("/a/mcp%2f..%2f..%2fb%2fmcp", 400),
        ("/a/mcp/..%5c..%5cb", 400),
        ("/../a/mcp", 400),
        ("/a/mcp%00", 400),
        ("/a/mcpx", 404),
    ] {
        let (status, text) = raw_get(gw.port, path);
        assert_eq!(status, want, "{path}: {text}");
    }
    let before_b = b.stats.requests();
    // Double slashes collapse: still route a, and only a's upstream sees it.
    let (status, _) = raw_http(
        SocketAddr::from(([127, 0, 0, 1], gw.port)),
        "POST //a//mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
    );
    assert_eq!(status, 200);
    assert_eq!(b.stats.requests(), before_b, "nothing leaked to route b");
    assert_eq!(
        a.stats.last_path(),
        "/mcp",
        "upstream path replaces the route path"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn size_limits() {
    let up = sample_upstream().await;
    let gw = gateway_with(
        &up,
        "/mcp",
        "limits:\n  max_request_body: 1KiB\n  max_request_headers: 8KiB\n",
    )
    .await;
    let c = client();
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x".repeat(4096)}}});
    let before = up.stats.requests();
    let r = mcp_post(&c, &gw.url("/mcp"), &big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        up.stats.requests(),
        before,
        "refused before reaching the upstream"
    );

    // Chunked (no Content-Length) over the limit is cut too.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..8)
        .map(|_| Ok(bytes::Bytes::from(vec![b' '; 512])))
        .collect();
    let r = c
        .post(gw.url("/mcp"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => panic!("expected a 413 answer, got {e}"),
    }

    let r = c
        .get(gw.url("/mcp"))
        .header("x-big", "y".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);

    let ok = mcp_post(&c, &gw.url("/mcp"), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the gateway still serves");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_and_hanging_upstreams_get_502_and_504() {
    // Refused: nothing listens on this port.
    let (_refusing, dead_port) = refusing_port();
    let dead = format!("http://127.0.0.1:{dead_port}/mcp");
    // Hanging: accepts connections, never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}/mcp", hang.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for s in hang.incoming().take(4) {
            conns.push(s);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let up = sample_upstream().await;
    let timeouts = "      timeouts: { connect: 1s, request: 1s, stream_idle: 2s }\n";
    let routes = open_route("dead", "/dead", &dead, timeouts)
        + &open_route("hang", "/hang", &hang_url, timeouts)
        + &open_route("ok", "/ok", &up.url(), "");
    let mut gw = Gw::start(&config(&routes, ""));
    gw.ready().await;
    let c = client();

    let r = mcp_post(&c, &gw.url("/dead"), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "upstream_unreachable");

    let t = Instant::now();
    let r = mcp_post(&c, &gw.url("/hang"), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(t.elapsed() < Duration::from_secs(10));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "upstream_timeout");

    let r = mcp_post(&c, &gw.url("/ok"), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the gateway stays up");
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxy_forwarding_chain() {
    let up = sample_upstream().await;
    let mut gw = Gw::start(&config(
        &open_route("main", "/mcp", &up.url(), ""),
        "    trusted_proxies: [127.0.0.1]\n",
    ));
    gw.ready().await;
    let c = client();
    let r = mcp_post(&c, &gw.url("/mcp"), &jsonrpc(1, "ping", json!({})))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "mcp.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = up.stats.last_headers();
    assert_eq!(
        seen.get("x-forwarded-for").unwrap(),
        "203.0.113.9, 127.0.0.1"
    );
    assert_eq!(seen.get("x-forwarded-proto").unwrap(), "https");
    assert_eq!(seen.get("x-forwarded-host").unwrap(), "mcp.example.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints() {
    let up = sample_upstream().await;
    let gw = gateway_for(&up).await;
    let c = client();
    assert_eq!(
        c.get(gw.admin("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(gw.admin("/readyz")).send().await.unwrap().status(),
        200
    );
    let _ = mcp_post(&c, &gw.url("/github/mcp"), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    // The request is counted when its log phase ends, just after the answer: poll.
    let want = "mcpgate_requests_total{route=\"main\",status=\"200\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = gw.metrics().await;
        if metrics.contains(want) {
            assert!(
                metrics.contains("mcpgate_request_duration_seconds_bucket"),
                "{metrics}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{want} never appeared:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Admin paths are not served on the public listener.
    assert_eq!(
        c.get(gw.url("/metrics")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_streams_then_exits_zero() {
    let up = sample_upstream().await;
    let mut gw = gateway_for(&up).await;
    let c = client();
    let resp = mcp_post(
        &c,
        &gw.url("/github/mcp"),
        &jsonrpc(
            3,
            "tools/call",
            json!({"name": "slow_count", "arguments": {"n": 5}}),
        ),
    )
    .send()
    .await
    .unwrap();
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    sigterm(gw.pid());
    let mut rest = String::new();
    while let Some(chunk) = stream.next().await {
        rest.push_str(
            std::str::from_utf8(&chunk.expect("stream completes during the drain")).unwrap(),
        );
    }
    assert!(
        rest.contains("\"result\""),
        "the in-flight stream finished: {rest}"
    );
    let status = wait_exit(&mut gw.child, Duration::from_secs(15)).expect("exits after draining");
    assert!(status.success(), "exit code 0: {status}\n{}", gw.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_client_body_is_cut_by_the_read_timeout() {
    use std::io::{Read, Write};
    let up = sample_upstream().await;
    let mut gw = Gw::start(&config(
        &open_route("main", "/mcp", &up.url(), ""),
        "limits:\n  client_read_timeout: 1s\n",
    ));
    gw.ready().await;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf); // returns when the gateway gives up on us
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "connection held for {waited:?}"
    );
    // The gateway is still serving others.
    let c = client();
    let ok = mcp_post(&c, &gw.url("/mcp"), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// An HTTP/2 client with prior knowledge (h2c: no TLS, no upgrade).
fn h2c_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_listener_speaks_http2_with_prior_knowledge() {
    let up = sample_upstream().await;
    let gw = gateway_with(&up, "/mcp", "    h2c: true\n").await;
    let call = jsonrpc(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "over h2c"}}),
    );
    let r = mcp_post(&h2c_client(), &gw.url("/mcp"), &call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "over h2c");
    assert_eq!(up.stats.tool_calls("echo"), 1);
    // HTTP/1.1 clients are still served on the same listener.
    let r = mcp_post(&client(), &gw.url("/mcp"), &jsonrpc(2, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);

    // Without `h2c`, a plaintext listener speaks HTTP/1.1 only.
    let plain = gateway_for(&up).await;
    let r = mcp_post(
        &h2c_client(),
        &plain.url("/github/mcp"),
        &jsonrpc(3, "ping", json!({})),
    )
    .send()
    .await;
    assert!(
        r.is_err(),
        "HTTP/2 prior knowledge must fail without h2c: {r:?}"
    );
    assert_eq!(up.stats.tool_calls("echo"), 1);
}

/// A 1 MiB text that is not one byte repeated, so a dropped, doubled or reordered read shows.
fn patterned(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + ((i * 7 + i / 4096) % 26) as u8))
        .collect()
}

/// mcpgate's pingora patch reads answer bodies in buffers that start at 4 KiB and grow as reads
/// fill them (vendor/README.md). Every framing an upstream can use must still arrive byte for
/// byte: Content-Length (JSON), chunked (SSE) and delimited by the upstream closing.
#[tokio::test(flavor = "multi_thread")]
async fn large_answers_arrive_intact_in_every_framing() {
    let text = patterned(1024 * 1024);

    // An upstream that answers once with a close-delimited body: no Content-Length, no chunking.
    let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_addr = raw.local_addr().unwrap();
    let close_body = text.clone();
    let raw_task = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut sock, _) = raw.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the request head and its small body before answering.
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") || !seen.ends_with(b"}") {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "gateway closed before sending the request");
            seen.extend_from_slice(&buf[..n]);
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n";
        sock.write_all(head.as_bytes()).await.unwrap();
        // Written in uneven pieces so the gateway sees partial and full reads.
        for piece in close_body.as_bytes().chunks(10_007) {
            sock.write_all(piece).await.unwrap();
        }
        sock.shutdown().await.unwrap();
    });

    let up = sample_upstream().await;
    let routes = open_route("main", "/github/mcp", &up.url(), "")
        + &open_route("raw", "/raw/mcp", &format!("http://{raw_addr}/mcp"), "");
    let mut gw = Gw::start(&config(&routes, ""));
    gw.ready().await;
    let c = client();
    let call = jsonrpc(
        9,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": text}}),
    );

    // Content-Length: a JSON answer of over 1 MiB.
    let r = mcp_post(&c, &gw.url("/github/mcp"), &call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["result"]["content"][0]["text"],
        text.as_str(),
        "JSON answer"
    );

    // Chunked: the same answer as an SSE stream.
    let r = mcp_post(&c, &gw.url("/github/mcp"), &call)
        .header("x-sample-stream", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let data = body
        .split("\n\n")
        .filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("data: ")))
        .find(|d| d.contains("\"result\""))
        .expect("the result event");
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        v["result"]["content"][0]["text"],
        text.as_str(),
        "SSE answer"
    );

    // Close-delimited.
    let r = mcp_post(&c, &gw.url("/raw/mcp"), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), text, "close-delimited answer");
    raw_task.await.unwrap();
}

/// Logs written to a file (the harness's stdout is one) read as plain text: no colour escape
/// codes, and durations in whole microseconds rather than float noise.
#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_file_are_plain_text_with_round_durations() {
    let up = sample_upstream().await;
    let gw = gateway_for(&up).await;
    let r = mcp_post(
        &client(),
        &gw.url("/github/mcp"),
        &jsonrpc(1, "ping", json!({})),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.log().contains("duration_ms=") {
        assert!(Instant::now() < deadline, "no access line:\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = gw.log();
    assert!(!log.contains('\u{1b}'), "escape codes in a file:\n{log}");
    for value in log.split("duration_ms=").skip(1) {
        let number = value.split_whitespace().next().unwrap();
        let decimals = number.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "duration_ms={number}");
    }
}

/// An upstream that takes one request and never answers: it says when the whole request has
/// arrived, then when the gateway closes the connection.
async fn silent_upstream() -> (
    String,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // The request body is one JSON object: it has arrived when the bytes end with its brace.
        while !seen.ends_with(b"}") {
            match conn.read(&mut buf).await {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let _ = arrived_tx.send(());
        // Never answer; a read of 0 bytes (or an error) is the gateway letting go.
        while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    (url, arrived, closed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_while_waiting_frees_the_upstream_connection() {
    let (url, arrived, closed) = silent_upstream().await;
    let mut gw = Gw::start(&config(&silent_route(&url), ""));
    gw.ready().await;
    let body = jsonrpc(1, "tools/call", json!({"name": "echo", "arguments": {}})).to_string();
    let request = format!(
        "POST /silent HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut client, request.as_bytes())
        .await
        .unwrap();
    wait_for(arrived, "the request reaches the upstream").await;
    drop(client);
    expect_let_go(&gw, closed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_client_that_resets_its_stream_frees_the_upstream_connection() {
    let (url, arrived, closed) = silent_upstream().await;
    let mut gw = Gw::start(&config(&silent_route(&url), "    h2c: true\n"));
    gw.ready().await;
    // The connection stays open; only the stream is reset (RST_STREAM) when the call is dropped.
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let call = mcp_post(
        &c,
        &gw.url("/silent"),
        &jsonrpc(1, "tools/call", json!({"name": "echo", "arguments": {}})),
    )
    .send();
    let waiting = tokio::spawn(call);
    wait_for(arrived, "the request reaches the upstream").await;
    waiting.abort();
    expect_let_go(&gw, closed).await;
    drop(c);
}

/// An open route to `url` whose request timeout is far longer than the tests wait: without
/// watching the client, the gateway would hold the upstream until then.
fn silent_route(url: &str) -> String {
    open_route(
        "silent",
        "/silent",
        url,
        "      timeouts: { request: 120s }\n",
    )
}

async fn wait_for(signal: tokio::sync::oneshot::Receiver<()>, what: &str) {
    tokio::time::timeout(Duration::from_secs(30), signal)
        .await
        .unwrap_or_else(|_| panic!("{what}"))
        .unwrap();
}

/// The gateway closes its upstream connection because the client left, and counts the request
/// without a status (nobody was left to answer), not as an upstream failure.
async fn expect_let_go(gw: &Gw, closed: tokio::sync::oneshot::Receiver<()>) {
    wait_for(
        closed,
        "the gateway lets go of the upstream when its client leaves, not at the timeout",
    )
    .await;
    let series = r#"mcpgate_requests_total{route="silent",status="0"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.counter(series).await != 1 {
        assert!(Instant::now() < deadline, "{series} stays at 0");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = gw.metrics().await;
    assert!(
        !metrics.contains(r#"reason="upstream_"#),
        "a client leaving is not an upstream failure:\n{metrics}"
    );
}
