//! End-to-end: live configuration reload (SIGHUP, a rewritten file, a Kubernetes ConfigMap
//! symlink swap), refused reloads, streams and identity-provider keys across a reload, SIGHUP
//! never ending the process, a busy admin port at start, and `check` refusing a bad log level.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use mcpgate_sample::{DemoIssuer, SampleMcpServer};
use serde_json::json;

/// A configuration with open routes `(name, path)` to `upstream_url`, plus `extra` top-level keys.
fn config(routes: &[(&str, &str)], upstream_url: &str, extra: &str) -> String {
    let mut yaml = format!(
        "public_url: http://127.0.0.1:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\nadmin:\n  bind: 127.0.0.1:{{admin}}\n{extra}routes:\n"
    );
    for (name, path) in routes {
        yaml.push_str(&format!(
            "  - name: {name}\n    path: {path}\n    upstream:\n      url: {upstream_url}\n    auth: none\n"
        ));
    }
    yaml
}

fn with_ports(gw: &Gw, yaml: &str) -> String {
    yaml.replace("{port}", &gw.port.to_string())
        .replace("{admin}", &gw.admin_port.to_string())
}

/// Replace the gateway's configuration file as an editor or `kubectl cp` would: whole, by rename.
fn rewrite(gw: &Gw, yaml: &str) {
    let tmp = gw.dir.path().join(".mcpgate.yaml.new");
    std::fs::write(&tmp, with_ports(gw, yaml)).unwrap();
    std::fs::rename(&tmp, gw.dir.path().join("mcpgate.yaml")).unwrap();
}

