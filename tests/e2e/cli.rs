//! End-to-end for the command line: `check` exit codes and messages, `--version`, and the
//! newcomer's `demo` — started as a user would, every command it prints run as printed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn check_accepts_valid_and_lists_every_error_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(
        dir.path(),
        "good.yaml",
        "public_url: http://127.0.0.1:8080\nlisteners:\n  - bind: 127.0.0.1:8080\nroutes:\n  - name: r\n    path: /mcp\n    upstream: { url: http://127.0.0.1:3001/mcp }\n    auth: none\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = write_file(
        dir.path(),
        "bad.yaml",
        "public_url: http://127.0.0.1:8080\nlisteners:\n  - bind: 127.0.0.1:8080\nroutes:\n  - name: a\n    path: /a\n    upstream: { url: http://127.0.0.1:3001/mcp }\n    auth: none\n  - name: b\n    path: /b\n    upstream: { url: \"htp:/x\" }\n    auth: { issuers: [nope] }\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("routes[1].upstream.url"), "{stderr}");
    assert!(stderr.contains("htp:/x"), "{stderr}");
    assert!(
        stderr.contains("routes[1].auth.issuers[0]"),
        "both errors listed: {stderr}"
    );

    let unknown = write_file(
        dir.path(),
        "unknown.yaml",
        "public_url: http://x\nlistenerz: []\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listenerz"));

    let missing = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/mcpgate.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// `MCPGATE_REQUEST_PATH` takes `lean` or `general`; a misspelt value stops the gateway at
/// start-up with the variable named, rather than silently picking a path.
#[test]
fn an_unknown_request_path_stops_the_gateway_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_file(
        dir.path(),
        "mcpgate.yaml",
        &format!("public_url: http://127.0.0.1:{port}\nlisteners:\n  - bind: 127.0.0.1:{port}\nroutes:\n  - name: r\n    path: /mcp\n    upstream: {{ url: http://127.0.0.1:9/mcp }}\n    auth: none\n"),
    );
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("MCPGATE_REQUEST_PATH", "genral")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("exits by itself");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("MCPGATE_REQUEST_PATH=\"genral\""),
        "{stderr}"
    );
}

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("mcpgate "));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "check", "demo", "Exit codes"] {
        assert!(help.contains(word), "{help}");
    }
}

