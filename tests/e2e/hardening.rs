//! End-to-end attacks on the classes of issue 12, against the real gateway: a scripted upstream
//! that misbehaves on purpose (lists it should not send, encodings it was not asked for, a
//! `Server` banner, slow streams) and records what reached it; the sample issuer for tokens
//! without `sub`; host-bound routes sharing a path.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One step of a scripted answer: wait, then write these bytes.
type Script = Vec<(Duration, Vec<u8>)>;

/// An upstream that answers each request path with a fixed script of raw bytes (status line,
/// headers and body as written) and keeps every request head it received.
struct Scripted {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(scripts: HashMap<&'static str, Script>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let scripts = Arc::new(scripts);
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (scripts, seen) = (scripts.clone(), seen.clone());
                tokio::spawn(async move {
                    let Some(head) = read_request(&mut conn).await else {
                        return;
                    };
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    seen.lock().unwrap().push(head);
                    for (delay, bytes) in scripts.get(path.as_str()).cloned().unwrap_or_default() {
                        tokio::time::sleep(delay).await;
                        if conn.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                    let _ = conn.shutdown().await;
                });
            }
        });
        Scripted { port, heads }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// The request head and its Content-Length body, read off the connection.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(head)
}

fn now(bytes: impl Into<Vec<u8>>) -> (Duration, Vec<u8>) {
    (Duration::ZERO, bytes.into())
}

/// A complete HTTP/1.1 answer with a Content-Length body.
fn answer(content_type: &str, extra: &str, body: &[u8]) -> Script {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    vec![now([head.as_bytes(), body].concat())]
}

