//! The `sessions` section: modes, the key ring (inline, from the environment, from a file),
//! and every error with its key path — without ever quoting a key or a Redis password.

use std::path::Path;
use std::time::Duration;

use mcpgate_config::*;

/// `openssl rand -base64 32` output, and the same bytes URL-safe without padding.
const KEY_A: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const KEY_A_URL: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA";
const KEY_B: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn env(name: &str) -> Option<String> {
    (name == "SESSION_KEY").then(|| KEY_B.to_owned())
}

fn doc(sessions: &str) -> String {
    format!(
        "public_url: https://mcp.example.com\nlisteners:\n  - bind: 127.0.0.1:8080\nroutes:\n  - name: r\n    path: /r\n    upstream: {{ url: http://127.0.0.1:3001/mcp }}\n    auth: none\n{sessions}"
    )
}

fn parse_in(dir: &Path, sessions: &str) -> Result<Config, ConfigErrors> {
    parse_str(&doc(sessions), dir, &env)
}

fn parse(sessions: &str) -> Result<Config, ConfigErrors> {
    parse_in(Path::new("/nonexistent-base-dir"), sessions)
}

#[track_caller]
fn assert_error(sessions: &str, path: &str, fragment: &str) -> String {
    let errs = match parse(sessions) {
        Ok(_) => panic!("expected an error for:\n{sessions}"),
        Err(e) => e,
    };
    let text = errs.to_string();
    assert!(
        errs.0
            .iter()
            .any(|e| e.path == path && e.message.contains(fragment)),
        "no error at {path:?} containing {fragment:?}; got:\n{text}"
    );
    text
}

#[test]
fn memory_is_the_default() {
    assert!(matches!(parse("").unwrap().sessions, Sessions::Memory));
    let explicit = parse("sessions: { mode: memory }").unwrap();
    assert!(matches!(explicit.sessions, Sessions::Memory));
}

#[test]
fn keys_imply_sealed_mode_with_a_day_of_max_age() {
    let c = parse(&format!(
        "sessions:\n  keys: [\"{KEY_A}\", \"${{SESSION_KEY}}\"]"
    ))
    .unwrap();
    let Sessions::Sealed { keys, max_age } = c.sessions else {
        panic!("sealed expected");
    };
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].expose(), &core::array::from_fn(|i| i as u8));
    assert_eq!(max_age, Duration::from_secs(86_400));
    assert!(!format!("{keys:?}").contains(KEY_A), "Debug hides keys");
}

#[test]
fn both_base64_alphabets_are_accepted() {
    let padded = parse(&format!("sessions: {{ keys: [\"{KEY_A}\"] }}")).unwrap();
    let url = parse(&format!(
        "sessions: {{ mode: sealed, keys: [\"{KEY_A_URL}\"], max_age: 2h }}"
    ))
    .unwrap();
    let (Sessions::Sealed { keys: a, .. }, Sessions::Sealed { keys: b, max_age }) =
        (padded.sessions, url.sessions)
    else {
        panic!("sealed expected");
    };
    assert_eq!(a, b);
    assert_eq!(max_age, Duration::from_secs(7200));
}

#[test]
fn a_keys_file_holds_one_key_per_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keys"),
        format!("# newest first\n{KEY_B}\n\n{KEY_A}\n"),
    )
    .unwrap();
    let c = parse_in(dir.path(), "sessions: { keys_file: keys }").unwrap();
    let Sessions::Sealed { keys, .. } = c.sessions else {
        panic!("sealed expected");
    };
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].expose()[1], 1, "the first line seals");

    std::fs::write(dir.path().join("bad"), format!("{KEY_A}\nnot-a-key!\n")).unwrap();
    let errs = parse_in(dir.path(), "sessions: { keys_file: bad }").unwrap_err();
    let e = &errs.0[0];
    assert_eq!(e.path, "sessions.keys_file");
    assert!(e.message.contains("line 2: not base64"), "{}", e.message);
    assert!(
        !errs.to_string().contains("not-a-key"),
        "never quotes a line"
    );

    std::fs::write(dir.path().join("empty"), "# nothing yet\n\n").unwrap();
    let errs = parse_in(dir.path(), "sessions: { keys_file: empty }").unwrap_err();
    assert!(errs.to_string().contains("no key"), "{errs}");
}

#[test]
fn bad_keys_are_reported_at_their_path_without_their_value() {
    let short = "c2hvcnQta2V5";
    let text = assert_error(
        &format!("sessions: {{ keys: [\"{KEY_A}\", \"{short}\"] }}"),
        "sessions.keys[1]",
        "32 bytes, this one is 9",
    );
    assert!(!text.contains(short));
    assert_error(
        "sessions: { keys: [\"%%%\"] }",
        "sessions.keys[0]",
        "not base64",
    );
    assert_error(
        "sessions: { keys: [\"${MISSING_KEY}\"] }",
        "sessions.keys[0]",
        "MISSING_KEY",
    );
    assert_error(
        "sessions: { mode: sealed }",
        "sessions.keys",
        "needs `keys`",
    );
    assert_error("sessions: { keys: [] }", "sessions.keys", "at least one");
    assert_error(
        &format!("sessions: {{ keys: [\"{KEY_A}\"], keys_file: k }}"),
        "sessions",
        "not both",
    );
    assert_error(
        &format!("sessions: {{ keys: [\"{KEY_A}\"], max_age: 0s }}"),
        "sessions.max_age",
        "greater than 0s",
    );
}

#[test]
fn redis_mode_needs_a_redis_url() {
    let c = parse("sessions: { redis: \"redis://:pw@10.0.0.5:6379/2\" }").unwrap();
    let Sessions::Redis { url } = &c.sessions else {
        panic!("redis expected");
    };
    assert_eq!(url.expose(), "redis://:pw@10.0.0.5:6379/2");
    assert!(
        !format!("{c:?}").contains(":pw@"),
        "Debug hides the password"
    );
    assert_error("sessions: { mode: redis }", "sessions.redis", "missing");
    for (bad, why) in [
        ("http://10.0.0.5", "scheme"),
        ("redis://", "host"),
        ("10.0.0.5:6379", "expected redis://"),
    ] {
        assert_error(
            &format!("sessions: {{ redis: \"{bad}\" }}"),
            "sessions.redis",
            why,
        );
    }
    let text = assert_error(
        "sessions: { redis: \"https://:hunter2@x\" }",
        "sessions.redis",
        "scheme",
    );
    assert!(!text.contains("hunter2"));
}

#[test]
fn keys_the_mode_would_ignore_are_errors() {
    assert_error(
        &format!("sessions: {{ mode: memory, keys: [\"{KEY_A}\"] }}"),
        "sessions.keys",
        "only used with `mode: sealed`",
    );
    assert_error(
        "sessions: { mode: redis, redis: \"redis://r\", max_age: 1h }",
        "sessions.max_age",
        "only used with `mode: sealed`",
    );
    assert_error(
        &format!("sessions: {{ mode: sealed, keys: [\"{KEY_A}\"], redis: \"redis://r\" }}"),
        "sessions.redis",
        "only used with `mode: redis`",
    );
    assert_error(
        &format!("sessions: {{ keys: [\"{KEY_A}\"], redis: \"redis://r\" }}"),
        "sessions",
        "set `mode`",
    );
    assert_error(
        "sessions: { mode: sticky }",
        "sessions.mode",
        "expected one of",
    );
    assert_error("sessions: { ttl: 1h }", "sessions.ttl", "unknown field");
}
