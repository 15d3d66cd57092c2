//! `mcpgate demo`: the gateway plus an embedded sample MCP server and a local token issuer, all
//! on loopback, configured through the same YAML path as `run`. The demo issuer exists only
//! here: no configuration key can enable it.

use std::process::ExitCode;
use std::time::Duration;

use mcpgate_sample::{ClientOptions, DemoClient, DemoIssuer, McpServerOptions, SampleMcpServer};

use crate::exit;

/// The demo's configuration, rendered as the YAML a user would write. The tool rules are the
/// point of the demo: the reader and the admin see and may call different tools.
fn demo_yaml(port: u16, admin_port: u16, peers: &Peers, login_key: &str) -> String {
    let Peers {
        issuer,
        jwks,
        upstream,
        redirect,
        idp_client,
        idp_secret,
    } = peers;
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
login:
  signing_keys: [{login_key}]
  upstream:
    issuer: {issuer}
    client_id: {idp_client}
    client_secret: {idp_secret}
  clients:
    registered:
      - client_id: demo-app
        name: Demo MCP client
        redirect_uris: ["{redirect}"]
  allowed_domains: [example.com]
  grants:
    - scopes: [mcp:read]
    - scopes: [mcp:write, mcp:admin]
      groups: [mcp-admins]
routes:
  - name: demo
    path: /mcp
    upstream:
      url: {upstream}
    auth:
      issuers: [login, demo]
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

/// Where the demo's peers listen, as the configuration names them.
struct Peers {
    issuer: String,
    jwks: String,
    upstream: String,
    /// The demo client's redirect URI, registered at the front door.
    redirect: String,
    idp_client: String,
    idp_secret: String,
}

/// The running peers: the issuer (also the login's identity provider), the MCP server and the
/// demo client, kept alive on their own runtime thread for the life of the process.
fn start_peers(port: u16) -> std::io::Result<(DemoIssuer, Peers, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("demo runtime");
        rt.block_on(async move {
            let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let gateway = format!("http://127.0.0.1:{port}");
            let client = ClientOptions {
                issuer: gateway.clone(),
                resource: format!("{gateway}/mcp"),
                client_id: "demo-app".into(),
            };
            let started = async {
                let issuer = DemoIssuer::start(loopback).await?;
                let server = SampleMcpServer::start(loopback, McpServerOptions::default()).await?;
                let client = DemoClient::start(loopback, client).await?;
                std::io::Result::Ok((issuer, server, client))
            };
            match started.await {
                Ok((issuer, server, client)) => {
                    let peers = Peers {
                        issuer: issuer.issuer_url(),
                        jwks: issuer.jwks_url(),
                        upstream: server.url(),
                        redirect: client.redirect_uri(),
                        idp_client: issuer.options().client_id.clone(),
                        idp_secret: issuer.options().client_secret.clone(),
                    };
                    let _ = tx.send(Ok((issuer, peers, client.login_url())));
                    let _keep = (server, client);
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the demo peers did not start")))
}

pub fn run(port: u16, admin_port: u16) -> ExitCode {
    // The demo client's HTTP client is built before the gateway installs the provider.
    mcpgate_proxy::server::install_crypto_provider();
    let (issuer, peers, login_url) = match start_peers(port) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("demo: cannot start the sample peers: {e}");
            return ExitCode::from(exit::START_FAILED);
        }
    };
    let cfg = match demo_config(port, admin_port, &peers) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(exit::START_FAILED);
        }
    };
    let url = format!("http://127.0.0.1:{port}/mcp");
    let tokens = DemoTokens::mint(&issuer, &url);
    // The demo configuration has no audit file, the only way this can fail.
    let _ = crate::logging::init(&cfg.logging);
    let yaml = demo_yaml(port, admin_port, &peers, "<a fresh key>");
    print_banner(&url, admin_port, &tokens, &login_url, &yaml);
    crate::serve(&cfg, None)
}

/// The demo's configuration, with a fresh front-door signing key. The key file exists only
/// while the configuration is read: the key then lives in memory, and the demo never reloads.
fn demo_config(
    port: u16,
    admin_port: u16,
    peers: &Peers,
) -> Result<mcpgate_config::Config, String> {
    let dir = std::env::temp_dir().join(format!("mcpgate-demo-{}", std::process::id()));
    let key = dir.join("login.pem");
    write_private(&dir, &key, &fresh_signing_key()?)
        .map_err(|e| format!("cannot write the demo key: {e}"))?;
    let yaml = demo_yaml(port, admin_port, peers, &key.display().to_string());
    let parsed = mcpgate_config::parse_str(&yaml, std::path::Path::new("."), &|_| None);
    let _ = std::fs::remove_dir_all(&dir);
    parsed.map_err(|errors| format!("internal configuration error:\n{errors}"))
}

/// A P-256 key in PKCS#8 PEM.
fn fresh_signing_key() -> Result<String, String> {
    use base64::Engine;
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let der =
        ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    Ok(format!(
        "-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"
    ))
}

/// Writes `text` readable by this user only.
fn write_private(dir: &std::path::Path, file: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(text.as_bytes())
}

/// What the demo prints: the tokens, then numbered commands that tests/e2e/cli.rs runs as printed.
fn print_banner(url: &str, admin_port: u16, tokens: &DemoTokens, login_url: &str, yaml: &str) {
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

# 7. Log in as a person would: mcpgate is also the OAuth server for MCP clients, in front of an
#    identity provider without client registration (like Entra ID or Google). Open this in a
#    browser, sign in as alice (an admin) or bob (a reader), answer mcpgate's consent page,
#    and the demo client shows the token mcpgate issued you:
{login_url}

# MCP Inspector's CLI (needs Node.js and npm; fetches Node 22 for itself the first time):
{INSPECTOR} --cli {url} --transport http --header "Authorization: Bearer $ADMIN" --method tools/list

The demo runs this configuration (see config/ for more):
{yaml}
Press Ctrl-C to stop.
"#
    );
}