/// The head of an SSE answer that ends when the connection closes.
fn sse_head() -> (Duration, Vec<u8>) {
    now("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
}

const BOM: &str = "\u{feff}";

/// A plain successful JSON-RPC answer.
fn ok_result() -> Script {
    answer(
        "application/json",
        "",
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
    )
}

fn tools_result(id: i64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": "echo"}, {"name": "delete_everything"}], "ttlMs": 60000, "cacheScope": "public"}}).to_string()
}

struct Setup {
    issuer: mcpgate_sample::DemoIssuer,
    up: Scripted,
    gw: Gw,
}

async fn setup(scripts: HashMap<&'static str, Script>, extra_routes: &str) -> Setup {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let issuer = mcpgate_sample::DemoIssuer::start(loopback).await.unwrap();
    let up = Scripted::start(scripts).await;
    let yaml = format!(
        r#"public_url: http://127.0.0.1:{{port}}
listeners:
  - bind: 127.0.0.1:{{port}}
admin:
  bind: 127.0.0.1:{{admin}}
logging: {{ level: info }}
limits: {{ max_request_body: 64KiB }}
issuers:
  - name: local
    issuer: {iss}
    jwks_uri: {iss}/jwks
    algorithms: [ES256]
routes:
  - name: main
    path: /mcp
    upstream:
      url: "{up}"
      strip_headers: [x-tenant]
      timeouts: {{ request: 1s, stream_idle: 10s }}
    auth: {{ issuers: [local] }}
    tools: [{{ match: "delete_*", scopes: [mcp:admin] }}]
    resources: [{{ match: "file:///secret/*", deny: true }}]
{extra_routes}"#,
        iss = issuer.issuer_url(),
        up = up.url("/up"),
    )
    .replace("{up_root}", &up.url(""));
    let mut gw = Gw::start(&yaml);
    gw.ready().await;
    Setup { issuer, up, gw }
}

impl Setup {
    /// A token for `/mcp` with `extra` claims on top of the usual ones (a `null` removes a claim).
    fn mint_with(&self, extra: Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = json!({"iss": self.issuer.issuer_url(), "aud": self.gw.url("/mcp"), "exp": now + 300, "iat": now, "scope": "mcp:read"});
        for (k, v) in extra.as_object().unwrap() {
            match v {
                Value::Null => claims.as_object_mut().unwrap().remove(k),
                v => claims.as_object_mut().unwrap().insert(k.clone(), v.clone()),
            };
        }
        self.issuer.mint(claims)
    }

    fn token(&self) -> String {
        self.issuer
            .mint_default(&self.gw.url("/mcp"), "mcp:read", Duration::from_secs(300))
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        mcp_post(&client(), &self.gw.url(path), body)
            .bearer_auth(self.token())
            .send()
            .await
            .unwrap()
    }
}

fn scripts(pairs: Vec<(&'static str, Script)>) -> HashMap<&'static str, Script> {
    pairs.into_iter().collect()
}

#[tokio::test]
async fn list_answers_that_cannot_be_filtered_never_reach_the_client() {
    let bom_json = [BOM.as_bytes(), tools_result(1).as_bytes()].concat();
    let mut bad_utf8 = tools_result(1).into_bytes();
    let at = bad_utf8.windows(4).position(|w| w == b"echo").unwrap();
    bad_utf8[at] = 0xff;
    let array = format!("[{}]", tools_result(1));
    let s = setup(
        scripts(vec![
            ("/up/bom", answer("application/json", "", &bom_json)),
            ("/up/utf8", answer("application/json", "", &bad_utf8)),
            (
                "/up/array",
                answer("application/json", "", array.as_bytes()),
            ),
            (
                "/up/gzip",
                answer(
                    "application/json",
                    "Content-Encoding: gzip\r\n",
                    b"\x1f\x8b\x08\0garbage",
                ),
            ),
            (
                "/up/ssebom",
                vec![
                    sse_head(),
                    now(format!(
                        "{BOM}event: message\ndata: {}\n\n",
                        tools_result(1)
                    )),
                ],
            ),
            (
                "/up/sseutf8",
                vec![
                    sse_head(),
                    now([b"data: ".as_slice(), &bad_utf8, b"\n\n"].concat()),
                ],
            ),
        ]),
        "",
    )
    .await;
    let list = jsonrpc(1, "tools/list", json!({}));
    for case in ["bom", "utf8", "array", "gzip"] {
        let r = s.post(&format!("/mcp/{case}"), &list).await;
        assert!(r.headers().get("content-encoding").is_none(), "{case}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("delete_everything"),
            "{case}: hidden tool leaked: {text}"
        );
        assert!(text.contains("list_unfilterable"), "{case}: {text}");
    }
    // An invalid byte in an SSE event is read as clients read it (U+FFFD) and the list filtered.
    let text = s.post("/mcp/sseutf8", &list).await.text().await.unwrap();
    assert!(!text.contains("delete_everything"), "{text}");
    assert!(text.contains("cho"), "the allowed tool is kept: {text}");
    // A BOM at the start of an SSE stream is dropped (as clients drop it) and the list filtered.
    let text = s.post("/mcp/ssebom", &list).await.text().await.unwrap();
    assert!(!text.contains("delete_everything"), "{text}");
    assert!(text.contains("\"echo\""), "{text}");
    assert!(
        text.contains(r#""cacheScope":"private""#),
        "filtered lists are private: {text}"
    );
}

#[tokio::test]
async fn replayed_and_legacy_streams_are_filtered_too() {
    let replay = vec![
        now("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"),
        now(format!(
            "id: 7\nevent: message\ndata: {}\n\n",
            tools_result(3)
        )),
    ];
    let legacy = vec![
        sse_head(),
        now("event: endpoint\ndata: /up/messages?sessionId=abc\n\n"),
        (
            Duration::from_millis(50),
            format!("event: message\ndata: {}\n\n", tools_result(4)).into_bytes(),
        ),
    ];
    let s = setup(
        scripts(vec![("/up/stream", replay), ("/up/sse", legacy)]),
        "",
    )
    .await;
    let c = client();
    for (path, id) in [("/mcp/stream", 3), ("/mcp/sse", 4)] {
        let text = c
            .get(s.gw.url(path))
            .bearer_auth(s.token())
            .header("accept", "text/event-stream")
            .header("last-event-id", "6")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains("delete_everything"), "{path}: {text}");
        assert!(text.contains("\"echo\""), "{path}: {text}");
        assert!(text.contains(&format!("\"id\":{id}")), "{path}: {text}");
    }
    let legacy = c
        .get(s.gw.url("/mcp/sse"))
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        legacy.contains("data: /mcp/messages?sessionId=abc"),
        "endpoint still rewritten: {legacy}"
    );
}

#[tokio::test]
async fn what_the_upstream_gets_and_what_it_shows() {
    let ok = answer(
        "application/json",
        "Server: secret-upstream/1.2.3\r\n",
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
    );
    let s = setup(scripts(vec![("/up/h", ok)]), "").await;
    let r = mcp_post(
        &client(),
        &s.gw.url("/mcp/h"),
        &jsonrpc(1, "ping", json!({})),
    )
    .bearer_auth(s.token())
    .header("X-Forwarded-User", "admin")
    .header("X-Forwarded-Email", "admin@example.com")
    .header("X-Forwarded-Groups", "admins")
    .header("X-Auth-Request-User", "admin")
    .header("Remote-User", "admin")
    .header("X-Remote-User", "admin")
    .header("X-Goog-Authenticated-User-Email", "admin@example.com")
    .header("X-Tenant", "other")
    .header("X-Kept", "yes")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("server").is_none(),
        "upstream banner hidden"
    );
    let head = s.up.heads().pop().unwrap().to_ascii_lowercase();
    for spoofed in [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-auth-request-user",
        "remote-user",
        "x-remote-user",
        "x-goog-authenticated-user-email",
        "x-tenant",
        "authorization",
    ] {
        assert!(
            !head.contains(&format!("\n{spoofed}:")),
            "{spoofed} reached the upstream:\n{head}"
        );
    }
    assert!(head.contains("\nx-kept: yes"), "{head}");
}

#[tokio::test]
async fn get_and_delete_bodies_are_refused_before_the_upstream() {
    let s = setup(scripts(vec![]), "").await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.gw.port));
    let token = s.token();
    let requests = [
        format!("GET /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
        format!("DELETE /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"),
    ];
    for req in requests {
        let (status, text) = tokio::task::spawn_blocking({
            let req = req.clone();
            move || raw_http(addr, &req)
        })
        .await
        .unwrap();
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("body_not_allowed"), "{text}");
    }
    // A GET without a body is still a GET stream.
    assert!(s.up.heads().is_empty(), "nothing reached the upstream");
}

