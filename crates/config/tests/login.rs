//! The `login:` section: a valid front door (its keys read, the reserved `login` issuer added for
//! routes to trust) and every refusal with its key path.

use std::path::Path;

use mcpgate_config::*;

/// A P-256 key in PKCS#8 PEM made by ring, so that the test needs no key generator of its own.
fn p256_pem() -> String {
    use base64::Engine;
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let der = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// A document with a login section (`login` is its body) and a route trusting `trust`.
fn doc(login: &str, trust: &str) -> String {
    format!(
        "public_url: https://mcp.example.com\n\
         listeners:\n  - bind: 127.0.0.1:8080\n\
         login:\n{login}\n\
         routes:\n  - name: r\n    path: /r\n    upstream:\n      url: http://127.0.0.1:3001/mcp\n\
         \x20   auth:\n      issuers: [{trust}]\n"
    )
}

const UPSTREAM: &str =
    "  upstream:\n    issuer: https://idp.example.com/\n    client_id: mcpgate\n";

fn parse_in(dir: &Path, yaml: &str) -> Result<Config, ConfigErrors> {
    parse_str(yaml, dir, &|_| None)
}

fn with_key() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.pem"), p256_pem()).unwrap();
    (dir, "  signing_keys: [k.pem]\n".to_owned())
}

#[track_caller]
fn assert_error(result: Result<Config, ConfigErrors>, path: &str, fragment: &str) {
    let errs = result.expect_err("expected errors").0;
    assert!(
        errs.iter()
            .any(|e| e.path == path && e.message.contains(fragment)),
        "no error at {path:?} containing {fragment:?}; got:\n{}",
        ConfigErrors(errs.to_vec())
    );
}

#[test]
fn a_front_door_gives_routes_a_login_issuer_with_its_own_keys() {
    let (dir, keys) = with_key();
    let c = parse_in(dir.path(), &doc(&format!("{keys}{UPSTREAM}"), "login")).unwrap();
    let login = c.login.as_ref().unwrap();
    assert_eq!(login.issuer, "https://mcp.example.com");
    // The IdP's issuer is kept as written: Auth0's ends with a slash and ID tokens say so.
    assert_eq!(login.upstream.issuer, "https://idp.example.com/");
    assert_eq!(login.upstream.scopes, ["openid", "email", "profile"]);
    assert!(login.clients.metadata_documents && !login.clients.dynamic_registration);
    assert_eq!(login.access_ttl.as_secs(), 600);
    let issuer = c.issuers.iter().find(|i| i.name == "login").unwrap();
    assert_eq!(issuer.issuer, "https://mcp.example.com");
    assert!(issuer.require_at_jwt);
    assert_eq!(issuer.algorithms, [Algorithm::ES256]);
    let Some(JwksSource::Inline(jwks)) = &issuer.jwks else {
        panic!("inline keys expected");
    };
    let jwks: serde_json::Value = serde_json::from_str(jwks).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], login.signing_keys[0].kid.as_str());
    assert!(jwks["keys"][0].get("d").is_none(), "never the private part");
    assert!(
        !format!("{login:?}").contains("PRIVATE"),
        "Debug shows no key"
    );
}

#[test]
fn without_a_login_section_no_route_may_trust_login() {
    let yaml = "public_url: https://mcp.example.com\nlisteners:\n  - bind: 127.0.0.1:8080\n\
        routes:\n  - name: r\n    path: /r\n    upstream:\n      url: http://127.0.0.1:3001/mcp\n\
        \x20   auth:\n      issuers: [login]\n";
    assert_error(
        parse_in(Path::new("/"), yaml),
        "routes[0].auth.issuers[0]",
        "unknown issuer",
    );
}

#[test]
fn the_login_issuer_name_is_reserved() {
    let (dir, keys) = with_key();
    let yaml = format!(
        "{}issuers:\n  - name: login\n    issuer: https://evil.example\n    jwks_uri: https://evil.example/jwks\n",
        doc(&format!("{keys}{UPSTREAM}"), "login")
    );
    assert_error(parse_in(dir.path(), &yaml), "issuers[0].name", "reserved");
}

#[test]
fn bad_login_settings_are_refused_with_their_paths() {
    let (dir, keys) = with_key();
    std::fs::write(dir.path().join("not-a-key.pem"), "hello").unwrap();
    let cases = [
        (format!("  signing_keys: [not-a-key.pem]\n{UPSTREAM}"), "login.signing_keys[0]", "no PEM private key"),
        (format!("  signing_keys: []\n{UPSTREAM}"), "login.signing_keys", "at least one"),
        (keys.clone(), "login.upstream", "missing required key"),
        (format!("{keys}{UPSTREAM}    scopes: [email]\n"), "login.upstream.scopes", "openid"),
        (format!("{keys}{UPSTREAM}    params: {{ state: x }}\n"), "login.upstream.params.state", "set by mcpgate"),
        (format!("{keys}{UPSTREAM}  tokens: {{ access_ttl: 2h }}\n"), "login.tokens.access_ttl", "at most 1h"),
        (format!("{keys}{UPSTREAM}  store: mongodb://x\n"), "login.store", "redis"),
        (
            format!("{keys}{UPSTREAM}  clients:\n    registered:\n      - client_id: c\n        redirect_uris: [\"http://evil.example/cb\"]\n"),
            "login.clients.registered[0].redirect_uris[0]",
            "loopback",
        ),
        (
            format!("{keys}{UPSTREAM}  clients:\n    registered:\n      - client_id: https://app.example/client.json\n        redirect_uris: [\"https://app.example/cb\"]\n"),
            "login.clients.registered[0].client_id",
            "metadata document",
        ),
    ];
    for (login, path, fragment) in cases {
        assert_error(parse_in(dir.path(), &doc(&login, "login")), path, fragment);
    }
}

#[test]
fn a_changed_front_door_needs_a_restart() {
    let (dir, keys) = with_key();
    let a = parse_in(dir.path(), &doc(&format!("{keys}{UPSTREAM}"), "login")).unwrap();
    let b = parse_in(
        dir.path(),
        &doc(
            &format!("{keys}{UPSTREAM}  consent_remember: 1d\n"),
            "login",
        ),
    )
    .unwrap();
    assert_eq!(restart_required(&a, &a.clone()), Vec::<&str>::new());
    assert_eq!(restart_required(&a, &b), ["login"]);
}
