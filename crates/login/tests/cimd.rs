//! Client ID Metadata Documents against a real HTTPS server on 127.0.0.1 (certificate from a
//! test CA trusted through `fetch.ca_file`): what is accepted, every refusal, the cache, and the
//! SSRF guard — which must refuse before any connection is made.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mcpgate_config::MetadataFetch;
use mcpgate_login::cimd::{reason, CimdError, MetadataFetcher};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// Largest document the tests' fetchers accept.
const MAX_SIZE: u64 = 4096;

/// What the test server saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted (before any TLS).
    connections: AtomicUsize,
    /// Requests per path.
    hits: Mutex<HashMap<String, usize>>,
}

impl Seen {
    fn hits(&self, path: &str) -> usize {
        let hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        hits.get(path).copied().unwrap_or(0)
    }
}

/// An HTTPS document server on 127.0.0.1 and the CA bundle that trusts it.
struct DocServer {
    port: u16,
    seen: Arc<Seen>,
    ca: tempfile::NamedTempFile,
}

impl DocServer {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// A fetcher that trusts the test CA and may reach 127.0.0.1.
    fn fetcher(&self) -> MetadataFetcher {
        self.fetcher_with(true, Duration::from_secs(10))
    }

    fn fetcher_with(&self, allow_private_networks: bool, timeout: Duration) -> MetadataFetcher {
        MetadataFetcher::new(&MetadataFetch {
            timeout,
            max_size: MAX_SIZE,
            allow_private_networks,
            ca_file: Some(self.ca.path().to_owned()),
        })
        .expect("fetcher")
    }
}

/// A test CA and a server certificate it issued for 127.0.0.1 and localhost.
fn certificates() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mcpgate cimd test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).expect("server cert");
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (ca.pem(), cert.der().clone(), der)
}

/// Accepts TCP, counts it, then completes the TLS handshake (failed handshakes are skipped).
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
    seen: Arc<Seen>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            self.seen.connections.fetch_add(1, Ordering::SeqCst);
            let handshake = tokio::time::timeout(Duration::from_secs(5), self.tls.accept(tcp));
            if let Ok(Ok(tls)) = handshake.await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn count(State(seen): State<Arc<Seen>>, req: Request, next: Next) -> Response {
    {
        let mut hits = seen.hits.lock().unwrap_or_else(|e| e.into_inner());
        *hits.entry(req.uri().path().to_owned()).or_default() += 1;
    }
    next.run(req).await
}

/// The document each path serves (its `client_id` names the path it is served from).
fn document(port: u16, path: &str) -> serde_json::Value {
    json!({
        "client_id": format!("https://127.0.0.1:{port}{path}"),
        "client_name": "Test Client",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none"
    })
}

fn json_response(body: String, extra: &[(header::HeaderName, &'static str)]) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    for (name, value) in extra {
        resp.headers_mut()
            .insert(name.clone(), header::HeaderValue::from_static(value));
    }
    resp
}

fn routes(port: u16) -> Router<Arc<Seen>> {
    let doc = move |path: &'static str| document(port, path).to_string();
    let flaky = Arc::new(AtomicUsize::new(0));
    Router::new()
        .route("/client", get(move || async move { json_response(doc("/client"), &[]) }))
        .route(
            "/cached",
            get(move || async move {
                json_response(doc("/cached"), &[(header::CACHE_CONTROL, "max-age=3600")])
            }),
        )
        .route(
            "/no-store",
            get(move || async move {
                json_response(doc("/no-store"), &[(header::CACHE_CONTROL, "no-store")])
            }),
        )
        .route(
            "/concurrent",
            get(move || async move { json_response(doc("/concurrent"), &[]) }),
        )
        .route(
            "/mismatch",
            get(move || async move { json_response(doc("/client"), &[]) }),
        )
        .route(
            "/secret",
            get(move || async move {
                let mut d = document(port, "/secret");
                d["client_secret"] = json!("s3cret");
                json_response(d.to_string(), &[])
            }),
        )
        .route(
            "/duplicate",
            get(move || async move {
                // Two `client_id` keys: the second names the URL, the first another client.
                let body = format!(
                    r#"{{"client_id":"https://evil.example/c","client_id":"https://127.0.0.1:{port}/duplicate","redirect_uris":["https://app.example/cb"]}}"#
                );
                json_response(body, &[])
            }),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/client")]) }),
        )
        .route(
            "/big",
            get(|| async {
                let mut d = json!({ "padding": "x".repeat(MAX_SIZE as usize) });
                d["client_id"] = json!("ignored");
                json_response(d.to_string(), &[])
            }),
        )
        .route(
            "/big-chunked",
            get(|| async {
                // No Content-Length: only reading incrementally can stop it.
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "never in time"
            }),
        )
        .route(
            "/slow-body",
            get(|| async {
                // Headers and a first chunk at once, then nothing: the deadline covers the body.
                let first = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(b"{\"client_id\":".to_vec())
                });
                Body::from_stream(futures_util::StreamExt::chain(
                    first,
                    futures_util::stream::pending(),
                ))
            }),
        )
        .route(
            "/html",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>hi</html>") }),
        )
        .route("/array", get(|| async { json_response("[1,2]".into(), &[]) }))
        .route(
            "/error",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
        )
        .route(
            "/flaky",
            get(move || {
                let flaky = flaky.clone();
                async move {
                    if flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                        (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
                    } else {
                        json_response(doc("/flaky"), &[])
                    }
                }
            }),
        )
}