/// A `Connection` header may not ask the gateway to drop `Host` or `X-Forwarded-*`, nor name a
/// non-token: refused with a reason (pingora used to close such connections without a word),
/// and nothing reaches the upstream. Ordinary hop-by-hop nominations still pass.
#[tokio::test]
async fn connection_headers_that_cannot_be_honoured_are_refused_with_a_reason() {
    let s = setup(scripts(vec![("/up", ok_result())]), "").await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.gw.port));
    let token = s.token();
    let body = jsonrpc(1, "ping", json!({})).to_string();
    let post = |connection: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: {connection}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    for bad in [
        "close, Host",
        "close, x-forwarded-for",
        "close, \"X-Forwarded-Proto\"",
        "close, a, b, c, d, e, f, g, h, i",
    ] {
        let req = post(bad);
        let (status, text) = tokio::task::spawn_blocking(move || raw_http(addr, &req))
            .await
            .unwrap();
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains("bad_connection_header"), "{bad}: {text}");
    }
    assert!(s.up.heads().is_empty(), "nothing reached the upstream");
    let req = post("close, x-private");
    let (status, text) = tokio::task::spawn_blocking(move || raw_http(addr, &req))
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn subscriptions_listen_lives_under_the_stream_timeout() {
    let slow = || {
        vec![
            sse_head(),
            now("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{\"uri\":\"a\"}}\n\n"),
            (Duration::from_millis(1800), b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{\"uri\":\"b\"}}\n\n".to_vec()),
        ]
    };
    let s = setup(
        scripts(vec![("/up/listen", slow()), ("/up/call", slow())]),
        "",
    )
    .await;
    let listen = s
        .post(
            "/mcp/listen",
            &jsonrpc(1, "subscriptions/listen", json!({})),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        listen.contains("\"uri\":\"b\""),
        "silence under stream_idle keeps a subscription: {listen}"
    );
    let call = s
        .post(
            "/mcp/call",
            &jsonrpc(2, "tools/call", json!({"name": "echo"})),
        )
        .await;
    let text = call.text().await.unwrap_or_default();
    assert!(
        !text.contains("\"uri\":\"b\""),
        "a request is still cut after `request` of silence: {text}"
    );
}

#[tokio::test]
async fn encoded_mcp_names_are_compared_decoded() {
    let ok = ok_result();
    let s = setup(scripts(vec![("/up", ok)]), "").await;
    let call = jsonrpc(1, "tools/call", json!({"name": "café", "arguments": {}}));
    let send = |name: &'static str| {
        mcp_post(&client(), &s.gw.url("/mcp"), &call)
            .bearer_auth(s.token())
            .header("mcp-method", "tools/call")
            .header("mcp-name", name)
            .send()
    };
    // "café" as standard Base64 of its UTF-8 bytes.
    assert_eq!(send("=?base64?Y2Fmw6k=?=").await.unwrap().status(), 200);
    for bad in ["=?base64?Y2Fmw6k?=", "=?base64?!!!?=", "cafe"] {
        let r = send(bad).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32020, "{bad}");
    }
}

