//! Harness for the end-to-end tests: free ports, the real `mcpgate` binary as a child process
//! (killed on drop), readiness polling, HTTP clients and a raw HTTP/1.1 client for requests
//! that ordinary clients would "fix" (dot segments, odd encodings).
#![allow(dead_code)]

pub mod browser;
pub mod redis;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port that refuses connections for as long as the returned socket lives: bound, so
/// no other test's listener can take it (a port from [`free_port`] can be taken by the next
/// listener bound anywhere in the test binary), but never listening, so a connect is refused.
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP/1.1 client that never follows redirects or uses proxies.
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `mcpgate run` on `dir/mcpgate.yaml`, appending to `dir/gateway.log`.
fn spawn_in(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("gateway.log"))
        .unwrap();
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(dir.join("mcpgate.yaml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn mcpgate")
}

/// A running gateway process.
pub struct Gw {
    pub child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
}

impl Gw {
    /// Start `mcpgate run` with `yaml`, where `{port}` and `{admin}` are replaced by free ports.
    pub fn start(yaml: &str) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, yaml)
    }

    pub fn start_in(dir: tempfile::TempDir, yaml: &str) -> Gw {
        let port = free_port();
        let admin_port = free_port();
        let yaml = yaml
            .replace("{port}", &port.to_string())
            .replace("{admin}", &admin_port.to_string());
        std::fs::write(dir.path().join("mcpgate.yaml"), yaml).unwrap();
        std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        Gw {
            child: spawn_in(dir.path()),
            port,
            admin_port,
            dir,
        }
    }

    /// Stop the process and start it again with the same configuration on the same ports: one
    /// replica's restart, as its clients see it. Returns once the new process is ready.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_in(self.dir.path());
        self.ready().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.admin_port, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Poll `/readyz` until 200; panics with the log if the process dies or 30 s pass.
    pub async fn ready(&mut self) {
        let c = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mcpgate exited early ({status}):\n{}", self.log());
            }
            if let Ok(r) = c.get(self.admin("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "mcpgate never became ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin endpoint's Prometheus text.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.admin("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One counter sample, named as exposed (`name{a="x",b="y"}`, labels in Prometheus' sorted
    /// order); 0 when the series is absent.
    pub async fn counter(&self, series: &str) -> u64 {
        let prefix = format!("{series} ");
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.trim().parse().unwrap())
    }
}

/// The sample MCP server on a free loopback port, default options.
pub async fn sample_upstream() -> mcpgate_sample::SampleMcpServer {
    mcpgate_sample::SampleMcpServer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        mcpgate_sample::McpServerOptions::default(),
    )
    .await
    .unwrap()
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send SIGTERM to a process.
pub fn sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Wait for a child to exit, up to `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A raw HTTP/1.1 exchange: send `request` bytes exactly, read until the server closes.
/// Returns (status, headers+body text).
pub fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `GET path` with `Connection: close`, raw.
pub fn raw_get(port: u16, path: &str) -> (u16, String) {
    raw_http(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

pub fn jsonrpc(id: i64, method: &str, params: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// POST one JSON-RPC message as an MCP client would.
pub fn mcp_post(
    c: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    c.post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(body)
}

pub fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A local token issuer and a sample MCP upstream on loopback, and the gateway in front of them.
pub struct Stack {
    pub issuer: mcpgate_sample::DemoIssuer,
    pub up: mcpgate_sample::SampleMcpServer,
    pub gw: Gw,
}

/// Start the issuer and upstream, then the gateway from `yaml(issuer, upstream)`, and wait until
/// it is ready.
pub async fn stack(
    yaml: impl FnOnce(&mcpgate_sample::DemoIssuer, &mcpgate_sample::SampleMcpServer) -> String,
) -> Stack {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let issuer = mcpgate_sample::DemoIssuer::start(loopback).await.unwrap();
    let up = mcpgate_sample::SampleMcpServer::start(
        loopback,
        mcpgate_sample::McpServerOptions::default(),
    )
    .await
    .unwrap();
    let mut gw = Gw::start(&yaml(&issuer, &up));
    gw.ready().await;
    Stack { issuer, up, gw }
}
