//! A validator rebuilt for a reloaded configuration: unchanged issuers keep their keys, refresh
//! loop and cached results; changed ones start afresh, and nothing cached under the old settings
//! is trusted under the new ones.

mod common;

use std::time::Duration;

use common::idp_client;
use mcpgate_auth::{RouteTrust, TokenValidator};
use mcpgate_config::Issuer;
use mcpgate_sample::DemoIssuer;

const RESOURCE: &str = "https://mcp.example.com/mcp";

fn issuers(a: &DemoIssuer, b: &DemoIssuer, b_leeway: &str) -> Vec<Issuer> {
    let yaml = format!(
        "public_url: https://mcp.example.com\nlisteners: [{{bind: '127.0.0.1:1'}}]\n\
         issuers:\n  - {{name: a, issuer: '{}', discovery: true, algorithms: [ES256]}}\n  \
         - {{name: b, issuer: '{}', discovery: true, algorithms: [ES256], leeway: {b_leeway}}}\n\
         routes:\n  - {{name: r, path: /mcp, upstream: {{url: 'http://127.0.0.1:1/mcp'}}, auth: none}}\n",
        a.issuer_url(),
        b.issuer_url()
    );
    mcpgate_config::parse_str(&yaml, std::path::Path::new("."), &|_| None)
        .unwrap_or_else(|e| panic!("test config: {e:?}"))
        .issuers
}

fn trust(name: &str) -> RouteTrust {
    RouteTrust::new(vec![name.into()], RESOURCE.into())
}

async fn ready(v: &TokenValidator) {
    v.start_background();
    assert!(v.wait_ready(Duration::from_secs(10)).await, "keys fetched");
}

/// Two local issuers, `a` and `b`, on free loopback ports.
async fn two_issuers() -> (DemoIssuer, DemoIssuer) {
    let start = || DemoIssuer::start("127.0.0.1:0".parse().unwrap());
    (start().await.unwrap(), start().await.unwrap())
}

#[tokio::test]
async fn unchanged_issuers_keep_their_keys_changed_ones_refetch() {
    let (a, b) = two_issuers().await;
    let old = TokenValidator::new(&issuers(&a, &b, "30s"), idp_client());
    ready(&old).await;
    let token_a = a.mint_default(RESOURCE, "mcp:read", Duration::from_secs(300));
    old.validate(&token_a, &trust("a")).await.unwrap();
    let (a_before, b_before) = (a.jwks_fetches(), b.jwks_fetches());

    let new = TokenValidator::reuse_from(&old, &issuers(&a, &b, "45s"), idp_client());
    assert_eq!(new.renewed_since(&old), ["b"]);
    // Unchanged issuer: ready at once, with the keys it had.
    assert!(new.jwks_fetches("a") >= 1);
    drop(old);
    ready(&new).await;
    let token_b = b.mint_default(RESOURCE, "mcp:read", Duration::from_secs(300));
    new.validate(&token_a, &trust("a")).await.unwrap();
    new.validate(&token_b, &trust("b")).await.unwrap();

    assert_eq!(a.jwks_fetches(), a_before, "unchanged issuer refetched");
    assert!(b.jwks_fetches() > b_before, "changed issuer kept old keys");
}

#[tokio::test]
async fn a_result_cached_under_old_settings_is_checked_again() {
    let (a, b) = two_issuers().await;
    let old = TokenValidator::new(&issuers(&a, &b, "30s"), idp_client());
    ready(&old).await;
    let token_b = b.mint_default(RESOURCE, "mcp:read", Duration::from_secs(300));
    old.validate(&token_b, &trust("b")).await.unwrap();

    // Issuer b is removed: its cached verification must not be honoured any more.
    let only_a: Vec<Issuer> = issuers(&a, &b, "30s")
        .into_iter()
        .filter(|i| i.name == "a")
        .collect();
    let new = TokenValidator::reuse_from(&old, &only_a, idp_client());
    assert!(new.renewed_since(&old).is_empty());
    assert!(new.validate(&token_b, &trust("b")).await.is_err());
}