#[tokio::test]
async fn callers_without_sub_cannot_use_other_callers_sessions() {
    let init = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: sess-1\r\nContent-Length: 36\r\nConnection: close\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
    let ok = answer(
        "application/json",
        "",
        br#"{"jsonrpc":"2.0","id":2,"result":{}}"#,
    );
    let s = setup(
        scripts(vec![("/up/init", vec![now(init)]), ("/up/init/use", ok)]),
        "",
    )
    .await;
    let token = |sub: Option<&str>, client_id: Option<&str>, jti: &str| {
        s.mint_with(json!({"sub": sub, "client_id": client_id, "jti": jti}))
    };
    let c = client();
    let use_session = |t: String, path: &'static str| {
        mcp_post(&c, &s.gw.url(path), &jsonrpc(2, "ping", json!({})))
            .bearer_auth(t)
            .header("mcp-session-id", "sess-1")
            .send()
    };
    // Minted once: a sub-less caller is its token, and a second minting could land in the next
    // second (another iat/exp, another token).
    let opener = token(None, Some("shared-cli"), "a");
    let r = mcp_post(
        &c,
        &s.gw.url("/mcp/init"),
        &jsonrpc(1, "initialize", json!({})),
    )
    .bearer_auth(opener.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(r.headers()["mcp-session-id"], "sess-1");
    for (who, t) in [
        ("same client, no sub", token(None, Some("shared-cli"), "b")),
        ("neither sub nor client_id", token(None, None, "c")),
        ("a subject", token(Some("alice"), Some("shared-cli"), "d")),
    ] {
        let r = use_session(t, "/mcp/init/use").await.unwrap();
        assert_eq!(r.status(), 404, "{who}");
    }
    let r = use_session(opener, "/mcp/init/use").await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "the token that opened the session keeps it"
    );
}

