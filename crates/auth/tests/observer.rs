//! What validation reports for metrics: token-cache hits and misses, introspection calls by
//! outcome, and each JWKS issuer's fetches, failures and key age. One test: the observer is
//! process-wide.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use mcpgate_auth::{AuthObserver, CallOutcome, RouteTrust, TokenCache};
use mcpgate_sample::DemoIssuer;
use serde_json::json;

const RESOURCE: &str = "https://mcp.example.com/github/mcp";

#[derive(Default)]
struct Recorded {
    cache: Vec<(TokenCache, bool)>,
    calls: Vec<(String, CallOutcome)>,
}

struct Recorder(Arc<Mutex<Recorded>>);

impl AuthObserver for Recorder {
    fn token_cache(&self, cache: TokenCache, hit: bool) {
        self.0.lock().unwrap().cache.push((cache, hit));
    }
    fn introspection(&self, issuer: &str, outcome: CallOutcome, _elapsed: Duration) {
        self.0.lock().unwrap().calls.push((issuer.into(), outcome));
    }
}

#[tokio::test]
async fn caches_introspection_and_jwks_are_reported() {
    let seen = Arc::new(Mutex::new(Recorded::default()));
    mcpgate_auth::set_observer(Box::new(Recorder(seen.clone())));

    let idp = DemoIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let v = validator(&format!(
        "  - name: idp\n    issuer: {}\n    introspection:\n      endpoint: {}\n      client_id: demo-client\n      client_secret: demo-secret\n",
        idp.issuer_url(),
        idp.introspection_url()
    ));
    let trust = RouteTrust::new(vec!["idp".into()], RESOURCE.into());
    let token = idp.mint_opaque(json!({"sub": "carol", "aud": RESOURCE, "exp": now() + 600}));
    v.validate(&token, &trust).await.unwrap();
    v.validate(&token, &trust).await.unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.cache,
            vec![
                (TokenCache::Introspection, false),
                (TokenCache::Introspection, true)
            ]
        );
        assert_eq!(seen.calls, vec![("idp".to_string(), CallOutcome::Answered)]);
    }

    // An IdP refusing our credentials: a failed call, never an answer.
    let bad = validator(&format!(
        "  - name: strict\n    issuer: {}\n    introspection:\n      endpoint: {}\n      client_id: demo-client\n      client_secret: wrong\n",
        idp.issuer_url(),
        idp.introspection_url()
    ));
    let strict = RouteTrust::new(vec!["strict".into()], RESOURCE.into());
    assert!(bad.validate(&token, &strict).await.is_err());
    assert_eq!(
        seen.lock().unwrap().calls.last(),
        Some(&("strict".to_string(), CallOutcome::Failed))
    );

    // JWKS: a reachable issuer has fetched keys of a known age; an unreachable one counts
    // failures and has no keys to age.
    let key = TestKey::ec("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let dead = format!("http://127.0.0.1:{}/jwks", free_port());
    let v = validator(&format!(
        "  - name: up\n    issuer: https://up.example\n    jwks_uri: {}\n  - name: down\n    issuer: https://down.example\n    jwks_uri: {dead}\n",
        jwks.url("/jwks")
    ));
    v.start_background();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = v.jwks_stats();
        let up = stats.iter().find(|s| s.issuer == "up").unwrap();
        let down = stats.iter().find(|s| s.issuer == "down").unwrap();
        if let (Some(age), true) = (up.keys_age, down.failures >= 1) {
            assert!(up.fetches >= 1 && up.failures == 0);
            assert!(age < Duration::from_secs(20));
            assert!(down.keys_age.is_none());
            assert!(down.fetches >= down.failures);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
