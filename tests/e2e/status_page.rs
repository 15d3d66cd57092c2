//! End-to-end for the admin status page, in a real browser: headless Chromium (Debian's
//! `chromium`, installed by `.ci/run`) loads `/status` from a running gateway with a TLS listener,
//! an issuer and a route, after a refused call, and the rendered page shows each of them; a
//! screenshot is taken the way the README's was. Without Chromium the test says so and passes,
//! unless MCPGATE_REQUIRE_BROWSER is set (CI sets it).

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Chromium headless with a throw-away profile; `what` is `--dump-dom` or `--screenshot=…`.
fn browse(browser: &str, what: &str, url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(["--window-size=1200,1100", "--timeout=15000"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args([what, url])
        .output()
        .expect("run chromium")
}

fn self_signed(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_the_gateway_at_a_glance_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("MCPGATE_REQUIRE_BROWSER").is_none(),
            "MCPGATE_REQUIRE_BROWSER is set and no Chromium was found"
        );
        eprintln!("skipping: no chromium on PATH (Debian: apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&["status.example.com"]);
    let cert = write_file(dir.path(), "cert.pem", &cert);
    let key = write_file(dir.path(), "key.pem", &key);
    let tls_port = free_port();
    let s = stack(|issuer, up| {
        format!(
            r#"public_url: http://127.0.0.1:{{port}}
listeners:
  - bind: 127.0.0.1:{{port}}
  - bind: 127.0.0.1:{tls_port}
    tls: {{ cert: {cert}, key: {key} }}
admin:
  bind: 127.0.0.1:{{admin}}
issuers:
  - name: corp-idp
    issuer: {iss}
    jwks_uri: {iss}/jwks
    algorithms: [ES256]
routes:
  - name: github-tools
    path: /github/mcp
    upstream: {{ url: "{up}" }}
    auth: {{ issuers: [corp-idp] }}
    tools: [{{ match: "delete_*", deny: true }}]
"#,
            cert = cert.display(),
            key = key.display(),
            iss = issuer.issuer_url(),
            up = up.url()
        )
    })
    .await;
    let c = client();
    for id in 0..3 {
        let r = mcp_post(
            &c,
            &s.gw.url("/github/mcp"),
            &jsonrpc(id, "tools/list", json!({})),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 401);
    }
    let url = s.gw.admin("/status");
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let url2 = url.clone();
    let dom = tokio::task::spawn_blocking(move || browse(browser, "--dump-dom", &url2))
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    for want in [
        "mcpgate status",
        ">ready<",
        "github-tools",
        "/github/mcp",
        "corp-idp",
        "status.example.com",
        "missing_token</code></td><td>3",
    ] {
        assert!(
            dom.contains(want),
            "the rendered page lacks {want:?}:\n{dom}"
        );
    }

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    let out = tokio::task::spawn_blocking(move || browse(browser, &arg, &url))
        .await
        .unwrap();
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real picture"
    );
}
