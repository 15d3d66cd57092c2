//! Route policy configuration: `auth` requirements and MCP rules, their defaults and errors.

use std::path::Path;
use std::time::Duration;

use mcpgate_config::*;

fn parse(route_extra: &str, auth_extra: &str) -> Result<Config, ConfigErrors> {
    let yaml = format!(
        "public_url: https://mcp.example.com\nlisteners:\n  - bind: 127.0.0.1:8080\nissuers:\n  - name: corp\n    issuer: https://login.example.com\n    jwks_uri: https://login.example.com/jwks\nroutes:\n  - name: r\n    path: /r\n    upstream:\n      url: http://127.0.0.1:3001/mcp\n    auth:\n      issuers: [corp]\n{auth_extra}{route_extra}"
    );
    parse_str(&yaml, Path::new("."), &|_| None)
}

#[track_caller]
fn error_at(result: Result<Config, ConfigErrors>, path: &str, fragment: &str) {
    let errs = result.expect_err("expected errors").0;
    assert!(
        errs.iter()
            .any(|e| e.path == path && e.message.contains(fragment)),
        "no error at {path:?} containing {fragment:?}; got:\n{}",
        ConfigErrors(errs.to_vec())
    );
}

#[test]
fn defaults_are_permissive_but_explicit() {
    let c = parse("", "").unwrap();
    let RouteAuth::Required(a) = &c.routes[0].auth else {
        panic!()
    };
    assert_eq!(a.access, Access::default());
    assert!(a.access.require_email_verified);
    assert_eq!(c.routes[0].mcp, McpPolicy::default());
    assert_eq!(
        c.routes[0].mcp.session_idle_timeout,
        Duration::from_secs(3600)
    );
    assert!(!c.routes[0].mcp.allow_batches);
}

#[test]
fn the_issue_example_parses() {
    let auth = "      required_scopes: [mcp:read]\n      allowed_domains: [Example.COM]\n      allowed_groups: [mcp-users]\n      require_claims: { tenant: acme }\n      scope_hierarchy: { mcp:admin: [mcp:write], mcp:write: [mcp:read] }\n      resource_name: GitHub tools\n      resource_documentation: https://docs.example.com/mcp\n";
    let route = "    tools:\n      - match: \"delete_*\"\n        scopes: [mcp:admin]\n      - match: \"create_*\"\n        scopes: [mcp:write]\n        groups: [writers]\n      - match: dangerous_tool\n        deny: true\n    resources: [{ match: \"file:///secret/*\", deny: true }]\n    prompts: [{ match: \"*\", scopes: [mcp:read] }]\n    origins: [https://App.example.com]\n    allow_batches: true\n    identity_headers: { subject: X-User }\n    session_idle_timeout: 10m\n";
    let c = parse(route, auth).unwrap();
    let RouteAuth::Required(a) = &c.routes[0].auth else {
        panic!()
    };
    assert_eq!(a.access.required_scopes, vec!["mcp:read"]);
    assert_eq!(a.access.allowed_domains, vec!["example.com"]);
    assert_eq!(a.access.allowed_groups, vec!["mcp-users"]);
    assert_eq!(
        a.access.require_claims.get("tenant").map(String::as_str),
        Some("acme")
    );
    assert_eq!(a.access.scope_hierarchy["mcp:admin"], vec!["mcp:write"]);
    assert_eq!(a.access.resource_name.as_deref(), Some("GitHub tools"));
    let m = &c.routes[0].mcp;
    assert_eq!(m.tools.len(), 3);
    assert_eq!(
        m.tools[0],
        McpRule {
            pattern: "delete_*".into(),
            scopes: vec!["mcp:admin".into()],
            groups: vec![],
            deny: false
        }
    );
    assert_eq!(m.tools[1].groups, vec!["writers"]);
    assert!(m.tools[2].deny);
    assert!(m.resources[0].deny);
    assert_eq!(m.prompts[0].scopes, vec!["mcp:read"]);
    assert_eq!(m.origins, vec!["https://app.example.com"]);
    assert!(m.allow_batches);
    let ih = m.identity_headers.as_ref().unwrap();
    assert_eq!(ih.subject.as_deref(), Some("x-user"));
    assert_eq!(ih.email, None, "only what is named is sent");
    assert_eq!(m.session_idle_timeout, Duration::from_secs(600));
}

#[test]
fn bad_policy_values_name_their_key() {
    error_at(
        parse("", "      required_scopes: [\"has space\"]\n"),
        "routes[0].auth.required_scopes[0]",
        "invalid scope",
    );
    error_at(
        parse("", "      allowed_domains: [user@example.com]\n"),
        "routes[0].auth.allowed_domains[0]",
        "without the user part",
    );
    error_at(
        parse("", "      resource_documentation: ftp://x\n"),
        "routes[0].auth.resource_documentation",
        "scheme",
    );
    error_at(
        parse("    tools: [{ scopes: [a] }]\n", ""),
        "routes[0].tools[0].match",
        "missing",
    );
    error_at(
        parse("    tools: [{ match: x, allow: true }]\n", ""),
        "routes[0].tools[0].allow",
        "unknown field",
    );
    error_at(
        parse("    origins: [https://app.example.com/path]\n", ""),
        "routes[0].origins[0]",
        "must not have a path",
    );
    error_at(
        parse("    identity_headers: { subject: Authorization }\n", ""),
        "routes[0].identity_headers.subject",
        "credential",
    );
    error_at(
        parse("    session_idle_timeout: 0s\n", ""),
        "routes[0].session_idle_timeout",
        "greater than 0s",
    );
}

#[test]
fn scope_rules_need_an_authenticated_route() {
    let yaml = "public_url: https://mcp.example.com\nlisteners:\n  - bind: 127.0.0.1:8080\nroutes:\n  - name: r\n    path: /r\n    upstream:\n      url: http://127.0.0.1:3001/mcp\n    auth: none\n    tools:\n      - match: x\n        scopes: [a]\n      - match: y\n        deny: true\n";
    error_at(
        parse_str(yaml, Path::new("."), &|_| None),
        "routes[0].tools[0]",
        "authenticated route",
    );
    let ok = yaml.replace("      - match: x\n        scopes: [a]\n", "");
    let c = parse_str(&ok, Path::new("."), &|_| None).unwrap();
    assert!(c.routes[0].mcp.tools[0].deny);
}
