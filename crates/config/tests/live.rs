//! `restart_required`: which changes a reload can apply and which need a restart.

use std::path::Path;

use mcpgate_config::{parse_str, restart_required, Config};

fn config(extra: &str, upstream_port: u16) -> Config {
    let yaml = format!(
        "public_url: https://mcp.example.com\n\
         listeners:\n  - bind: 127.0.0.1:8080\n\
         admin: {{ bind: 127.0.0.1:9090 }}\n\
         routes:\n  - name: r\n    path: /r\n    upstream:\n      url: http://127.0.0.1:{upstream_port}/mcp\n    auth: none\n\
         {extra}\n"
    );
    parse_str(&yaml, Path::new("/"), &|_| None).unwrap()
}

#[test]
fn routes_limits_and_access_log_change_live() {
    let old = config("", 3001);
    let new = config(
        "limits: { max_request_body: 1MiB }\nlogging: { access_log: false }",
        3002,
    );
    assert!(restart_required(&old, &new).is_empty());
}

#[test]
fn sockets_logging_setup_and_grace_period_need_a_restart() {
    let old = config("", 3001);
    let moved = config("", 3001);
    let mut moved = moved;
    moved.listeners[0].bind = "127.0.0.1:8081".parse().unwrap();
    assert_eq!(restart_required(&old, &moved), ["listeners"]);

    let new = config(
        "logging: { level: debug, format: json }\nshutdown: { grace_period: 5s }",
        3001,
    );
    assert_eq!(
        restart_required(&old, &new),
        ["logging.format", "logging.level", "shutdown.grace_period"]
    );
    let mut no_admin = config("", 3001);
    no_admin.admin = None;
    assert_eq!(restart_required(&old, &no_admin), ["admin"]);
}

#[test]
fn session_storage_and_keys_need_a_restart() {
    let old = config("", 3001);
    let key = "sessions: { keys: [\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"] }";
    let sealed = config(key, 3001);
    assert_eq!(restart_required(&old, &sealed), ["sessions"]);
    assert!(restart_required(&sealed, &config(key, 3001)).is_empty());
}

#[test]
fn rate_limit_rules_change_live_and_their_store_needs_a_restart() {
    let rules = |rate: &str| {
        format!("rate_limits:\n  rules:\n    - {{ name: per-user, key: subject, rate: {rate}, burst: 5 }}")
    };
    let old = config(&rules("60/min"), 3001);
    assert!(restart_required(&old, &config(&rules("120/min"), 3001)).is_empty());
    assert_eq!(
        restart_required(&config("", 3001), &old),
        ["rate_limits.store"],
        "adding the section needs its store"
    );
    let redis = format!("{}\n  store: redis://127.0.0.1:6379/0", rules("60/min"));
    assert_eq!(
        restart_required(&old, &config(&redis, 3001)),
        ["rate_limits.store"]
    );
}