async fn start() -> DocServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ca_pem, cert, key) = certificates();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = tcp.local_addr().expect("addr").port();
    let seen = Arc::new(Seen::default());
    let app = routes(port)
        .layer(middleware::from_fn_with_state(seen.clone(), count))
        .with_state(seen.clone());
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(Arc::new(config)),
        seen: seen.clone(),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ca = tempfile::NamedTempFile::new().expect("ca file");
    std::fs::write(ca.path(), ca_pem).expect("write ca");
    // The socket listens from `bind` on, so the server is ready now.
    DocServer { port, seen, ca }
}

async fn refusal(fetcher: &MetadataFetcher, client_id: &str) -> CimdError {
    match fetcher.client(client_id).await {
        Ok(m) => panic!("{client_id} accepted: {m:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_valid_document_is_accepted() {
    let server = start().await;
    let id = server.url("/client");
    let meta = server.fetcher().client(&id).await.expect("accepted");
    assert_eq!(meta.client_id, id);
    assert_eq!(meta.host, "127.0.0.1");
    assert_eq!(meta.client_name.as_deref(), Some("Test Client"));
    assert_eq!(meta.redirect_uris, ["http://127.0.0.1:33418/callback"]);
    assert!(meta.allows_refresh());
    assert_eq!(server.seen.hits("/client"), 1);
}

#[tokio::test]
async fn a_document_naming_another_client_is_refused() {
    let server = start().await;
    let e = refusal(&server.fetcher(), &server.url("/mismatch")).await;
    assert_eq!(e.reason, reason::ID_MISMATCH, "{e}");
}

#[tokio::test]
async fn duplicate_keys_are_refused_not_read_one_way() {
    let server = start().await;
    let e = refusal(&server.fetcher(), &server.url("/duplicate")).await;
    assert_eq!(e.reason, reason::NOT_JSON, "{e}");
    assert!(e.detail.contains("duplicate"), "{e}");
}

#[tokio::test]
async fn a_document_carrying_a_secret_is_refused() {
    let server = start().await;
    let e = refusal(&server.fetcher(), &server.url("/secret")).await;
    assert_eq!(e.reason, reason::INVALID, "{e}");
    assert!(!e.detail.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_redirect_is_refused_and_not_followed() {
    let server = start().await;
    let e = refusal(&server.fetcher(), &server.url("/redirect")).await;
    assert_eq!(e.reason, reason::REDIRECT, "{e}");
    assert_eq!(server.seen.hits("/redirect"), 1);
    assert_eq!(server.seen.hits("/client"), 0, "the redirect was followed");
}

#[tokio::test]
async fn an_oversized_document_is_refused() {
    let server = start().await;
    let fetcher = server.fetcher();
    let e = refusal(&fetcher, &server.url("/big")).await;
    assert_eq!(e.reason, reason::TOO_LARGE, "{e}");
    let e = refusal(&fetcher, &server.url("/big-chunked")).await;
    assert_eq!(e.reason, reason::TOO_LARGE, "{e}");
}

#[tokio::test]
async fn a_slow_server_runs_out_of_time() {
    let server = start().await;
    let fetcher = server.fetcher_with(true, Duration::from_millis(500));
    let e = refusal(&fetcher, &server.url("/slow")).await;
    assert_eq!(e.reason, reason::TIMEOUT, "{e}");
    // The deadline covers the body too, not only the headers.
    let e = refusal(&fetcher, &server.url("/slow-body")).await;
    assert_eq!(e.reason, reason::TIMEOUT, "{e}");
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let server = start().await;
    let fetcher = server.fetcher();
    for path in ["/html", "/array"] {
        let e = refusal(&fetcher, &server.url(path)).await;
        assert_eq!(e.reason, reason::NOT_JSON, "{path}: {e}");
    }
}

#[tokio::test]
async fn a_status_other_than_200_is_refused() {
    let server = start().await;
    let fetcher = server.fetcher();
    for path in ["/error", "/nothing-here"] {
        let e = refusal(&fetcher, &server.url(path)).await;
        assert_eq!(e.reason, reason::UNAVAILABLE, "{path}: {e}");
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = start().await;
    let fetcher = MetadataFetcher::new(&MetadataFetch {
        allow_private_networks: true,
        ..MetadataFetch::default()
    })
    .expect("fetcher");
    let e = refusal(&fetcher, &server.url("/client")).await;
    assert_eq!(e.reason, reason::UNAVAILABLE, "{e}");
    assert!(e.detail.to_lowercase().contains("certificate"), "{e}");
    assert_eq!(server.seen.hits("/client"), 0);
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_a_startup_error() {
    let empty = tempfile::NamedTempFile::new().expect("file");
    let built = MetadataFetcher::new(&MetadataFetch {
        ca_file: Some(empty.path().to_owned()),
        ..MetadataFetch::default()
    });
    assert!(built.is_err());
}

#[tokio::test]
async fn a_document_is_fetched_once_while_cached() {
    let server = start().await;
    let fetcher = server.fetcher();
    for path in ["/client", "/cached", "/no-store"] {
        let id = server.url(path);
        let first = fetcher.client(&id).await.expect("accepted");
        let second = fetcher.client(&id).await.expect("accepted");
        assert_eq!(first, second);
        assert_eq!(server.seen.hits(path), 1, "{path} fetched again");
    }
}

#[tokio::test]
async fn concurrent_requests_for_one_client_share_one_fetch() {
    let server = start().await;
    let fetcher = server.fetcher();
    let id = server.url("/concurrent");
    // All are polled before any can finish (each needs the network), so all join one fetch.
    let results = futures_util::future::join_all((0..8).map(|_| fetcher.client(&id))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.seen.hits("/concurrent"), 1);
}

#[tokio::test]
async fn a_failure_is_remembered_briefly() {
    let server = start().await;
    let fetcher = server.fetcher();
    let id = server.url("/flaky");
    let first = refusal(&fetcher, &id).await;
    assert_eq!(first.reason, reason::UNAVAILABLE);
    // The host would answer now, but the refusal is cached (for seconds, not minutes).
    let second = refusal(&fetcher, &id).await;
    assert_eq!(second, first);
    assert_eq!(server.seen.hits("/flaky"), 1);
}

#[tokio::test]
async fn malformed_client_ids_are_refused_without_a_request() {
    let server = start().await;
    let fetcher = server.fetcher();
    for id in [
        format!("http://127.0.0.1:{}/client", server.port),
        format!("https://127.0.0.1:{}/", server.port),
        format!("https://127.0.0.1:{}/client#x", server.port),
        format!("https://127.0.0.1:{}/x/../client", server.port),
        // Another spelling of 127.0.0.1: the id must be written as it is fetched.
        format!("https://0x7f000001:{}/client", server.port),
    ] {
        let e = refusal(&fetcher, &id).await;
        assert_eq!(e.reason, reason::CLIENT_ID_INVALID, "{id}: {e}");
    }
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_guard_refuses_a_loopback_literal_before_connecting() {
    let server = start().await;
    let fetcher = server.fetcher_with(false, Duration::from_secs(10));
    for id in [
        server.url("/client"),
        format!("https://[::ffff:7f00:1]:{}/client", server.port),
        format!("https://[::1]:{}/client", server.port),
    ] {
        let e = refusal(&fetcher, &id).await;
        assert_eq!(e.reason, reason::FORBIDDEN_ADDRESS, "{id}: {e}");
    }
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_guard_refuses_a_name_that_resolves_to_loopback() {
    let server = start().await;
    let fetcher = server.fetcher_with(false, Duration::from_secs(10));
    let id = format!("https://localhost:{}/client", server.port);
    let e = refusal(&fetcher, &id).await;
    assert_eq!(e.reason, reason::FORBIDDEN_ADDRESS, "{e}");
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 0);
    // The same name is reachable when private networks are allowed: the refusal was the guard.
    let open = server.fetcher();
    let e = refusal(&open, &id).await;
    assert_eq!(e.reason, reason::ID_MISMATCH, "{e}");
    assert_eq!(server.seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_guard_refuses_the_cloud_metadata_address_without_connecting() {
    // A connection attempt would end in a timeout (or a refusal), not this reason.
    let fetcher = MetadataFetcher::new(&MetadataFetch {
        timeout: Duration::from_secs(30),
        ..MetadataFetch::default()
    })
    .expect("fetcher");
    for id in [
        "https://169.254.169.254/latest/meta-data/iam",
        "https://[fd00:ec2::254]/latest/meta-data",
        "https://10.0.0.1/client",
        "https://[::ffff:a9fe:a9fe]/client",
    ] {
        let e = refusal(&fetcher, id).await;
        assert_eq!(e.reason, reason::FORBIDDEN_ADDRESS, "{id}: {e}");
    }
}
