//! End-to-end TLS termination: rustls with certificates generated here (rcgen), HTTP/1.1 and
//! HTTP/2 by ALPN, certificate choice by SNI, and reload of replaced certificate files.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use mcpgate_sample::{McpServerOptions, SampleMcpServer};
use serde_json::json;

/// A self-signed certificate for `names`, as (cert PEM, key PEM, DER).
fn self_signed(names: &[&str]) -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// A client trusting only `der`, resolving every name to the gateway, with the given ALPN.
fn tls_client(der: &[u8], h2: bool, names: &[&str], port: u16) -> reqwest::Client {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = if h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(cfg)
        .timeout(Duration::from_secs(10));
    for n in names {
        b = b.resolve(n, SocketAddr::from(([127, 0, 0, 1], port)));
    }
    b.build().unwrap()
}

async fn tls_gateway(dir: &tempfile::TempDir, up: &SampleMcpServer) -> Gw {
    let yaml = format!(
        "public_url: https://other.test:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\n    tls:\n      certificates:\n        - {{ cert: a.pem, key: a.key }}\n        - {{ cert: b.pem, key: b.key }}\nadmin:\n  bind: 127.0.0.1:{{admin}}\nroutes:\n  - name: main\n    path: /mcp\n    upstream:\n      url: {}\n    auth: none\n",
        up.url()
    );
    let d = tempfile::Builder::new().tempdir_in(dir.path()).unwrap();
    for f in ["a.pem", "a.key", "b.pem", "b.key"] {
        std::fs::copy(dir.path().join(f), d.path().join(f)).unwrap();
    }
    let mut gw = Gw::start_in(d, &yaml);
    gw.ready().await;
    gw
}

fn write_pair(dir: &std::path::Path, stem: &str, pair: &(String, String, Vec<u8>)) {
    std::fs::write(dir.join(format!("{stem}.pem")), &pair.0).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), &pair.1).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_h1_h2_sni_and_reload() {
    let up = SampleMcpServer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        McpServerOptions::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(&["localhost"]);
    let b = self_signed(&["other.test"]);
    write_pair(dir.path(), "a", &a);
    write_pair(dir.path(), "b", &b);
    let gw = tls_gateway(&dir, &up).await;
    let port = gw.port;
    let body = jsonrpc(1, "ping", json!({}));

    for h2 in [false, true] {
        let c = tls_client(&a.2, h2, &["localhost"], port);
        let r = mcp_post(&c, &format!("https://localhost:{port}/mcp"), &body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let want = if h2 {
            reqwest::Version::HTTP_2
        } else {
            reqwest::Version::HTTP_11
        };
        assert_eq!(r.version(), want, "ALPN selects the protocol");
    }
    // SNI picks certificate b for other.test: a client trusting only b succeeds there...
    let cb = tls_client(&b.2, false, &["other.test", "localhost"], port);
    let r = mcp_post(&cb, &format!("https://other.test:{port}/mcp"), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ...and fails for localhost, where the default certificate a is served.
    assert!(
        mcp_post(&cb, &format!("https://localhost:{port}/mcp"), &body)
            .send()
            .await
            .is_err()
    );

    // Replace certificate a on disk: the new one is served without a restart.
    let a2 = self_signed(&["localhost"]);
    write_pair(gw.dir.path(), "a", &a2);
    let c2 = tls_client(&a2.2, false, &["localhost"], port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fresh = tls_client(&a2.2, false, &["localhost"], port);
        if mcp_post(&fresh, &format!("https://localhost:{port}/mcp"), &body)
            .send()
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate never served:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = mcp_post(&c2, &format!("https://localhost:{port}/mcp"), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_certificate_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    write_file(dir.path(), "bad.key", "garbage");
    let cfg = write_file(
        dir.path(),
        "c.yaml",
        "public_url: https://localhost\nlisteners:\n  - bind: 127.0.0.1:0\n    tls: { cert: bad.pem, key: bad.key }\nroutes:\n  - name: r\n    path: /mcp\n    upstream: { url: http://127.0.0.1:1/mcp }\n    auth: none\n",
    );
    for cmd in ["check", "run"] {
        let out = std::process::Command::new(BIN)
            .args([cmd, "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd} must fail");
        assert!(
            !stderr.contains("panicked"),
            "{cmd} must not panic: {stderr}"
        );
        assert!(
            stderr.contains("listeners[0].tls"),
            "{cmd} names the key: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_upstream_is_verified_against_the_configured_ca() {
    let up = SampleMcpServer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        McpServerOptions::default(),
    )
    .await
    .unwrap();
    // A TLS front for the sample server: another mcpgate with a certificate for "localhost".
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(&["localhost"]);
    let b = self_signed(&["other.test"]);
    write_pair(dir.path(), "a", &a);
    write_pair(dir.path(), "b", &b);
    let front = tls_gateway(&dir, &up).await;
    let ca = write_file(dir.path(), "front-ca.pem", &a.0);
    let wrong_ca = write_file(dir.path(), "wrong-ca.pem", &b.0);

    let yaml = format!(
        "public_url: http://127.0.0.1:{{port}}\nlisteners:\n  - bind: 127.0.0.1:{{port}}\nadmin:\n  bind: 127.0.0.1:{{admin}}\nroutes:\n  - name: verified\n    path: /ok\n    upstream:\n      url: https://localhost:{p}/mcp\n      tls: {{ ca_file: {ca} }}\n    auth: none\n  - name: wrong-ca\n    path: /bad\n    upstream:\n      url: https://localhost:{p}/mcp\n      tls: {{ ca_file: {wrong} }}\n    auth: none\n  - name: system-roots\n    path: /sys\n    upstream:\n      url: https://localhost:{p}/mcp\n    auth: none\n",
        p = front.port,
        ca = ca.display(),
        wrong = wrong_ca.display()
    );
    let mut gw = Gw::start(&yaml);
    gw.ready().await;
    let c = client();
    let body = jsonrpc(1, "ping", json!({}));
    let r = mcp_post(&c, &gw.url("/ok"), &body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", gw.log());
    for path in ["/bad", "/sys"] {
        let r = mcp_post(&c, &gw.url(path), &body).send().await.unwrap();
        assert_eq!(
            r.status(),
            502,
            "{path}: an unverifiable upstream certificate is refused"
        );
    }
}
