//! How the gateway's per-request cost grows with its configuration and its traffic: routes,
//! tool rules, `tools/list` size, distinct tokens and issuers. One measurement per process (so
//! that its memory is its own): `cargo bench -p mcpgate-mcp --bench growth -- <case> <n>` prints
//! one JSON line; `tests/bench/growth.py` runs every case and size and writes docs/benchmarks.md.
//!
//! Cases: `routes` (find the last of n routes), `literal_rules` / `wildcard_rules` (judge a
//! `tools/call` matched by the last of n rules), `list_json` / `list_sse` (filter a `tools/list`
//! of n tools), `tokens` (n distinct valid tokens through the cache, then a hit), `issuers`
//! (a cached token of the last of n trusted issuers).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcpgate_auth::{RouteTrust, TokenValidator};
use mcpgate_config::{McpPolicy, McpRule};
use mcpgate_http::RouteTable;
use mcpgate_mcp::filter::{filter_json, SseFilter};
use mcpgate_mcp::jsonrpc::{ListKind, Target};
use mcpgate_mcp::policy::RoutePolicy;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

const RESOURCE: &str = "https://mcp.example.com/mcp";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(case), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: growth <routes|literal_rules|wildcard_rules|list_json|list_sse|tokens|issuers> <n>");
        std::process::exit(2);
    };
    let before = rss_kib();
    let ns = match case.as_str() {
        "routes" => routes(n),
        "literal_rules" => rules(n, false),
        "wildcard_rules" => rules(n, true),
        "list_json" => list(n, false),
        "list_sse" => list(n, true),
        "tokens" => tokens(n),
        "issuers" => issuers(n),
        other => {
            eprintln!("unknown case {other}");
            std::process::exit(2);
        }
    };
    let grown = rss_kib().saturating_sub(before);
    println!(r#"{{"case":"{case}","n":{n},"ns_per_op":{ns:.1},"rss_growth_kib":{grown}}}"#);
}

/// Median time of one call of `op`, over 7 rounds of at least 100 ms each.
fn time(mut op: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let (start, mut calls) = (Instant::now(), 0u64);
            while start.elapsed() < Duration::from_millis(100) {
                for _ in 0..64 {
                    op();
                }
                calls += 64;
            }
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

/// This process's resident memory (KiB).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn routes(n: usize) -> f64 {
    let paths: Vec<String> = (0..n).map(|i| format!("/svc{i}/mcp")).collect();
    let table = RouteTable::new(paths.iter().map(|p| (None, p.as_str())));
    let wanted = format!("/svc{}/mcp/messages", n - 1);
    time(|| {
        black_box(table.find(Some("mcp.example.com"), black_box(&wanted)));
    })
}

fn rule(pattern: String) -> McpRule {
    McpRule {
        pattern,
        scopes: vec!["mcp:write".into()],
        groups: vec![],
        deny: false,
    }
}

fn rules(n: usize, wildcard: bool) -> f64 {
    let name = |i: usize| {
        if wildcard {
            format!("tool_{i}_*")
        } else {
            format!("tool_{i}")
        }
    };
    let mcp = McpPolicy {
        tools: (0..n).map(|i| rule(name(i))).collect(),
        ..McpPolicy::default()
    };
    let policy = RoutePolicy::compile(None, &mcp);
    let target = Target::Tool(format!(
        "tool_{}{}",
        n - 1,
        if wildcard { "_x" } else { "" }
    ));
    time(|| {
        black_box(policy.check_target(None, black_box(&target)).is_ok());
    })
}

/// A route with ten rules (literal and wildcard) filtering an `n`-tool list.
fn list(n: usize, sse: bool) -> f64 {
    let mut tools: Vec<McpRule> = (0..5).map(|i| rule(format!("admin_{i}"))).collect();
    tools.extend((0..5).map(|i| McpRule {
        deny: true,
        ..rule(format!("hidden_{i}_*"))
    }));
    let policy = RoutePolicy::compile(
        None,
        &McpPolicy {
            tools,
            ..McpPolicy::default()
        },
    );
    let items: Vec<_> = (0..n)
        .map(|i| json!({"name": format!("tool_{i}"), "description": "A tool of the benchmark.", "inputSchema": {"type": "object"}}))
        .collect();
    let listing = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": items}}).to_string();
    let event = format!("event: message\ndata: {listing}\n\n");
    let allow = |t: &Target| policy.allows_target(None, t);
    time(|| {
        if sse {
            let (mut f, mut out) = (SseFilter::new(ListKind::Tools), Vec::new());
            f.push(event.as_bytes(), &allow, &mut out);
            black_box(out);
        } else {
            black_box(filter_json(ListKind::Tools, listing.as_bytes(), &allow));
        }
    })
}

/// An ES256 issuer: its signing key and a validator trusting `issuers` names for it.
struct Issuer {
    key: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    validator: TokenValidator,
    _dir: tempfile::TempDir,
}

impl Issuer {
    fn new(names: usize) -> Issuer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = key.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, json!({ "keys": [jwk] }).to_string()).unwrap();
        let issuers: String = (0..names)
            .map(|i| format!("  - {{name: i{i}, issuer: 'https://idp{i}.example.com', jwks_file: '{}', algorithms: [ES256]}}\n", jwks.display()))
            .collect();
        let yaml = format!(
            "public_url: https://mcp.example.com\nlisteners: [{{bind: '127.0.0.1:1'}}]\nissuers:\n{issuers}routes:\n  - {{name: r, path: /mcp, upstream: {{url: 'http://127.0.0.1:1/mcp'}}, auth: none}}\n"
        );
        let config =
            mcpgate_config::parse_str(&yaml, std::path::Path::new("."), &|_| None).unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let validator = TokenValidator::new(&config.issuers, reqwest::Client::new());
        Issuer {
            key,
            rng,
            validator,
            _dir: dir,
        }
    }

    fn trust(names: usize) -> RouteTrust {
        RouteTrust::new(
            (0..names).map(|i| format!("i{i}")).collect(),
            RESOURCE.into(),
        )
    }

    fn mint(&self, issuer: usize, sub: usize) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"k","typ":"at+jwt"}"#);
        let claims = json!({"iss": format!("https://idp{issuer}.example.com"), "sub": format!("user-{sub}"),
            "aud": RESOURCE, "exp": now + 3600, "iat": now, "scope": "mcp:read"});
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `n` distinct tokens validated once each (the cache fills up to its bound), then the cost of
/// a hit on the newest one; the memory reported is what filling the cache added.
fn tokens(n: usize) -> f64 {
    let rt = runtime();
    let issuer = Issuer::new(1);
    let trust = Issuer::trust(1);
    let mut last = String::new();
    for sub in 0..n {
        last = issuer.mint(0, sub);
        rt.block_on(issuer.validator.validate(&last, &trust))
            .unwrap();
    }
    time(|| {
        black_box(
            rt.block_on(issuer.validator.validate(black_box(&last), &trust))
                .is_ok(),
        );
    })
}

/// A cached token of the last of `n` issuers a route trusts.
fn issuers(n: usize) -> f64 {
    let rt = runtime();
    let issuer = Issuer::new(n);
    let trust = Issuer::trust(n);
    let token = issuer.mint(n - 1, 0);
    rt.block_on(issuer.validator.validate(&token, &trust))
        .unwrap();
    time(|| {
        black_box(
            rt.block_on(issuer.validator.validate(black_box(&token), &trust))
                .is_ok(),
        );
    })
}
