//! End-to-end tests of the sample MCP server over real HTTP.

mod common;

use std::time::Duration;

use common::{client, loopback, stream_client, SseReader};
use mcpgate_sample::{McpServerOptions, SampleMcpServer};
use serde_json::{json, Value};

const BOTH: &str = "application/json, text/event-stream";

async fn server(options: McpServerOptions) -> SampleMcpServer {
    SampleMcpServer::start(loopback(), options).await.unwrap()
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// POSTs one message with `Accept: application/json` and returns the JSON body.
async fn rpc(url: &str, message: Value) -> Value {
    let response = client()
        .post(url)
        .header("accept", "application/json")
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn text_of(result: &Value) -> &str {
    result["result"]["content"][0]["text"].as_str().unwrap()
}

#[tokio::test]
async fn initialize_mints_session_and_negotiates_version() {
    let server = server(McpServerOptions::default()).await;
    let init = |version: &str| {
        request(
            1,
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
        )
    };
    let response = client()
        .post(server.url())
        .header("accept", BOTH)
        .json(&init("2025-06-18"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(session.len() >= 16);
    assert!(session.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(body["result"]["serverInfo"]["name"], "mcpgate-sample");
    assert!(body["result"]["capabilities"]["tools"].is_object());
    assert!(body["result"]["capabilities"]["resources"].is_object());
    assert!(body["result"]["capabilities"]["prompts"].is_object());

    let body = rpc(&server.url(), init("1999-01-01")).await;
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(server.stats.sessions_created(), 2);

    // The session works for later requests.
    let response = client()
        .post(server.url())
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&request(2, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["result"], json!({}));
    server.shutdown().await;
}

#[tokio::test]
async fn tools_list_lists_all_tools_with_schemas() {
    let server = server(McpServerOptions {
        tool_count_extra: 3,
        ..Default::default()
    })
    .await;
    let body = rpc(&server.url(), request(1, "tools/list", json!({}))).await;
    let tools = body["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "echo",
            "add",
            "slow_count",
            "delete_everything",
            "create_item",
            "whoami",
            "tool_0000",
            "tool_0001",
            "tool_0002"
        ]
    );
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    let body = rpc(
        &server.url(),
        request(
            2,
            "tools/call",
            json!({"name": "tool_0002", "arguments": {}}),
        ),
    )
    .await;
    assert_eq!(text_of(&body), "tool_0002 called");
    server.shutdown().await;
}

#[tokio::test]
async fn tools_call_works_and_is_counted() {
    let server = server(McpServerOptions::default()).await;
    let url = server.url();
    let call = |id, name: &str, arguments: Value| {
        request(
            id,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
    };
    let body = rpc(&url, call(1, "echo", json!({"text": "hello"}))).await;
    assert_eq!(text_of(&body), "hello");
    assert_eq!(body["result"]["isError"], false);
    rpc(&url, call(2, "echo", json!({"text": "again"}))).await;
    let body = rpc(&url, call(3, "add", json!({"a": 2, "b": 3.5}))).await;
    assert_eq!(text_of(&body), "5.5");
    let body = rpc(&url, call(4, "create_item", json!({"name": "box"}))).await;
    assert_eq!(text_of(&body), "created item box");

    let body = rpc(&url, call(5, "nope", json!({}))).await;
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(body["id"], 5);
    let body = rpc(&url, request(6, "no/such/method", json!({}))).await;
    assert_eq!(body["error"]["code"], -32601);

    assert_eq!(server.stats.tool_calls("echo"), 2);
    assert_eq!(server.stats.tool_calls("add"), 1);
    assert_eq!(server.stats.tool_calls("delete_everything"), 0);
    assert_eq!(server.stats.total_tool_calls(), 5);
    assert_eq!(server.stats.requests(), 6);
    server.shutdown().await;
}

#[tokio::test]
async fn notifications_errors_and_sessions() {
    let server = server(McpServerOptions::default()).await;
    let http = client();
    let post = |body: String, session: Option<&str>| {
        let mut builder = http
            .post(server.url())
            .header("content-type", "application/json")
            .body(body);
        if let Some(session) = session {
            builder = builder.header("mcp-session-id", session);
        }
        builder.send()
    };
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let response = post(note, None).await.unwrap();
    assert_eq!(response.status(), 202);
    assert!(response.bytes().await.unwrap().is_empty());

    let response = post("{not json".into(), None).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32700
    );

    let ping = request(1, "ping", json!({})).to_string();
    let response = post(ping.clone(), Some("no-such-session")).await.unwrap();
    assert_eq!(response.status(), 404);
    // Stateless clients (no session header) are accepted.
    let response = post(ping, None).await.unwrap();
    assert_eq!(response.status(), 200);

    let response = http
        .post(server.url())
        .header("mcp-protocol-version", "1999-01-01")
        .json(&request(2, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let response = http
        .get(format!("http://{}/elsewhere", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(server.stats.requests(), 6);
    server.shutdown().await;
}

#[tokio::test]
async fn slow_count_streams_progress_events_as_they_happen() {
    let interval = Duration::from_millis(100);
    let server = server(McpServerOptions {
        stream_interval: interval,
        ..Default::default()
    })
    .await;
    let response = stream_client()
        .post(server.url())
        .header("accept", BOTH)
        .json(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "slow_count", "arguments": {"n": 3}, "_meta": {"progressToken": "tok"}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    while let Some(event) = reader.next_event().await {
        events.push(event);
    }
    assert_eq!(events.len(), 4, "{events:?}");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.event.as_deref(), Some("message"));
        assert_eq!(event.id.as_deref(), Some((i + 1).to_string().as_str()));
    }
    for (i, event) in events[..3].iter().enumerate() {
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["method"], "notifications/progress");
        assert_eq!(data["params"]["progressToken"], "tok");
        assert_eq!(data["params"]["progress"], i + 1);
        assert_eq!(data["params"]["total"], 3);
    }
    let last: Value = serde_json::from_str(&events[3].data).unwrap();
    assert_eq!(last["id"], 7);
    assert_eq!(text_of(&last), "counted to 3");
    let min_gap = interval.mul_f64(0.8);
    for pair in events.windows(2) {
        let gap = pair[1].at.unwrap() - pair[0].at.unwrap();
        assert!(gap >= min_gap, "events arrived {gap:?} apart: buffered?");
    }
    assert_eq!(server.stats.tool_calls("slow_count"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn slow_count_answers_json_without_event_stream_accept() {
    let server = server(McpServerOptions {
        stream_interval: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let body = rpc(
        &server.url(),
        request(
            1,
            "tools/call",
            json!({"name": "slow_count", "arguments": {"n": 2}}),
        ),
    )
    .await;
    assert_eq!(text_of(&body), "counted to 2");
    server.shutdown().await;
}

#[tokio::test]
async fn stream_flag_answers_any_request_as_sse() {
    let server = server(McpServerOptions::default()).await;
    let response = client()
        .post(format!("{}?stream=1", server.url()))
        .header("accept", BOTH)
        .json(&request(
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut reader = SseReader::new(response);
    let event = reader.next_event().await.unwrap();
    assert_eq!(text_of(&serde_json::from_str(&event.data).unwrap()), "hi");
    assert!(reader.next_event().await.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn get_stream_echoes_last_event_id_and_shutdown_ends_it() {
    let server = server(McpServerOptions {
        keepalive_interval: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let response = client().get(server.url()).send().await.unwrap();
    assert_eq!(response.status(), 405);

    let response = stream_client()
        .get(server.url())
        .header("accept", "text/event-stream")
        .header("last-event-id", "evt-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut response = response;
    let first = response.chunk().await.unwrap().unwrap();
    let first = String::from_utf8(first.to_vec()).unwrap();
    assert!(first.starts_with("event: message\n"), "{first}");
    assert!(first.contains("\"lastEventId\":\"evt-42\""), "{first}");
    let keepalive = response.chunk().await.unwrap().unwrap();
    assert_eq!(&keepalive[..], b": keepalive\n\n");

    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown does not hang on open streams");
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "stream ended after shutdown");
}

#[tokio::test]
async fn delete_terminates_sessions() {
    let server = server(McpServerOptions::default()).await;
    let http = client();
    let response = http
        .post(server.url())
        .json(&request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-11-25"}),
        ))
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let delete = || {
        http.delete(server.url())
            .header("mcp-session-id", &session)
            .send()
    };
    assert_eq!(delete().await.unwrap().status(), 200);
    assert_eq!(delete().await.unwrap().status(), 404);
    let response = http
        .post(server.url())
        .header("mcp-session-id", &session)
        .json(&request(2, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(server.stats.sessions_deleted(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn whoami_and_last_headers_show_what_arrived() {
    let server = server(McpServerOptions::default()).await;
    let response = client()
        .post(server.url())
        .header("authorization", "Bearer abc")
        .header("x-mcp-user", "alice")
        .header("x-forwarded-for", "10.0.0.1")
        .header("mcp-method", "tools/call")
        .json(&request(
            1,
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        ))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let seen: Value = serde_json::from_str(text_of(&body)).unwrap();
    assert_eq!(
        seen,
        json!({"authorization": "Bearer abc", "x-mcp-user": "alice"})
    );
    let headers = server.stats.last_headers();
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
    assert_eq!(headers["mcp-method"], "tools/call");
    server.shutdown().await;
}

#[tokio::test]
async fn resources_and_prompts() {
    let server = server(McpServerOptions::default()).await;
    let url = server.url();
    let body = rpc(&url, request(1, "resources/list", json!({}))).await;
    let uris: Vec<&str> = body["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        ["file:///public/readme.txt", "file:///secret/keys.txt"]
    );
    let body = rpc(&url, request(2, "resources/templates/list", json!({}))).await;
    assert_eq!(
        body["result"]["resourceTemplates"][0]["uriTemplate"],
        "file:///public/{name}"
    );
    let body = rpc(
        &url,
        request(
            3,
            "resources/read",
            json!({"uri": "file:///public/readme.txt"}),
        ),
    )
    .await;
    assert!(body["result"]["contents"][0]["text"]
        .as_str()
        .unwrap()
        .contains("sample"));
    let body = rpc(
        &url,
        request(4, "resources/read", json!({"uri": "file:///nope"})),
    )
    .await;
    assert_eq!(body["error"]["code"], -32002);
    let body = rpc(&url, request(5, "prompts/list", json!({}))).await;
    assert_eq!(body["result"]["prompts"][0]["name"], "greeting");
    let body = rpc(
        &url,
        request(
            6,
            "prompts/get",
            json!({"name": "greeting", "arguments": {"name": "Ada"}}),
        ),
    )
    .await;
    assert_eq!(
        body["result"]["messages"][0]["content"]["text"],
        "Hello, Ada!"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn legacy_sse_round_trip_under_prefix() {
    let server = server(McpServerOptions {
        legacy_prefix: "/legacy".into(),
        stream_interval: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    assert_eq!(
        server.legacy_sse_url(),
        format!("http://{}/legacy/sse", server.addr)
    );
    let response = stream_client()
        .get(server.legacy_sse_url())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    let endpoint = reader.next_event().await.unwrap();
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    assert!(
        endpoint.data.starts_with("/legacy/messages?sessionId="),
        "{}",
        endpoint.data
    );
    let messages_url = format!("http://{}{}", server.addr, endpoint.data);

    let http = client();
    let response = http
        .post(&messages_url)
        .json(&request(
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "legacy"}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer = reader.next_event().await.unwrap();
    assert_eq!(answer.event.as_deref(), Some("message"));
    let answer: Value = serde_json::from_str(&answer.data).unwrap();
    assert_eq!(answer["id"], 1);
    assert_eq!(text_of(&answer), "legacy");

    // Streamed tools deliver progress on the session stream too.
    let response = http
        .post(&messages_url)
        .json(&request(
            2,
            "tools/call",
            json!({"name": "slow_count", "arguments": {"n": 2}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let event: Value = serde_json::from_str(&reader.next_event().await.unwrap().data).unwrap();
        kinds.push(event["method"].as_str().unwrap_or("result").to_owned());
    }
    assert_eq!(
        kinds,
        ["notifications/progress", "notifications/progress", "result"]
    );

    let response = http
        .post(format!(
            "http://{}/legacy/messages?sessionId=nope",
            server.addr
        ))
        .json(&request(3, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(server.stats.sessions_created(), 1);
    server.shutdown().await;
}
