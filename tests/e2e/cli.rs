//! End-to-end for the command line: `check` exit codes and messages, `--version`, and the
//! newcomer's `demo` — started as a user would, its printed token used to list and call tools.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn check_accepts_valid_and_lists_every_error_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(
        dir.path(),
        "good.yaml",
        "public_url: http://127.0.0.1:8080\nlisteners:\n  - bind: 127.0.0.1:8080\nroutes:\n  - name: r\n    path: /mcp\n    upstream: { url: http://127.0.0.1:3001/mcp }\n    auth: none\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = write_file(
        dir.path(),
        "bad.yaml",
        "public_url: http://127.0.0.1:8080\nlisteners:\n  - bind: 127.0.0.1:8080\nroutes:\n  - name: a\n    path: /a\n    upstream: { url: http://127.0.0.1:3001/mcp }\n    auth: none\n  - name: b\n    path: /b\n    upstream: { url: \"htp:/x\" }\n    auth: { issuers: [nope] }\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("routes[1].upstream.url"), "{stderr}");
    assert!(stderr.contains("htp:/x"), "{stderr}");
    assert!(
        stderr.contains("routes[1].auth.issuers[0]"),
        "both errors listed: {stderr}"
    );

    let unknown = write_file(
        dir.path(),
        "unknown.yaml",
        "public_url: http://x\nlistenerz: []\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listenerz"));

    let missing = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/mcpgate.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("mcpgate "));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "check", "demo", "Exit codes"] {
        assert!(help.contains(word), "{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_lists_and_calls_tools_with_the_printed_token() {
    let port = free_port();
    let admin = free_port();
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--admin-port",
            &admin.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(t) = line.strip_prefix("export TOKEN='") {
                let _ = tx.send(t.trim_end_matches('\'').to_string());
            }
        }
    });
    let token = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("demo prints a token");
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c
        .get(format!("http://127.0.0.1:{admin}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "demo never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("http://127.0.0.1:{port}/mcp");
    let r = mcp_post(&c, &url, &jsonrpc(1, "tools/list", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the demo gateway requires the token");

    let r = mcp_post(&c, &url, &jsonrpc(1, "tools/list", json!({})))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert!(list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "echo"));

    let r = mcp_post(
        &c,
        &url,
        &jsonrpc(
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hello through mcpgate"}}),
        ),
    )
    .bearer_auth(&token)
    .send()
    .await
    .unwrap();
    let call: Value = r.json().await.unwrap();
    assert_eq!(
        call["result"]["content"][0]["text"],
        "hello through mcpgate"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The configurations we ship as examples must pass `mcpgate check` as they are.
#[test]
fn shipped_example_configurations_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sidecar = std::fs::read_to_string(root.join("deploy/kubernetes/sidecar.yaml")).unwrap();
    let embedded: String = sidecar
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("mcpgate.yaml: |"))
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write_file(dir.path(), "sidecar.yaml", &embedded),
        root.join("config/minimal.yaml"),
        root.join("config/mcpgate.example.yaml"),
    ];
    for f in files {
        let out = Command::new(BIN)
            .args(["check", "--config"])
            .arg(&f)
            .env("INTROSPECT_SECRET", "s3cret")
            .env("UPSTREAM_KEY", "k")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
