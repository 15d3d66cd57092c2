//! `mcpgate demo`: the gateway plus an embedded sample MCP server and a local token issuer, all
//! on loopback, configured through the same YAML path as `run`. The demo issuer exists only
//! here: no configuration key can enable it.

use std::process::ExitCode;
use std::time::Duration;

use mcpgate_sample::{DemoIssuer, McpServerOptions, SampleMcpServer};

use crate::exit;

/// The demo's configuration, rendered as the YAML a user would write.
fn demo_yaml(port: u16, admin_port: u16, issuer: &str, jwks: &str, upstream: &str) -> String {
    format!(
        r#"public_url: http://127.0.0.1:{port}
listeners:
  - bind: 127.0.0.1:{port}
admin:
  bind: 127.0.0.1:{admin_port}
issuers:
  - name: demo
    issuer: {issuer}
    jwks_uri: {jwks}
    algorithms: [ES256]
routes:
  - name: demo
    path: /mcp
    upstream:
      url: {upstream}
    auth:
      issuers: [demo]
logging:
  level: info
shutdown:
  grace_period: 1s
"#
    )
}

pub fn run(port: u16, admin_port: u16) -> ExitCode {
    // The sample peers live on their own runtime thread for the life of the process.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("demo runtime");
        rt.block_on(async move {
            let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let issuer = DemoIssuer::start(loopback).await;
            let server = SampleMcpServer::start(loopback, McpServerOptions::default()).await;
            match (issuer, server) {
                (Ok(issuer), Ok(server)) => {
                    let _ = tx.send(Ok((issuer, server.url())));
                    let _keep = server;
                    std::future::pending::<()>().await;
                }
                (Err(e), _) | (_, Err(e)) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    let (issuer, upstream) = match rx.recv() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            eprintln!("demo: cannot start the sample peers: {e}");
            return ExitCode::from(exit::START_FAILED);
        }
        Err(_) => return ExitCode::from(exit::START_FAILED),
    };
    let yaml = demo_yaml(
        port,
        admin_port,
        &issuer.issuer_url(),
        &issuer.jwks_url(),
        &upstream,
    );
    let cfg = match mcpgate_config::parse_str(&yaml, std::path::Path::new("."), &|_| None) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("demo: internal configuration error:\n{errors}");
            return ExitCode::from(exit::START_FAILED);
        }
    };
    let url = format!("http://127.0.0.1:{port}/mcp");
    let token = issuer.mint_default(&url, "mcp:read mcp:write", Duration::from_secs(3600));
    // The demo configuration has no audit file, the only way this can fail.
    let _ = crate::logging::init(&cfg.logging);
    print_banner(&url, admin_port, &token, &yaml);
    crate::serve(&cfg)
}

fn print_banner(url: &str, admin_port: u16, token: &str, yaml: &str) {
    let h =
        r#"-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'"#;
    println!(
        r#"
mcpgate demo is running — everything below is on loopback.

  MCP endpoint   {url}
  Admin          http://127.0.0.1:{admin_port}/healthz  /readyz  /metrics
  Access token   (ES256, 1 hour, scopes "mcp:read mcp:write", audience {url})

export TOKEN='{token}'

# Without a token you get the OAuth challenge (401 + WWW-Authenticate):
curl -i -X POST {url} {h} -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list"}}'

# List the tools through the gateway:
curl -s -X POST {url} {h} -H "Authorization: Bearer $TOKEN" \
  -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list"}}'

# Call one:
curl -s -X POST {url} {h} -H "Authorization: Bearer $TOKEN" \
  -d '{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello through mcpgate"}}}}}}'

# Watch progress stream through unbuffered (SSE):
curl -N -X POST {url} {h} -H "Authorization: Bearer $TOKEN" \
  -d '{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"slow_count","arguments":{{"n":5}}}}}}'

# MCP Inspector (needs Node.js):
npx @modelcontextprotocol/inspector --cli {url} --transport http \
  --header "Authorization: Bearer $TOKEN" --method tools/list

The demo runs this configuration (see config/ for more):
{yaml}
Press Ctrl-C to stop.
"#
    );
}
