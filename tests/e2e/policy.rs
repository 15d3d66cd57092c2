//! End-to-end MCP-aware authorization: the real gateway between a real token issuer and a real
//! MCP upstream. Tool/resource/prompt rules, step-up challenges, list filtering over JSON and
//! SSE, JSON-RPC strictness tricks, session binding, identity headers, Origin checks, metadata.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

type Setup = Stack;

async fn setup() -> Setup {
    stack(|issuer, up| {
        format!(
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
routes:
  - name: main
    path: /mcp
    upstream: {{ url: "{up}" }}
    auth:
      issuers: [local]
      required_scopes: [mcp:read]
      scope_hierarchy: {{ "mcp:admin": [mcp:write], "mcp:write": [mcp:read] }}
      resource_name: Sample tools
    tools:
      - match: "delete_*"
        scopes: [mcp:admin]
      - match: "create_*"
        scopes: [mcp:write]
      - match: whoami
        groups: [admins]
    resources: [{{ match: "file:///secret/*", deny: true }}]
    prompts: [{{ match: "*", scopes: [mcp:read] }}]
    identity_headers: {{}}
  - name: open
    path: /open/mcp
    upstream: {{ url: "{up}" }}
    auth: none
    tools: [{{ match: "delete_*", deny: true }}]
  - name: corp
    path: /corp/mcp
    upstream: {{ url: "{up}" }}
    auth:
      issuers: [local]
      allowed_domains: [corp.example]
    origins: [https://app.example.com]
    allow_batches: true
    identity_headers: {{ subject: X-User }}
"#,
            iss = issuer.issuer_url(),
            up = up.url()
        )
    })
    .await
}

impl Setup {
    fn token(&self, path: &str, scopes: &str) -> String {
        self.issuer
            .mint_default(&self.gw.url(path), scopes, Duration::from_secs(300))
    }

    fn token_with(&self, path: &str, claims: Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut c = json!({"iss": self.issuer.issuer_url(), "sub": "someone", "aud": self.gw.url(path), "exp": now + 300, "iat": now, "scope": "mcp:read"});
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        self.issuer.mint(c)
    }

    async fn call(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let c = client();
        let mut req = mcp_post(&c, &self.gw.url(path), body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    async fn raw(&self, path: &str, token: &str, body: &str) -> reqwest::Response {
        client()
            .post(self.gw.url(path))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

fn tool_call(id: i64, name: &str) -> Value {
    jsonrpc(
        id,
        "tools/call",
        json!({"name": name, "arguments": {"text": "hi", "a": 1, "b": 2}}),
    )
}

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list["result"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no result.{key}: {list}"))
        .iter()
        .map(|t| t[field].as_str().unwrap().to_string())
        .collect()
}

/// Parse the JSON-RPC answer from an SSE body (the event carrying `result` or `error`).
fn sse_answer(body: &str) -> Value {
    body.split("\n\n")
        .filter_map(|ev| {
            let data: Vec<&str> = ev
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
        .unwrap_or_else(|| panic!("no answer event in {body:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_list_is_filtered_to_what_the_token_may_call_over_json_and_sse() {
    let s = setup().await;
    let reader = s.token("/mcp", "mcp:read");
    let r = s
        .call("/mcp", Some(&reader), &jsonrpc(1, "tools/list", json!({})))
        .await;
    assert_eq!(r.status(), 200);
    let cc = r.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cc.contains("private"), "{cc}");
    // The rewritten body is framed (chunked on HTTP/1.1), so the connection stays usable.
    assert_eq!(
        r.headers()
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("chunked"),
        "{:?}",
        r.headers()
    );
    let tools = names(&r.json().await.unwrap(), "tools", "name");
    assert!(
        tools.contains(&"echo".to_string()) && tools.contains(&"add".to_string()),
        "{tools:?}"
    );
    for hidden in ["delete_everything", "create_item", "whoami"] {
        assert!(
            !tools.contains(&hidden.to_string()),
            "{hidden} must be hidden from a reader: {tools:?}"
        );
    }

    // The same over SSE: the answer event is rewritten as it completes.
    let r = s
        .call(
            "/mcp?stream=1",
            Some(&reader),
            &jsonrpc(2, "tools/list", json!({})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let answer = sse_answer(&r.text().await.unwrap());
    assert_eq!(answer["id"], 2);
    let sse_tools = names(&answer, "tools", "name");
    assert_eq!(sse_tools, tools, "SSE and JSON agree");

    // An admin sees the admin and write tools (scope hierarchy), not the group-gated one.
    let admin = s.token("/mcp", "mcp:admin");
    let r = s
        .call("/mcp", Some(&admin), &jsonrpc(3, "tools/list", json!({})))
        .await;
    let tools = names(&r.json().await.unwrap(), "tools", "name");
    assert!(
        tools.contains(&"delete_everything".to_string())
            && tools.contains(&"create_item".to_string()),
        "{tools:?}"
    );
    assert!(!tools.contains(&"whoami".to_string()));

    // Resources: the denied secret is hidden; templates and prompts pass through their rules.
    let r = s
        .call(
            "/mcp",
            Some(&reader),
            &jsonrpc(4, "resources/list", json!({})),
        )
        .await;
    let uris = names(&r.json().await.unwrap(), "resources", "uri");
    assert!(
        uris.iter().any(|u| u.starts_with("file:///public/")),
        "{uris:?}"
    );
    assert!(
        !uris.iter().any(|u| u.starts_with("file:///secret/")),
        "{uris:?}"
    );
    let r = s
        .call(
            "/mcp",
            Some(&reader),
            &jsonrpc(5, "prompts/list", json!({})),
        )
        .await;
    assert_eq!(
        names(&r.json().await.unwrap(), "prompts", "name"),
        vec!["greeting"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_calls_never_reach_the_upstream_and_step_up_names_every_scope() {
    let s = setup().await;
    let reader = s.token("/mcp", "mcp:read");
    let r = s
        .call("/mcp", Some(&reader), &tool_call(41, "delete_everything"))
        .await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"mcp:read mcp:admin\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}\"",
            s.gw.url("/.well-known/oauth-protected-resource/mcp")
        )),
        "{challenge}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["id"], 41,
        "the JSON-RPC error carries the request's id"
    );
    assert_eq!(body["error"]["data"]["reason"], "insufficient_scope");
    assert_eq!(
        s.up.stats.tool_calls("delete_everything"),
        0,
        "a denied call never reaches the upstream"
    );

    // Step up: a token with the challenged scope works.
    let admin = s.token("/mcp", "mcp:read mcp:admin");
    let r = s
        .call("/mcp", Some(&admin), &tool_call(42, "delete_everything"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.up.stats.tool_calls("delete_everything"), 1);

    // Group rules: a valid token outside the group is forbidden without a scope challenge.
    let r = s.call("/mcp", Some(&admin), &tool_call(43, "whoami")).await;
    assert_eq!(r.status(), 403);
    assert!(!r.headers().contains_key("www-authenticate"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["data"]["reason"],
        "group_not_allowed"
    );
    let member = s.token_with("/mcp", json!({"groups": ["admins"]}));
    assert_eq!(
        s.call("/mcp", Some(&member), &tool_call(44, "whoami"))
            .await
            .status(),
        200
    );

    // Resource and prompt rules.
    let r = s
        .call(
            "/mcp",
            Some(&admin),
            &jsonrpc(
                45,
                "resources/read",
                json!({"uri": "file:///secret/keys.txt"}),
            ),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["data"]["reason"],
        "resource_denied"
    );
    let r = s
        .call(
            "/mcp",
            Some(&reader),
            &jsonrpc(
                46,
                "resources/read",
                json!({"uri": "file:///public/readme.txt"}),
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = s
        .call(
            "/mcp",
            Some(&reader),
            &jsonrpc(
                47,
                "prompts/get",
                json!({"name": "greeting", "arguments": {"name": "x"}}),
            ),
        )
        .await;
    assert_eq!(r.status(), 200);

    // The route's baseline: no mcp:read at all → 403 naming it.
    let none = s.token_with("/mcp", json!({"scope": "other"}));
    let r = s.call("/mcp", Some(&none), &tool_call(48, "echo")).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("scope=\"mcp:read\""));
    assert_eq!(s.up.stats.tool_calls("echo"), 0);

    // An unauthenticated route's deny rule.
    let r = s
        .call("/open/mcp", None, &tool_call(49, "delete_everything"))
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        s.up.stats.tool_calls("delete_everything"),
        1,
        "still only the admin's call"
    );

    // Every decision is audited with principal, method and tool.
    let log = s.gw.log();
    assert!(log.contains("mcp decision"), "audit lines present");
    assert!(log.contains("delete_everything") && log.contains("demo-user"));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_rpc_tricks_are_refused() {
    let s = setup().await;
    let admin = s.token("/mcp", "mcp:admin");
    let reader = s.token("/mcp", "mcp:read");
    let code = |v: &Value| v["error"]["code"].as_i64().unwrap();

    // A batch on a route that does not allow them.
    let r = s
        .raw(
            "/mcp",
            &admin,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), -32600);
    // Duplicate keys: the gateway would read one name, the upstream maybe the other.
    let r = s.raw("/mcp", &reader, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","name":"delete_everything"}}"#).await;
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), -32600);
    // Not JSON.
    let r = s.raw("/mcp", &reader, "{not json").await;
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), -32700);
    // \u-escaped spellings are judged exactly like the plain ones.
    for body in [
        r#"{"jsonrpc":"2.0","id":3,"method":"tools\u002fcall","params":{"name":"delete_everything"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete\u005feverything"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"\u006eame":"delete_everything"}}"#,
    ] {
        let r = s.raw("/mcp", &reader, body).await;
        assert_eq!(r.status(), 403, "{body}");
    }
    // An Mcp-Name header lying about the body.
    let r = mcp_post(
        &client(),
        &s.gw.url("/mcp"),
        &tool_call(4, "delete_everything"),
    )
    .bearer_auth(&admin)
    .header("mcp-method", "tools/call")
    .header("mcp-name", "echo")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), -32020);
    assert_eq!(v["id"], 4);
    let r = mcp_post(&client(), &s.gw.url("/mcp"), &tool_call(5, "echo"))
        .bearer_auth(&reader)
        .header("mcp-method", "tools/list")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A large body (beyond the 64 KiB early read) is held back and judged as a whole.
    let big = "x".repeat(200 * 1024);
    let r = s
        .call(
            "/mcp",
            Some(&reader),
            &jsonrpc(
                6,
                "tools/call",
                json!({"name": "delete_everything", "arguments": {"pad": big}}),
            ),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = s
        .call(
            "/mcp",
            Some(&reader),
            &jsonrpc(
                7,
                "tools/call",
                json!({"name": "echo", "arguments": {"text": big}}),
            ),
        )
        .await;
    assert_eq!(
        r.status(),
        200,
        "a large permitted call is forwarded intact"
    );
    let v: Value = r.json().await.unwrap();
    assert!(v["result"].to_string().len() > 200 * 1024);
    assert_eq!(
        s.up.stats.tool_calls("delete_everything"),
        0,
        "no trick got a denied call through"
    );

    // A route that opts into batches authorizes every element.
    let corp = s.token_with(
        "/corp/mcp",
        json!({"email": "a@corp.example", "email_verified": true}),
    );
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"b"}}}]"#;
    let before = s.up.stats.requests();
    let r = s.raw("/corp/mcp", &corp, batch).await;
    // (The sample upstream itself speaks 2025-06-18 and may refuse the batch; the gateway passed it.)
    assert_eq!(
        s.up.stats.requests(),
        before + 1,
        "the batch reached the upstream: {}",
        r.status()
    );
    let denied = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}]"#;
    let corp_route_denies = s.raw("/corp/mcp", &reader, denied).await;
    assert_eq!(
        corp_route_denies.status(),
        401,
        "a token for another resource is refused before the body matters"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_bound_to_their_caller() {
    let s = setup().await;
    let alice = s.token_with("/mcp", json!({"sub": "alice"}));
    let mallory = s.token_with("/mcp", json!({"sub": "mallory"}));
    let init = jsonrpc(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let r = s.call("/mcp", Some(&alice), &init).await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let with_session = |token: &str, id: i64| {
        mcp_post(
            &client(),
            &s.gw.url("/mcp"),
            &jsonrpc(id, "ping", json!({})),
        )
        .bearer_auth(token.to_string())
        .header("mcp-session-id", sid.clone())
        .header("mcp-protocol-version", "2025-06-18")
    };
    assert_eq!(with_session(&alice, 2).send().await.unwrap().status(), 200);
    let before = s.up.stats.requests();
    let r = with_session(&mallory, 3).send().await.unwrap();
    assert_eq!(
        r.status(),
        404,
        "another principal's session does not exist for mallory"
    );
    assert_eq!(
        s.up.stats.requests(),
        before,
        "the hijack attempt never reached the upstream"
    );
    assert!(s.gw.log().contains("session_owner_mismatch"), "audited");
    assert_eq!(with_session(&alice, 4).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_headers_origins_domains_and_metadata() {
    let s = setup().await;
    let reader = s.token("/mcp", "mcp:read");
    let c = client();
    let r = mcp_post(&c, &s.gw.url("/mcp"), &tool_call(1, "echo"))
        .bearer_auth(&reader)
        .header("x-mcp-subject", "spoofed-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = s.up.stats.last_headers();
    assert_eq!(h["x-mcp-subject"], "demo-user");
    assert_eq!(h["x-mcp-email"], "demo@example.com");
    assert_eq!(h["x-mcp-scopes"], "mcp:read");
    assert!(h.get("authorization").is_none());

    // Only the named identity header is sent; client-sent copies of the default names are
    // removed all the same.
    let corp = s.token_with(
        "/corp/mcp",
        json!({"email": "a@corp.example", "email_verified": true}),
    );
    let r = mcp_post(&c, &s.gw.url("/corp/mcp"), &tool_call(2, "echo"))
        .bearer_auth(&corp)
        .header("x-mcp-email", "spoofed@corp.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = s.up.stats.last_headers();
    assert_eq!(h["x-user"], "someone");
    for absent in [
        "x-mcp-subject",
        "x-mcp-email",
        "x-mcp-scopes",
        "x-mcp-client-id",
    ] {
        assert!(h.get(absent).is_none(), "{absent}: {h:?}");
    }

    // Origins: listed only, on the route that lists them; same-origin only on `auth: none`.
    let post = |path: &str, origin: &str, token: Option<&str>| {
        let mut r =
            mcp_post(&c, &s.gw.url(path), &jsonrpc(1, "ping", json!({}))).header("origin", origin);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(
        post("/corp/mcp", "https://evil.example", Some(&corp))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post("/corp/mcp", "https://app.example.com", Some(&corp))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/open/mcp", "http://evil.example", None)
            .await
            .unwrap()
            .status(),
        403
    );
    let same = format!("http://127.0.0.1:{}", s.gw.port);
    assert_eq!(post("/open/mcp", &same, None).await.unwrap().status(), 200);

    // Email domains: verified address in the listed domain only.
    let other = s.token_with(
        "/corp/mcp",
        json!({"email": "a@else.example", "email_verified": true}),
    );
    let unverified = s.token_with(
        "/corp/mcp",
        json!({"email": "a@corp.example", "email_verified": false}),
    );
    let hd = s.token_with(
        "/corp/mcp",
        json!({"email": "a@gmail.com", "email_verified": true, "hd": "corp.example"}),
    );
    for (token, want) in [(&other, 403), (&unverified, 403), (&hd, 200), (&corp, 200)] {
        assert_eq!(
            post("/corp/mcp", "https://app.example.com", Some(token))
                .await
                .unwrap()
                .status(),
            want
        );
    }

    // RFC 9728 metadata and the 401 challenge agree on the resource and baseline scopes.
    let doc: Value = c
        .get(s.gw.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["resource"], s.gw.url("/mcp"));
    assert_eq!(doc["resource_name"], "Sample tools");
    let supported: Vec<&str> = doc["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for scope in ["mcp:read", "mcp:write", "mcp:admin"] {
        assert!(supported.contains(&scope), "{supported:?}");
    }
    let r = s.call("/mcp", None, &jsonrpc(1, "ping", json!({}))).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("scope=\"mcp:read\""));
}

/// The official MCP Python SDK (pinned in tests/python/requirements.txt, installed into
/// target/py-venv by tests/python/ensure-venv.sh) lists and calls tools through the gateway with a
/// bearer token, and is stopped at a tool its token may not use.
#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_sdk_lists_and_calls_tools_through_the_gateway() {
    let s = setup().await;
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python");
    let venv = std::process::Command::new("bash")
        .arg(scripts.join("ensure-venv.sh"))
        .output()
        .expect("run ensure-venv.sh");
    assert!(
        venv.status.success(),
        "installing the MCP Python SDK failed:\n{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_string();
    let token = s.token("/mcp", "mcp:read");
    let url = s.gw.url("/mcp");
    let script = scripts.join("sdk_client.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([url.as_str(), token.as_str(), "echo", "delete_everything"])
            .output()
            .expect("run the SDK client")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "SDK client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.gw.log()
    );
    let summary: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    let tools: Vec<&str> = summary["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"echo"), "{summary}");
    assert!(
        !tools.contains(&"delete_everything"),
        "filtered for the SDK too: {summary}"
    );
    assert_eq!(summary["allowed_is_error"], false, "{summary}");
    assert!(
        summary["allowed_text"]
            .as_str()
            .unwrap()
            .contains("from the python sdk"),
        "{summary}"
    );
    assert_eq!(summary["denied"], "refused", "{summary}");
    assert_eq!(s.up.stats.tool_calls("delete_everything"), 0);
    assert_eq!(s.up.stats.tool_calls("echo"), 1);
}
