//! The shipped example configurations under `/config` load with `load_file`.
//!
//! This binary holds a single test because it sets process environment variables.

use std::path::PathBuf;

use mcpgate_config::*;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(name)
}

#[test]
fn example_configs_load() {
    let minimal = load_file(&example("minimal.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(minimal.listeners.len(), 1);
    assert!(minimal.listeners[0].tls.is_none());
    assert_eq!(minimal.routes.len(), 1);
    assert!(matches!(minimal.routes[0].auth, RouteAuth::None));
    assert_eq!(
        minimal.routes[0].upstream.url.as_str(),
        "http://127.0.0.1:3001/mcp"
    );

    // The reference file needs its two secrets from the environment (TLS is commented out).
    std::env::set_var("INTROSPECT_SECRET", "example-introspect-secret");
    std::env::set_var("UPSTREAM_KEY", "example-upstream-key");
    let full = load_file(&example("mcpgate.example.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full.public_url.as_str(), "https://mcp.example.com/");
    assert_eq!(full.admin.as_ref().map(|a| a.bind.port()), Some(9090));
    assert_eq!(full.listeners[0].trusted_proxies.len(), 3);
    let names: Vec<&str> = full.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["github", "internal-tools", "public-docs"]);
    let github = &full.routes[0];
    assert_eq!(
        github.upstream.headers["x-api-key"].expose(),
        "example-upstream-key"
    );
    let RouteAuth::Required(auth) = &github.auth else {
        panic!("github route must require auth")
    };
    assert_eq!(auth.issuers, ["corp", "partner"]);
    assert_eq!(auth.resource.as_str(), "https://mcp.example.com/github/mcp");
    assert_eq!(full.issuers.len(), 2);
    assert_eq!(full.issuers[0].jwks, Some(JwksSource::Discovery));
    assert!(full.issuers[1].jwks.is_none());
    let intro = full.issuers[1].introspection.as_ref().unwrap();
    assert_eq!(intro.client_secret.expose(), "example-introspect-secret");
    assert_eq!(full.limits, Limits::default());
    assert_eq!(full.logging, Logging::default());
    assert_eq!(full.shutdown, Shutdown::default());
}