/// The demo as a newcomer meets it: start it, then paste what it prints. Every printed `curl`
/// runs through bash exactly as printed, with the printed `export` lines; the test checks that
/// each shows what its comment promises (the Inspector line runs in tests/interop, it needs npm).
#[test]
fn demo_prints_commands_that_work_as_printed() {
    let (port, admin) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args(["demo", "--port", &port.to_string()])
        .args(["--admin-port", &admin.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = read_banner(child.stdout.take().unwrap());
    wait_ready(admin);
    let exports: String = banner
        .lines()
        .filter(|l| l.starts_with("export "))
        .map(|l| format!("{l}\n"))
        .collect();
    let steps = numbered_commands(&banner);
    let out = |step: &str, i: usize| run_printed(&exports, &steps[step][i]);
    let expect = |text: &str, wanted: &[&str], unwanted: &[&str], what: &str| {
        for w in wanted {
            assert!(text.contains(w), "{what}: no {w:?} in\n{text}");
        }
        for u in unwanted {
            assert!(!text.contains(u), "{what}: {u:?} in\n{text}");
        }
    };
    expect(
        &out("1", 0).to_lowercase(),
        &[" 401 ", "www-authenticate: bearer"],
        &[],
        "no token",
    );
    let hidden = ["delete_everything", "create_item"];
    expect(&out("2", 0), &["\"echo\""], &hidden, "reader's list");
    expect(&out("2", 1), &hidden, &[], "admin's list");
    expect(
        &out("3", 0),
        &["hello through mcpgate"],
        &[],
        "reader's echo",
    );
    expect(
        &out("4", 0),
        &[" 403 ", "insufficient_scope", "mcp:admin"],
        &[],
        "reader's delete",
    );
    expect(
        &out("5", 0),
        &["deleted everything"],
        &["error"],
        "admin's delete",
    );
    expect(
        &out("6", 0),
        &["notifications/progress", "\"result\""],
        &[],
        "SSE",
    );
    assert!(
        banner.contains("npx -y -p node@22 -p @modelcontextprotocol/inspector@"),
        "the Inspector command brings the Node it needs:\n{banner}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The demo's login (step 7) as a person does it in a browser: the printed URL, the demo
/// identity provider's sign-in page, mcpgate's consent page, and the demo client's page with
/// the token mcpgate issued — which then lists the tools an admin sees.
#[tokio::test]
async fn demo_logs_a_person_in_through_the_front_door() {
    use common::browser::{hidden, location, Browser};
    let (port, admin) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args(["demo", "--port", &port.to_string()])
        .args(["--admin-port", &admin.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = read_banner(child.stdout.take().unwrap());
    wait_ready(admin);
    let login_url = banner
        .lines()
        .skip_while(|l| !l.starts_with("# 7."))
        .find(|l| l.starts_with("http://"))
        .expect("step 7 prints a URL")
        .to_owned();
    let mut b = Browser::new();
    let hop = |r: &reqwest::Response, what: &str| {
        assert_eq!(r.status(), 303, "{what}");
        location(r)
    };
    let r = b.get(&login_url).await;
    let authorize = hop(&r, "demo client → front door");
    let r = b.get(&authorize).await;
    let idp = hop(&r, "front door → identity provider");
    let page = b.get(&idp).await.text().await.unwrap();
    assert!(page.contains("alice@example.com"), "{page}");
    let idp_origin = url::Url::parse(&idp)
        .unwrap()
        .origin()
        .ascii_serialization();
    let txn = hidden(&page, "txn");
    let r = b
        .post(
            &format!("{idp_origin}/authorize"),
            &[("txn", &txn), ("user", "alice")],
        )
        .await;
    let callback = hop(&r, "identity provider → front door");
    let consent = b.get(&callback).await.text().await.unwrap();
    assert!(
        consent.contains("Demo MCP client") && consent.contains("mcp:admin"),
        "{consent}"
    );
    let csrf = hidden(&consent, "csrf");
    let r = b
        .post(
            &format!("http://127.0.0.1:{port}/oauth/consent"),
            &[("csrf", &csrf), ("decision", "allow")],
        )
        .await;
    let back = hop(&r, "front door → demo client");
    let shown = b.get(&back).await.text().await.unwrap();
    assert!(
        shown.contains("Signed in") && shown.contains("mcp:admin"),
        "{shown}"
    );
    let token = shown
        .split("export TOKEN='")
        .nth(1)
        .and_then(|t| t.split('\'').next())
        .expect("the page shows the token");
    let list = run_printed(
        &format!("export TOKEN='{token}'\n"),
        &format!("curl -s -X POST http://127.0.0.1:{port}/mcp -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -H \"Authorization: Bearer $TOKEN\" -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}'"),
    );
    assert!(
        list.contains("delete_everything"),
        "alice is an admin: {list}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Everything the demo prints up to its last line.
fn read_banner(stdout: std::process::ChildStdout) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Press Ctrl-C") {
                let _ = tx.send(text.clone());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the demo prints its banner")
}

fn wait_ready(admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = || {
        std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok()
            && raw_get(admin, "/readyz").0 == 200
    };
    while !ready() {
        assert!(Instant::now() < deadline, "demo never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `curl` lines under each `# N.` comment of the banner, by N.
fn numbered_commands(banner: &str) -> std::collections::HashMap<String, Vec<String>> {
    let mut steps: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut current = None;
    for line in banner.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            current = rest.split_once('.').map(|(n, _)| n.to_string());
        } else if let (Some(n), true) = (&current, line.starts_with("curl ")) {
            steps.entry(n.clone()).or_default().push(line.to_string());
        }
    }
    steps
}

/// Run one printed command in bash after the printed exports; its stdout.
fn run_printed(exports: &str, command: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{exports}{command}"))
        .output()
        .expect("bash and curl are needed to run the demo's commands");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The README's "Run it for real" commands, run as written from the repository root with the
/// built binary first on PATH (which is what its `cargo install` line gives, minus the release
/// build's minutes).
#[test]
fn readme_run_it_for_real_commands_work_as_written() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands = readme_commands(&readme, "## Run it for real");
    assert!(commands.len() >= 4, "{commands:?}");
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let bash = |c: &str| {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(c).current_dir(&root).env("PATH", &path);
        cmd
    };
    for c in &commands {
        if let Some(crate_dir) = c.strip_prefix("cargo install --locked --path ") {
            let manifest =
                std::fs::read_to_string(root.join(crate_dir).join("Cargo.toml")).unwrap();
            assert!(
                manifest.contains("name = \"mcpgate\""),
                "{c}: no mcpgate binary"
            );
        } else if c.starts_with("mcpgate run ") {
            serve_briefly(bash(&format!("exec {c}")), c);
        } else {
            let out = bash(c).output().unwrap();
            assert!(
                out.status.success(),
                "{c}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The commands in the ```sh blocks of one README section, without their trailing comments.
fn readme_commands(readme: &str, heading: &str) -> Vec<String> {
    let section = readme.split(heading).nth(1).expect("README section");
    let section = section.split("\n## ").next().unwrap();
    let mut in_block = false;
    let mut commands = Vec::new();
    for line in section.lines() {
        match (in_block, line.trim()) {
            (false, "```sh") => in_block = true,
            (true, "```") => in_block = false,
            (true, "") => {}
            (true, l) => commands.push(l.split("  #").next().unwrap().trim().to_string()),
            _ => {}
        }
    }
    commands
}

/// Start a `mcpgate run` command, wait until its listener answers, then SIGTERM it: exit 0.
/// It binds the port its configuration names (8080); when something else holds that port on this
/// machine the command cannot run as written, so the check is skipped with a note.
fn serve_briefly(mut cmd: Command, what: &str) {
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        eprintln!("skipping `{what}`: 127.0.0.1:8080 is in use on this machine");
        return;
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect("127.0.0.1:8080").is_err() {
        assert!(child.try_wait().unwrap().is_none(), "{what} exited early");
        assert!(Instant::now() < deadline, "{what} never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(raw_get(8080, "/mcp").0, 0, "{what} answers HTTP");
    sigterm(child.id());
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("drains and exits");
    assert_eq!(status.code(), Some(0), "{what}");
}

/// The configurations we ship as examples must pass `mcpgate check` as they are.
#[test]
fn shipped_example_configurations_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sidecar = std::fs::read_to_string(root.join("deploy/kubernetes/sidecar.yaml")).unwrap();
    let embedded: String = sidecar
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("mcpgate.yaml: |"))
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write_file(dir.path(), "sidecar.yaml", &embedded),
        root.join("config/minimal.yaml"),
        root.join("config/mcpgate.example.yaml"),
        root.join("config/login.example.yaml"),
    ];
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let login_key = write_file(dir.path(), "login-1.pem", &key.serialize_pem());
    let idp_secret = write_file(dir.path(), "idp-secret", "s3cret\n");
    let tls = rcgen::generate_simple_self_signed(vec!["mcp.example.com".into()]).unwrap();
    let cert = write_file(dir.path(), "tls.crt", &tls.cert.pem());
    let tls_key = write_file(dir.path(), "tls.key", &tls.signing_key.serialize_pem());
    for f in files {
        let out = Command::new(BIN)
            .args(["check", "--config"])
            .arg(&f)
            .env("INTROSPECT_SECRET", "s3cret")
            .env("UPSTREAM_KEY", "k")
            .env("MCPGATE_LOGIN_KEY", &login_key)
            .env("IDP_SECRET_FILE", &idp_secret)
            .env("TLS_CERT", &cert)
            .env("TLS_KEY", &tls_key)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