fn sighup(gw: &Gw) {
    let ok = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `mcpgate_config_reloads_total{result=...}` as the admin endpoint reports it.
async fn reloads(gw: &Gw, result: &str) -> u64 {
    gw.counter(&format!(
        "mcpgate_config_reloads_total{{result=\"{result}\"}}"
    ))
    .await
}

/// Poll until `reloads(result)` reaches `n`; panics with the log after 20 s.
async fn wait_reloads(gw: &mut Gw, result: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = gw.child.try_wait() {
            panic!("mcpgate exited ({status}):\n{}", gw.log());
        }
        if reloads(gw, result).await >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {result} reload #{n}:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ping_status(gw: &Gw, path: &str) -> u16 {
    mcp_post(&client(), &gw.url(path), &jsonrpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn started(yaml: &str) -> Gw {
    let mut gw = Gw::start(yaml);
    gw.ready().await;
    gw
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_adds_a_route_and_never_ends_a_gateway_without_tls() {
    let up = sample_upstream().await;
    let mut gw = started(&config(&[("a", "/a")], &up.url(), "")).await;
    assert_eq!(ping_status(&gw, "/b").await, 404);

    // Same document first: a HUP with nothing new still reloads, and the process stays up.
    sighup(&gw);
    wait_reloads(&mut gw, "success", 1).await;
    std::fs::write(
        gw.dir.path().join("mcpgate.yaml"),
        with_ports(&gw, &config(&[("a", "/a"), ("b", "/b")], &up.url(), "")),
    )
    .unwrap();
    sighup(&gw);
    wait_reloads(&mut gw, "success", 2).await;

    assert_eq!(ping_status(&gw, "/a").await, 200);
    assert_eq!(ping_status(&gw, "/b").await, 200);
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "SIGHUP ended the gateway"
    );
    assert!(gw.log().contains("configuration reloaded"), "{}", gw.log());
    assert_eq!(reloads(&gw, "invalid").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_file_is_reloaded_without_a_signal() {
    let up = sample_upstream().await;
    let mut gw = started(&config(&[("a", "/a")], &up.url(), "")).await;
    rewrite(&gw, &config(&[("b", "/b")], &up.url(), ""));
    wait_reloads(&mut gw, "success", 1).await;
    assert_eq!(ping_status(&gw, "/b").await, 200);
    assert_eq!(ping_status(&gw, "/a").await, 404, "route a was removed");
}

/// Point `link` at `target` atomically (create aside, rename over), as kubelet's atomic writer does.
fn swap_symlink(dir: &Path, link: &str, target: &str) {
    let aside = dir.join(format!("{link}_tmp"));
    std::os::unix::fs::symlink(target, &aside).unwrap();
    std::fs::rename(&aside, dir.join(link)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubernetes_configmap_symlink_swap_is_reloaded() {
    let up = sample_upstream().await;
    let first = config(&[("a", "/a")], &up.url(), "");
    let mut gw = started(&first).await;
    // The ConfigMap volume layout: mcpgate.yaml -> ..data/mcpgate.yaml, ..data -> ..<timestamp>.
    let dir = gw.dir.path().to_path_buf();
    for (version, yaml) in [
        ("..2026_12_01_a", first.clone()),
        (
            "..2026_12_01_b",
            config(&[("a", "/a"), ("c", "/c")], &up.url(), ""),
        ),
    ] {
        std::fs::create_dir(dir.join(version)).unwrap();
        std::fs::write(
            dir.join(version).join("mcpgate.yaml"),
            with_ports(&gw, &yaml),
        )
        .unwrap();
    }
    swap_symlink(&dir, "..data", "..2026_12_01_a");
    swap_symlink(&dir, "mcpgate.yaml", "..data/mcpgate.yaml");
    // Same content through the links: not a change. Then the update swaps only `..data`.
    swap_symlink(&dir, "..data", "..2026_12_01_b");
    wait_reloads(&mut gw, "success", 1).await;
    assert_eq!(ping_status(&gw, "/c").await, 200);
    assert_eq!(ping_status(&gw, "/a").await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_or_restart_only_reload_changes_nothing_and_is_counted() {
    let up = sample_upstream().await;
    let mut gw = started(&config(&[("a", "/a")], &up.url(), "")).await;

    // Two problems in one document: both are logged with their key paths; nothing applies.
    let broken = config(
        &[("a", "/a"), ("b", "/b")],
        "not-a-url",
        "logging:\n  level: debugg\n",
    );
    rewrite(&gw, &broken);
    wait_reloads(&mut gw, "invalid", 1).await;
    let log = gw.log();
    assert!(log.contains("routes[1].upstream.url"), "{log}");
    assert!(log.contains("logging.level"), "{log}");
    assert_eq!(ping_status(&gw, "/a").await, 200);
    assert_eq!(ping_status(&gw, "/b").await, 404);

    // Valid, but moves the admin listener: refused as a whole, route b is not added either.
    let moved = config(&[("a", "/a"), ("b", "/b")], &up.url(), "")
        .replace("{admin}", &free_port().to_string());
    rewrite(&gw, &moved);
    wait_reloads(&mut gw, "restart_required", 1).await;
    assert_eq!(ping_status(&gw, "/b").await, 404);
    assert!(gw.log().contains("\"admin\""), "{}", gw.log());
    assert_eq!(reloads(&gw, "success").await, 0);
    // The refused document is not retried every poll: the counters stay put.
    sighup(&gw);
    wait_reloads(&mut gw, "restart_required", 2).await;
    assert_eq!(reloads(&gw, "invalid").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_stream_open_during_a_reload_keeps_streaming() {
    let up = sample_upstream().await; // progress events 200 ms apart
    let mut gw = started(&config(&[("a", "/a")], &up.url(), "")).await;
    let steps = 15;
    let resp = mcp_post(
        &client(),
        &gw.url("/a"),
        &jsonrpc(
            7,
            "tools/call",
            json!({"name": "slow_count", "arguments": {"n": steps}, "_meta": {"progressToken": "p"}}),
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = 0;
    let mut next_event = async |stream: &mut _| -> bool { read_event(stream, &mut buf).await };
    assert!(next_event(&mut stream).await, "first event");
    events += 1;

    // The reload removes the stream's own route: new requests see that, the stream does not.
    rewrite(&gw, &config(&[("b", "/b")], &up.url(), ""));
    sighup(&gw);
    wait_reloads(&mut gw, "success", 1).await;
    assert_eq!(ping_status(&gw, "/a").await, 404);

    let mut after_reload = 0;
    while next_event(&mut stream).await {
        events += 1;
        after_reload += 1;
    }
    assert_eq!(events, steps + 1, "every progress event and the result");
    assert!(after_reload >= 1, "the stream ended before the reload");
}

/// Read up to the next complete SSE event carrying data; false at the end of the stream.
async fn read_event<S>(stream: &mut S, buf: &mut String) -> bool
where
    S: futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    loop {
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.contains("data:") {
                return true;
            }
        }
        match stream.next().await {
            Some(chunk) => buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
            None => return false,
        }
    }
}

fn authenticated(
    issuer: &DemoIssuer,
    up: &SampleMcpServer,
    leeway: &str,
    paths: &[&str],
) -> String {
    let mut yaml = format!(
        "public_url: http://127.0.0.1:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\nadmin:\n  bind: 127.0.0.1:{{admin}}\nissuers:\n  - name: local\n    issuer: {}\n    jwks_uri: {}\n    algorithms: [ES256]\n    leeway: {leeway}\nroutes:\n",
        issuer.issuer_url(),
        issuer.jwks_url(),
    );
    for (i, path) in paths.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: r{i}\n    path: {path}\n    upstream:\n      url: {}\n    auth:\n      issuers: [local]\n",
            up.url()
        ));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_issuer_keeps_its_keys_a_changed_one_refetches() {
    let mut s = stack(|issuer, up| authenticated(issuer, up, "30s", &["/mcp"])).await;
    let token_for = |s: &Stack, path: &str| {
        s.issuer
            .mint_default(&s.gw.url(path), "mcp:read", Duration::from_secs(300))
    };
    let call = async |s: &Stack, path: &str| {
        mcp_post(&client(), &s.gw.url(path), &jsonrpc(1, "ping", json!({})))
            .bearer_auth(token_for(s, path))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(call(&s, "/mcp").await, 200);
    let fetches = s.issuer.jwks_fetches();

    // A route is added; the issuer's settings are the same: no refetch, no readiness dip.
    let yaml = authenticated(&s.issuer, &s.up, "30s", &["/mcp", "/other"]);
    rewrite(&s.gw, &yaml);
    wait_reloads(&mut s.gw, "success", 1).await;
    let ready = client().get(s.gw.admin("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(call(&s, "/other").await, 200);
    assert_eq!(call(&s, "/mcp").await, 200);
    assert_eq!(
        s.issuer.jwks_fetches(),
        fetches,
        "unchanged issuer refetched its keys"
    );

    // The issuer's settings change: it starts afresh and fetches its keys again.
    let yaml = authenticated(&s.issuer, &s.up, "45s", &["/mcp", "/other"]);
    rewrite(&s.gw, &yaml);
    wait_reloads(&mut s.gw, "success", 2).await;
    assert!(
        s.issuer.jwks_fetches() > fetches,
        "changed issuer kept old keys"
    );
    assert_eq!(call(&s, "/mcp").await, 200);
}

#[test]
fn a_busy_admin_port_is_a_start_up_failure() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = busy.local_addr().unwrap().port();
    let yaml =
        config(&[("a", "/a")], "http://127.0.0.1:1/mcp", "").replace("{admin}", &admin.to_string());
    let mut gw = Gw::start(&yaml);
    // pingora alone would retry for 30 s and then lose only its admin thread.
    let status = wait_exit(&mut gw.child, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running with a busy admin port:\n{}", gw.log()));
    assert_eq!(status.code(), Some(1), "{}", gw.log());
    let log = gw.log();
    assert!(
        log.contains(&format!("cannot listen on 127.0.0.1:{admin} (admin)")),
        "{log}"
    );
}

#[test]
fn check_refuses_a_log_level_that_would_silence_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(
        &[("a", "/a")],
        "http://127.0.0.1:1/mcp",
        "logging:\n  level: debugg\n",
    )
    .replace("{port}", "8080")
    .replace("{admin}", "9090");
    let path = write_file(dir.path(), "mcpgate.yaml", &yaml);
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("logging.level"), "{stderr}");
    assert!(stderr.contains("\"debugg\" is not a level"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_adding_an_unreachable_issuer_keeps_the_gateway_ready() {
    let mut s = stack(|issuer, up| authenticated(issuer, up, "30s", &["/mcp"])).await;
    let (_refusing, dead_port) = refusing_port();
    let dead_jwks = format!("http://127.0.0.1:{dead_port}/jwks");
    let yaml = authenticated(&s.issuer, &s.up, "30s", &["/mcp"]).replace(
        "routes:\n",
        &format!(
            "  - name: gone\n    issuer: https://gone.example\n    jwks_uri: {dead_jwks}\n    algorithms: [ES256]\n    jwks_refresh: {{ timeout: 1s }}\nroutes:\n  - name: elsewhere\n    path: /elsewhere\n    upstream:\n      url: {}\n    auth:\n      issuers: [gone]\n",
            s.up.url()
        ),
    );
    rewrite(&s.gw, &yaml);
    wait_reloads(&mut s.gw, "success", 1).await;
    // Only the routes trusting the unreachable issuer suffer; the replica stays in rotation.
    let ready = client().get(s.gw.admin("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let token = s
        .issuer
        .mint_default(&s.gw.url("/mcp"), "mcp:read", Duration::from_secs(300));
    let ok = mcp_post(&client(), &s.gw.url("/mcp"), &jsonrpc(1, "ping", json!({})))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(s
        .gw
        .log()
        .contains("reloading before every new issuer's keys arrived"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelt_rust_log_does_not_silence_the_gateway() {
    let up = sample_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let yaml = config(&[("a", "/a")], &up.url(), "")
        .replace("{port}", &port.to_string())
        .replace("{admin}", &admin_port.to_string());
    let cfg = write_file(dir.path(), "mcpgate.yaml", &yaml);
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "debugg")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut gw = Gw {
        child,
        port,
        admin_port,
        dir,
    };
    gw.ready().await;
    let log = gw.log();
    assert!(log.contains("RUST_LOG ignored"), "{log}");
    assert!(
        log.contains("mcpgate starting"),
        "info lines still logged:\n{log}"
    );
}
