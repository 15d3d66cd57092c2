//! `mcpgate demo`: the gateway plus an embedded sample MCP server and a local token issuer, all
//! on loopback, configured through the same YAML path as `run`. The demo issuer exists only
//! here: no configuration key can enable it.

use std::process::ExitCode;
use std::time::Duration;

use mcpgate_sample::{DemoIssuer, McpServerOptions, SampleMcpServer};

use crate::exit;

/// The demo's configuration, rendered as the YAML a user would write. The tool rules are the
/// point of the demo: the reader and the admin see and may call different tools.
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
      required_scopes: [mcp:read]
    tools:
      - match: "delete_*"
        scopes: [mcp:admin]
      - match: "create_*"
        scopes: [mcp:write]
logging:
  level: info
shutdown:
  grace_period: 1s
"#
    )
}

/// The demo's two callers: same issuer, same audience, different scopes.
struct DemoTokens {
    reader: String,
    admin: String,
}

impl DemoTokens {
    fn mint(issuer: &DemoIssuer, url: &str) -> DemoTokens {
        let hour = Duration::from_secs(3600);
        DemoTokens {
            reader: issuer.mint_for(url, "demo-reader", READER_SCOPES, hour),
            admin: issuer.mint_for(url, "demo-admin", ADMIN_SCOPES, hour),
        }
    }
}

const READER_SCOPES: &str = "mcp:read";
const ADMIN_SCOPES: &str = "mcp:read mcp:write mcp:admin";

/// The MCP Inspector release whose CLI takes `--header`; it needs Node >= 22.7.5, which npx
/// fetches from the npm registry as the `node` package when the machine has an older Node.
const INSPECTOR: &str = "npx -y -p node@22 -p @modelcontextprotocol/inspector@1.0.3 mcp-inspector";

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
    let tokens = DemoTokens::mint(&issuer, &url);
    // The demo configuration has no audit file, the only way this can fail.
    let _ = crate::logging::init(&cfg.logging);
    print_banner(&url, admin_port, &tokens, &yaml);
    crate::serve(&cfg, None)
}

/// What the demo prints: the tokens, then numbered commands that tests/e2e/cli.rs runs as printed.
fn print_banner(url: &str, admin_port: u16, tokens: &DemoTokens, yaml: &str) {
    let h =
        r#"-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'"#;
    let list = r#"-d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'"#;
    let names = r#"| grep -o '"name":"[a-z_]*"'"#;
    let call = |id: u32, tool: &str, args: &str| {
        format!(
            r#"-d '{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}'"#
        )
    };
    let echo = call(3, "echo", r#"{"text":"hello through mcpgate"}"#);
    let delete = call(4, "delete_everything", "{}");
    let count = call(6, "slow_count", r#"{"n":5}"#);
    let DemoTokens { reader, admin } = tokens;
    println!(
        r#"
mcpgate demo is running — everything below is on loopback.

  MCP endpoint   {url}
  Admin          http://127.0.0.1:{admin_port}/healthz  /readyz  /metrics
  Policy         every call needs mcp:read; delete_* needs mcp:admin, create_* needs mcp:write.
                 tools/list shows each caller only the tools it may call.

Two access tokens (ES256, valid 1 hour, audience {url}):
export READER='{reader}'
export ADMIN='{admin}'
(READER has "{READER_SCOPES}"; ADMIN has "{ADMIN_SCOPES}".)

# 1. No token: refused with the OAuth challenge (401 + WWW-Authenticate).
curl -i -X POST {url} {h} {list}

# 2. The tools the reader sees, then the admin: the gateway filters tools/list.
curl -s -X POST {url} {h} -H "Authorization: Bearer $READER" {list} {names}
curl -s -X POST {url} {h} -H "Authorization: Bearer $ADMIN" {list} {names}

# 3. The reader calls a tool it may use:
curl -s -X POST {url} {h} -H "Authorization: Bearer $READER" {echo}

# 4. ...and one it may not: 403 insufficient_scope, naming the scope it would need.
curl -i -X POST {url} {h} -H "Authorization: Bearer $READER" {delete}

# 5. The admin may:
curl -s -X POST {url} {h} -H "Authorization: Bearer $ADMIN" {delete}

# 6. Progress streams through unbuffered (SSE):
curl -N -X POST {url} {h} -H "Authorization: Bearer $READER" {count}

# MCP Inspector's CLI (needs Node.js and npm; fetches Node 22 for itself the first time):
{INSPECTOR} --cli {url} --transport http --header "Authorization: Bearer $ADMIN" --method tools/list

The demo runs this configuration (see config/ for more):
{yaml}
Press Ctrl-C to stop.
"#
    );
}