#[tokio::test]
async fn host_bound_routes_sharing_a_path_get_their_own_metadata() {
    let routes = r#"  - name: tenant-a
    host: tenant-a.example.com
    path: /t/mcp
    upstream: { url: "{up_root}/a" }
    auth: { issuers: [local], resource: "https://tenant-a.example.com/t/mcp" }
  - name: tenant-b
    host: tenant-b.example.com
    path: /t/mcp
    upstream: { url: "{up_root}/b" }
    auth: { issuers: [local], resource: "https://tenant-b.example.com/t/mcp" }
"#;
    let s = setup(scripts(vec![]), routes).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.gw.port));
    for tenant in ["tenant-a", "tenant-b"] {
        let (status, text) = tokio::task::spawn_blocking(move || {
            raw_http(
                addr,
                &format!("GET /.well-known/oauth-protected-resource/t/mcp HTTP/1.1\r\nHost: {tenant}.example.com\r\nConnection: close\r\n\r\n"),
            )
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{text}");
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let doc: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            doc["resource"],
            format!("https://{tenant}.example.com/t/mcp")
        );
    }
}

#[tokio::test]
async fn expect_continue_gets_its_final_answer_without_waiting_for_a_body() {
    let ok = ok_result();
    let s = setup(scripts(vec![("/up", ok)]), "").await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.gw.port));
    let token = s.token();
    let denied = jsonrpc(1, "tools/call", json!({"name": "delete_everything"})).to_string();
    let big = "x".repeat(80 * 1024);
    let cases = [
        // No token: the 401 comes at once, without the body the client holds back.
        ("no token", "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n".to_string(), 401, "missing_token"),
        // A small body the client sends after 100: the refusal still reaches it.
        ("denied", format!("POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n{denied}", denied.len()), 403, "insufficient_scope"),
        // A chunked upload over the limit: 413 after the 100, not a reset.
        ("oversized", format!("POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len()), 413, "body_too_large"),
    ];
    for (what, req, status, reason) in cases {
        let (_, text) = tokio::task::spawn_blocking(move || raw_http(addr, &req))
            .await
            .unwrap();
        let last = text
            .rfind("HTTP/1.1 ")
            .map(|i| &text[i..])
            .unwrap_or_default();
        assert!(
            last.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {text}"
        );
        assert!(last.contains(reason), "{what}: {text}");
    }
}

#[tokio::test]
async fn held_bodies_are_bounded_and_the_budget_comes_back() {
    let slow = vec![(
        Duration::from_secs(20),
        b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
    )];
    let up = Scripted::start(scripts(vec![("/up", slow)])).await;
    let mut gw = Gw::start(&format!(
        r#"public_url: http://127.0.0.1:{{port}}
listeners: [{{ bind: "127.0.0.1:{{port}}" }}]
admin: {{ bind: "127.0.0.1:{{admin}}" }}
limits: {{ max_request_body: 64KiB, max_buffered_per_connection: 64KiB, max_buffered_bodies: 128KiB }}
routes:
  - {{ name: open, path: /mcp, upstream: {{ url: "{}" }}, auth: none }}
"#,
        up.url("/up")
    ));
    gw.ready().await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], gw.port));
    let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = format!("{:x}\r\n{}\r\n", 60 * 1024, " ".repeat(60 * 1024));
    let held_bytes = |gw: &Gw| {
        let url = gw.admin("/metrics");
        async move {
            let text = client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("mcpgate_buffered_body_bytes "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        }
    };
    // Two unfinished uploads hold 120 KiB of the 128 KiB budget.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut s, format!("{head}{chunk}").as_bytes()).unwrap();
        open.push(s);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while held_bytes(&gw).await < 120 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "bodies never held:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A third is refused with 503 and Retry-After instead of growing the process.
    let req = format!("{head}{chunk}");
    let (status, text) = tokio::task::spawn_blocking(move || raw_http(addr, &req))
        .await
        .unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert!(text.contains("overloaded"), "{text}");
    // Closing the held uploads gives their bytes back.
    drop(open);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while held_bytes(&gw).await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "budget never came back:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_spelling_of_a_denied_resource_is_denied() {
    let ok = answer(
        "application/json",
        "",
        br#"{"jsonrpc":"2.0","id":1,"result":{"contents":[]}}"#,
    );
    let s = setup(scripts(vec![("/up", ok)]), "").await;
    let read = |uri: &str| jsonrpc(1, "resources/read", json!({ "uri": uri }));
    for (uri, reason) in [
        ("file:///public/../secret/keys", "resource_denied"),
        ("FILE:///secret/keys", "resource_denied"),
        ("file:///public/%2e%2e/secret/keys", "resource_denied"),
        ("file:/secret/keys", "resource_denied"),
        ("file://localhost/secret/keys", "resource_denied"),
        ("file:///public\\..\\secret\\keys", "resource_denied"),
        (" file:///secret/keys", "resource_denied"),
        ("file:///sec\tret/keys", "resource_denied"),
        ("file:///%73ecret/keys", "resource_denied"),
        (
            "file:///public%2F..%2Fsecret/keys",
            "resource_uri_ambiguous",
        ),
        ("file:///secret%252Fkeys", "resource_uri_ambiguous"),
    ] {
        let r = s.post("/mcp", &read(uri)).await;
        assert_eq!(r.status(), 403, "{uri:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["data"]["reason"], reason, "{uri:?}");
    }
    assert!(s.up.heads().is_empty(), "no spelling reached the upstream");
    let r = s.post("/mcp", &read("file:///public/readme")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn h2c_listeners_do_not_hold_half_prefaces_forever() {
    let mut gw = Gw::start(
        r#"public_url: http://127.0.0.1:{port}
listeners: [{ bind: "127.0.0.1:{port}", h2c: true }]
admin: { bind: "127.0.0.1:{admin}" }
routes:
  - { name: open, path: /mcp, upstream: { url: "http://127.0.0.1:9/mcp" }, auth: none }
"#,
    );
    gw.ready().await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], gw.port));
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        // A short HTTP/1.0 request (under 24 bytes) is answered, not held for the preface.
        let (status, text) = raw_http(addr, "GET / HTTP/1.0\r\n\r\n");
        assert_eq!(status, 404, "{text}");
        // Half a preface, then silence: the gateway closes the connection by itself.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).expect("closed, not timed out");
        assert_eq!(n, 0, "the connection ends without an answer");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let reply = |id: i64| {
        answer(
            "application/json",
            "",
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#).as_bytes(),
        )
    };
    let s = setup(
        scripts(vec![
            ("/up/a", reply(1)),
            ("/up/b", reply(2)),
            ("/up/c", reply(3)),
        ]),
        "",
    )
    .await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.gw.port));
    let token = s.token();
    let body = jsonrpc(1, "ping", json!({})).to_string();
    let post = |path: &str| {
        format!("POST /mcp/{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
    };
    let meta =
        "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: x\r\n\r\n".to_string();
    let all = [post("a"), meta, post("b"), post("c")].concat();
    let text = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(all.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while String::from_utf8_lossy(&got).matches(r#""id":3"#).count() == 0 {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).to_string()
    })
    .await
    .unwrap();
    let order: Vec<usize> = [r#""id":1"#, r#""resource":"#, r#""id":2"#, r#""id":3"#]
        .iter()
        .map(|needle| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing:\n{text}"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "answers out of order:\n{text}"
    );
    assert_eq!(text.matches("HTTP/1.1 200").count(), 4, "{text}");
}

#[tokio::test]
async fn a_request_head_has_a_deadline_and_a_size_bound_while_it_is_read() {
    let mut gw = Gw::start(
        r#"public_url: http://127.0.0.1:{port}
listeners: [{ bind: "127.0.0.1:{port}" }]
admin: { bind: "127.0.0.1:{admin}" }
limits: { request_head_timeout: 1s, client_read_timeout: 30s, max_request_headers: 8KiB }
routes:
  - { name: open, path: /mcp, upstream: { url: "http://127.0.0.1:9/mcp" }, auth: none }
"#,
    );
    gw.ready().await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], gw.port));
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        // One byte at a time, each well within the read timeout: the head's deadline ends it.
        let mut slow = std::net::TcpStream::connect(addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut closed = false;
        for b in b"GET /mcp HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if slow.write_all(&[*b]).is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 16];
            if let Ok(0) = slow.read(&mut buf) {
                closed = true;
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "never closed");
        }
        assert!(closed, "a head trickled over its deadline is closed");
        // Between the header limit and twice it: a proper 431.
        let big = format!(
            "GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(12 * 1024)
        );
        assert_eq!(raw_http(addr, &big).0, 431);
        // Beyond twice the limit (512 KiB; pingora's own cap is 1 MiB): refused while it is read,
        // never buffered whole and answered.
        let mut huge = std::net::TcpStream::connect(addr).unwrap();
        huge.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        huge.write_all(b"GET /mcp HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            .unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        let mut refused = false;
        for _ in 0..8 {
            if huge.write_all(&chunk).is_err() {
                refused = true;
                break;
            }
        }
        if !refused {
            let _ = huge.write_all(b"\r\n\r\n");
            let mut buf = Vec::new();
            let _ = huge.read_to_end(&mut buf);
            refused = !String::from_utf8_lossy(&buf).contains("431");
        }
        assert!(refused, "a 512 KiB head is not read to its end");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pingoras_own_error_lines_never_carry_the_query() {
    let mut gw = Gw::start(
        r#"public_url: http://127.0.0.1:{port}
listeners: [{ bind: "127.0.0.1:{port}" }]
admin: { bind: "127.0.0.1:{admin}" }
routes:
  - { name: down, path: /mcp, upstream: { url: "http://127.0.0.1:9/mcp" }, auth: none }
"#,
    );
    gw.ready().await;
    // The upstream is down: pingora logs "Fail to proxy" with its summary of the request.
    let r = mcp_post(
        &client(),
        &gw.url("/mcp?access_token=SECRET-QUERY-TOKEN&session_id=SECRET-SESSION"),
        &jsonrpc(1, "ping", json!({})),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 502);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gw.log().contains("Fail to proxy") {
        assert!(
            std::time::Instant::now() < deadline,
            "no error line:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = gw.log();
    assert!(
        log.contains("POST /mcp"),
        "the summary names the request:\n{log}"
    );
    assert!(!log.contains("SECRET"), "the query reached the log:\n{log}");
}

#[tokio::test]
async fn a_session_id_never_seen_minted_is_unknown_not_claimed() {
    let init = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: sess-alice\r\nContent-Length: 36\r\nConnection: close\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
    let s = setup(
        scripts(vec![
            ("/up/init", vec![now(init)]),
            ("/up/use", ok_result()),
        ]),
        "",
    )
    .await;
    let token = |sub: &str| s.mint_with(json!({ "sub": sub }));
    let c = client();
    let use_session = |t: String, sid: &'static str| {
        mcp_post(&c, &s.gw.url("/mcp/use"), &jsonrpc(2, "ping", json!({})))
            .bearer_auth(t)
            .header("mcp-session-id", sid)
            .send()
    };
    // An id this gateway never saw minted (another replica's, one from before a restart, a guess):
    // 404 for whoever presents it, and it is not bound to them.
    for _ in 0..2 {
        let r = use_session(token("bob"), "sess-alice").await.unwrap();
        assert_eq!(r.status(), 404);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32011);
    }
    assert!(s.up.heads().is_empty(), "an unknown session reaches nobody");
    assert!(s.gw.log().contains("session_unknown"), "audited");
    // Once Alice opens it through the gateway, it is hers, and still not Bob's.
    let r = mcp_post(
        &c,
        &s.gw.url("/mcp/init"),
        &jsonrpc(1, "initialize", json!({})),
    )
    .bearer_auth(token("alice"))
    .send()
    .await
    .unwrap();
    assert_eq!(r.headers()["mcp-session-id"], "sess-alice");
    assert_eq!(
        use_session(token("alice"), "sess-alice")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        use_session(token("bob"), "sess-alice")
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn json_audit_lines_keep_the_tool_name_under_its_own_key() {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let issuer = mcpgate_sample::DemoIssuer::start(loopback).await.unwrap();
    let up = Scripted::start(scripts(vec![("/up", ok_result())])).await;
    let mut gw = Gw::start(&format!(
        r#"public_url: http://127.0.0.1:{{port}}
listeners: [{{ bind: "127.0.0.1:{{port}}" }}]
admin: {{ bind: "127.0.0.1:{{admin}}" }}
logging: {{ format: json, level: info }}
issuers: [{{ name: local, issuer: "{iss}", jwks_uri: "{iss}/jwks", algorithms: [ES256] }}]
routes:
  - name: main
    path: /mcp
    upstream: {{ url: "{up}" }}
    auth: {{ issuers: [local] }}
    tools: [{{ match: "delete_*", deny: true }}]
"#,
        iss = issuer.issuer_url(),
        up = up.url("/up")
    ));
    gw.ready().await;
    let token = issuer.mint_default(&gw.url("/mcp"), "mcp:read", Duration::from_secs(300));
    for tool in ["echo", "delete_everything"] {
        mcp_post(
            &client(),
            &gw.url("/mcp"),
            &jsonrpc(1, "tools/call", json!({"name": tool})),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let audits: Vec<Value> = gw
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "mcpgate::audit")
            .collect();
        let named: Vec<(String, String)> = audits
            .iter()
            .map(|v| {
                (
                    v["decision"].as_str().unwrap_or("").to_string(),
                    v["target_name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        if named.len() >= 2 {
            assert!(
                named.contains(&("allow".into(), "echo".into())),
                "{named:?}"
            );
            assert!(
                named.contains(&("deny".into(), "delete_everything".into())),
                "{named:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit lines:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The upstream gets one exact head, whichever request path serves the call (the suite runs on
/// both): the headers that may cross and those the gateway sets, every name in one case
/// (RFC 9110 §5.1 makes case meaningless; HAProxy and Envoy normalise it too), however the client
/// spelt them.
#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_sees_one_canonical_head_however_the_client_spelt_it() {
    let s = setup(scripts(vec![("/up", ok_result())]), "").await;
    let body = jsonrpc(1, "tools/call", json!({"name": "echo", "arguments": {}})).to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhOsT: 127.0.0.1:{port}\r\nauthorization: Bearer {token}\r\ncontent-TYPE: application/json\r\nACCEPT: application/json, text/event-stream\r\nX-Custom-Thing: kept\r\nX-Tenant: other\r\nAccept-Encoding: gzip\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        port = s.gw.port,
        token = s.token(),
        len = body.len(),
    );
    let (status, text) = raw_http(
        std::net::SocketAddr::from(([127, 0, 0, 1], s.gw.port)),
        &request,
    );
    assert_eq!(status, 200, "{text}");
    let heads = s.up.heads();
    assert_eq!(heads.len(), 1);
    let mut lines: Vec<&str> = heads[0].lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.remove(0), "POST /up HTTP/1.1");
    lines.sort_unstable();
    // pingora's title case where it has one for the name, lower case otherwise.
    let expected = [
        format!("Content-Length: {}", body.len()),
        "Content-Type: application/json".to_string(),
        format!("Host: 127.0.0.1:{}", s.up.port),
        "accept: application/json, text/event-stream".to_string(),
        "x-custom-thing: kept".to_string(),
        "x-forwarded-for: 127.0.0.1".to_string(),
        format!("x-forwarded-host: 127.0.0.1:{}", s.gw.port),
        "x-forwarded-proto: http".to_string(),
    ];
    assert_eq!(lines, expected);
}
