//! Process assembly: turns a validated [`Config`] into a running pingora server — the proxy
//! service on every listener (plain or TLS with SNI), the admin service, the background tasks
//! (DNS re-resolution, certificate reload, identity-provider key refresh, readiness, configuration
//! reload) — and owns the signals: SIGTERM stops accepting, drains in-flight requests up to the
//! grace period, then exits 0; SIGHUP reloads and never ends the process.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use mcpgate_auth::TokenValidator;
use mcpgate_config::{Config, ListenerTls, LoginStore, RateStore, Sessions};
use mcpgate_login::{KvStore, LoginService, MemoryKv};
use mcpgate_mcp::seal::SessionSealer;
use mcpgate_mcp::session::{MemorySessionStore, SessionBindings};
use mcpgate_store::login::RedisKv;
use mcpgate_store::sessions::RedisSessionStore;
use pingora::apps::ServerApp;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig, DEFAULT_L4_WRITE_BUFFER_SIZE};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::admin::{AdminApp, Readiness};
use crate::reload::{FileDigest, Reloader};
use crate::request::lean::Lean;
use crate::request::{McpProxy, IN_FLIGHT};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::tls::SniResolver;
use crate::upstream::RERESOLVE_INTERVAL;

/// How long a request waits for the session store before it is refused (503): a healthy Redis
/// on the same network answers in well under a millisecond.
const SESSION_STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often certificate files are checked for changes.
const CERT_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listeners[{index}].tls: {message}")]
    Tls { index: usize, message: String },
    #[error("{0}")]
    Compile(#[from] crate::snapshot::CompileError),
    #[error("cannot build the HTTP client for identity providers: {0}")]
    HttpClient(String),
    #[error("cannot listen on {addr} (admin): {source}")]
    AdminBind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch for SIGHUP: {0}")]
    Signal(std::io::Error),
    #[error("login: {0}")]
    Login(String),
    #[error("{0}")]
    RequestPath(String),
}

/// Where the running configuration came from, so that it can be reloaded.
pub struct ConfigSource {
    pub path: PathBuf,
    /// Digest of the bytes the running configuration was parsed from.
    pub digest: FileDigest,
}

/// Install the process-wide rustls crypto provider (ring, the one pingora uses). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client used for JWKS, discovery and introspection: rustls with the system roots.
pub fn idp_http_client() -> Result<reqwest::Client, StartError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StartError::HttpClient(e.to_string()))
}

/// Everything `check` verifies beyond the YAML itself: certificate files and upstream settings.
pub fn preflight(config: &Config) -> Result<(), StartError> {
    install_crypto_provider();
    for (index, l) in config.listeners.iter().enumerate() {
        if let Some(tls) = &l.tls {
            crate::tls::validate_pairs(&tls.certificates)
                .map_err(|message| StartError::Tls { index, message })?;
        }
    }
    let validator = TokenValidator::new(&config.issuers, idp_http_client()?);
    Snapshot::compile(config, validator)?;
    Ok(())
}

/// Per-connection buffers toward clients: no read buffer and pingora's default MSS-sized write
/// buffer. pingora reads request headers into its own growing buffer, so an extra read buffer only
/// added a copy — and tokio zero-fills it, so each idle SSE stream kept it resident (16 KiB each;
/// pingora's default is 64 KiB). Measured: 132 → 117 KiB per idle stream, see docs/benchmarks.md.
fn client_buffers() -> L4BufferSettings {
    L4BufferSettings::new(0, DEFAULT_L4_WRITE_BUFFER_SIZE)
}

/// A prepared server: built and ready to `run`.
pub struct GatewayServer {
    server: Server,
    readiness: Arc<Readiness>,
    grace: Duration,
}

struct Background {
    snapshot: SharedSnapshot,
    resolvers: Vec<Arc<SniResolver>>,
    readiness: Arc<Readiness>,
    listener_addrs: Vec<std::net::SocketAddr>,
    /// Taken by the first `start`: one reload loop per process.
    reloader: Mutex<Option<Reloader>>,
}

#[async_trait]
impl BackgroundService for Background {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let snapshot = self.snapshot.load_full();
        snapshot.validator.start_background();
        let dns_snapshot = self.snapshot.clone();
        tokio::spawn(async move {
            loop {
                let snap = dns_snapshot.load_full();
                for u in snap.upstreams().filter(|u| u.needs_dns()) {
                    if let Err(e) = u.resolve().await {
                        tracing::warn!(host = %u.host, error = %e, "upstream DNS resolution failed; keeping the last addresses");
                    }
                }
                tokio::time::sleep(RERESOLVE_INTERVAL).await;
            }
        });
        let reloader = self
            .reloader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match reloader.map(|r| (r, hangup_stream())) {
            Some((r, Ok(hup))) => drop(tokio::spawn(r.run(hup))),
            Some((_, Err(e))) => {
                tracing::error!(error = %e, "cannot watch for SIGHUP; configuration reload is off")
            }
            None => {}
        }
        if !self.resolvers.is_empty() {
            tokio::spawn(crate::tls::watch_and_reload(
                self.resolvers.clone(),
                CERT_POLL,
            ));
        }
        let readiness = self.readiness.clone();
        let addrs = self.listener_addrs.clone();
        tokio::spawn(async move {
            // Ready once every listener accepts a connection.
            loop {
                let mut all = true;
                for a in &addrs {
                    let mut target = *a;
                    if target.ip().is_unspecified() {
                        target.set_ip(match target {
                            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                        });
                    }
                    all &= tokio::net::TcpStream::connect(target).await.is_ok();
                }
                if all {
                    readiness.listeners_bound.store(true, Ordering::SeqCst);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let readiness = self.readiness.clone();
        let keys_snapshot = self.snapshot.clone();
        tokio::spawn(async move {
            // The start-up keys latch (see `Readiness::keys_fetched`), whether or not anyone
            // asked /readyz in between.
            while !keys_snapshot.load().validator.is_ready() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            readiness.keys_fetched.store(true, Ordering::SeqCst);
        });
        let _ = shutdown.changed().await;
    }
}

/// SIGTERM/SIGQUIT: graceful (drain, then exit once idle); SIGINT: immediate.
struct SignalWatch {
    readiness: Arc<Readiness>,
    grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for SignalWatch {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut quit = signal(SignalKind::quit()).expect("SIGQUIT handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let graceful = tokio::select! {
            _ = term.recv() => true,
            _ = quit.recv() => true,
            _ = int.recv() => false,
        };
        if !graceful {
            tracing::info!("SIGINT: shutting down now");
            return ShutdownSignal::FastShutdown;
        }
        self.readiness.draining.store(true, Ordering::SeqCst);
        tracing::info!(
            grace_secs = self.grace.as_secs_f64(),
            "draining: no new connections; waiting for in-flight requests"
        );
        let deadline = std::time::Instant::now() + self.grace;
        std::thread::spawn(move || {
            // Pingora sleeps the whole grace period; leave as soon as nothing is in flight.
            std::thread::sleep(Duration::from_millis(100));
            while std::time::Instant::now() < deadline {
                if IN_FLIGHT.load(Ordering::SeqCst) <= 0 {
                    tracing::info!("drained; exiting");
                    std::process::exit(0);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        ShutdownSignal::GracefulTerminate
    }
}

fn hangup_stream() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

/// Replace SIGHUP's default action (terminate) for the rest of the process, before anything is
/// served: a supervisor's "reload" must never end the gateway, even while it is starting. tokio
/// keeps its handler installed after the runtime that registered it is gone.
fn keep_alive_on_hangup() -> Result<(), StartError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(StartError::Signal)?;
    rt.block_on(async { hangup_stream().map(drop) })
        .map_err(StartError::Signal)
}

/// pingora binds the proxy's listeners in its own service thread and, when it cannot (after 30 s
/// of retries on a busy port), panics that thread while the rest of the process serves on. `serve`
/// binds every address first and the configuration refuses addresses that clash; this catches an
/// address another process takes in between: the process ends with the start-up failure code.
fn exit_when_a_listener_cannot_bind() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        // The `expect` message in pingora's `Service::start_service`.
        if info
            .payload_as_str()
            .is_some_and(|m| m.starts_with("Failed to build listeners"))
        {
            eprintln!("mcpgate cannot start: a listener could not bind (see above)");
            std::process::exit(1);
        }
    }));
}

impl GatewayServer {
    /// Build every service for `config`. Fails with a clear message on bad TLS material or an
    /// admin address that cannot be bound. With a `source`, SIGHUP and changes of the file
    /// reload the configuration; without one SIGHUP is ignored (still never fatal).
    pub fn build(
        config: &Config,
        source: Option<ConfigSource>,
    ) -> Result<GatewayServer, StartError> {
        install_crypto_provider();
        keep_alive_on_hangup()?;
        exit_when_a_listener_cannot_bind();
        let http = idp_http_client()?;
        let validator = TokenValidator::new(&config.issuers, http.clone());
        // Budgets outlive snapshots: every reload compiles its rules over this same store.
        let rates = rate_store(config);
        let compiled =
            Snapshot::compile(config, validator)?.with_rate_limits(config, rates.clone());
        let snapshot: SharedSnapshot = Arc::new(ArcSwap::from_pointee(compiled));
        limit_request_heads(config);
        crate::telemetry::metrics::install(&snapshot);
        crate::telemetry::otel::init(config.tracing.as_ref())
            .map_err(|e| StartError::HttpClient(e.to_string()))?;
        let mut server = Server::new_with_opt_and_conf(None, server_conf(config));
        server.bootstrap();
        let readiness = Arc::new(Readiness::default());

        let (proxy, resolvers) = proxy_service(&server, config, &snapshot, &readiness)?;
        server.add_service(proxy);
        if let Some(admin) = &config.admin {
            let admin = admin_service(admin.bind, &snapshot, &readiness)?;
            server.add_service(background_service("mcpgate admin", admin));
        }
        let reloader = source.map(|s| {
            Reloader::new(
                s.path,
                snapshot.clone(),
                config.clone(),
                s.digest,
                http,
                rates,
            )
        });
        let bg = Background {
            snapshot,
            resolvers,
            readiness: readiness.clone(),
            listener_addrs: config.listeners.iter().map(|l| l.bind).collect(),
            reloader: Mutex::new(reloader),
        };
        server.add_service(background_service("mcpgate background", bg));
        Ok(GatewayServer {
            server,
            readiness,
            grace: config.shutdown.grace_period,
        })
    }

    /// Serve until a shutdown signal; returns after the drain.
    pub fn run(self) {
        let watch = SignalWatch {
            readiness: self.readiness.clone(),
            grace: self.grace,
        };
        self.server.run(RunArgs {
            shutdown_signal: Box::new(watch),
        });
        crate::telemetry::otel::shutdown();
    }
}

/// Where rate-limit budgets live, for the life of the process (reloads keep it): this process's
/// memory, bounded, or Redis shared by every replica (connected on first use).
fn rate_store(config: &Config) -> Option<Arc<dyn mcpgate_ratelimit::Store>> {
    let rl = config.rate_limits.as_ref()?;
    Some(match &rl.store {
        RateStore::Memory => Arc::new(mcpgate_ratelimit::MemoryStore::new(RATE_KEYS_IN_MEMORY)),
        RateStore::Redis(url) => Arc::new(mcpgate_store::ratelimit::RedisRateStore::new(
            url,
            rl.store_timeout,
        )),
    })
}

/// Budgets one process keeps in memory at most (about 100 bytes each): past it the least
/// recently used are forgotten, so a flood of distinct keys cannot exhaust memory.
const RATE_KEYS_IN_MEMORY: u64 = 200_000;

/// Bound how long and how large a request head may grow while pingora reads it (vendored patch
/// 4). Twice the configured header limit: heads up to it are read and refused with a proper 431
/// by the request path; beyond, the connection is refused while reading, so a slow or huge head
/// never costs more than this per connection.
pub(crate) fn limit_request_heads(config: &Config) {
    let limits = &config.limits;
    pingora::protocols::http::v1::server::set_request_head_limits(
        limits.max_request_headers.saturating_mul(2),
        Some(limits.request_head_timeout),
    );
}

/// pingora's server settings: a worker per core, and a grace period of at least one second
/// unless the configuration asks for none (tests).
fn server_conf(config: &Config) -> ServerConf {
    let grace = config.shutdown.grace_period;
    ServerConf {
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        grace_period_seconds: Some(grace.as_secs().max(u64::from(!grace.is_zero()))),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    }
}

type ProxyService = Service<pingora::proxy::HttpProxy<McpProxy>>;

/// The proxy on every listener, with the session store that outlives configuration snapshots;
/// returns the SNI resolvers whose certificates the background task reloads.
fn proxy_service(
    server: &Server,
    config: &Config,
    snapshot: &SharedSnapshot,
    readiness: &Readiness,
) -> Result<(ProxyService, Vec<Arc<SniResolver>>), StartError> {
    let gateway = McpProxy::new(
        snapshot.clone(),
        readiness.draining.clone(),
        session_bindings(config),
        login_service(config)?,
        Lean::configured(&server.configuration).map_err(StartError::RequestPath)?,
    );
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "mcpgate");
    let mut resolvers = Vec::new();
    for (index, l) in config.listeners.iter().enumerate() {
        let tcp = ListenerConfig::tcp(l.bind.to_string()).l4_buffer(client_buffers());
        let Some(tls) = &l.tls else {
            proxy.add_listener(tcp);
            continue;
        };
        let (settings, resolver) =
            tls_settings(tls).map_err(|message| StartError::Tls { index, message })?;
        crate::telemetry::metrics::watch_certificates(l.bind, &resolver);
        resolvers.push(resolver);
        proxy.add_listener(tcp.tls(settings));
    }
    // h2c is a per-service option in pingora, not per listener: one plaintext listener asking
    // for it lets every plaintext listener accept HTTP/2 with prior knowledge (pingora ignores
    // it on TLS connections, which keep negotiating by ALPN).
    if config.listeners.iter().any(|l| l.h2c) {
        if let Some(app) = proxy.app_logic_mut() {
            app.server_options.get_or_insert_with(Default::default).h2c = true;
        }
    }
    Ok((proxy, resolvers))
}

/// The login front door over its store, when `login:` is configured. Built once: `login` is
/// restart-only, and its store (codes, refresh families, consents) outlives snapshots.
fn login_service(config: &Config) -> Result<Option<Arc<LoginService>>, StartError> {
    let Some(login) = &config.login else {
        return Ok(None);
    };
    let kv: Arc<dyn KvStore> = match &login.store {
        LoginStore::Memory => Arc::new(MemoryKv::new(LOGIN_MEMORY_RECORDS)),
        LoginStore::Redis { url } => Arc::new(RedisKv::new(url.expose(), SESSION_STORE_TIMEOUT)),
    };
    let service = LoginService::new(login, kv).map_err(StartError::Login)?;
    tracing::info!(issuer = %login.issuer, "login front door on");
    Ok(Some(Arc::new(service)))
}

/// Pending logins, codes, families, consents and registered clients kept in memory at most.
const LOGIN_MEMORY_RECORDS: u64 = 200_000;

/// Session bindings as configured; they outlive configuration snapshots.
fn session_bindings(config: &Config) -> SessionBindings {
    match &config.sessions {
        Sessions::Memory => {
            // Each binding keeps its route's idle time; the cache's own eviction uses the longest.
            let idle = config
                .routes
                .iter()
                .map(|r| r.mcp.session_idle_timeout)
                .max()
                .unwrap_or(Duration::from_secs(3600));
            tracing::info!("session bindings in memory: this instance only, lost on restart");
            SessionBindings::Stored(Arc::new(MemorySessionStore::new(idle, 100_000)))
        }
        Sessions::Sealed { keys, max_age } => {
            let ring: Vec<[u8; 32]> = keys.iter().map(|k| *k.expose()).collect();
            tracing::info!(
                keys = ring.len(),
                max_age_secs = max_age.as_secs(),
                "session ids sealed"
            );
            SessionBindings::Sealed(SessionSealer::new(&ring, *max_age))
        }
        Sessions::Redis { url } => {
            tracing::info!("session bindings in Redis");
            let store = RedisSessionStore::new(url.expose(), SESSION_STORE_TIMEOUT);
            SessionBindings::Stored(Arc::new(store))
        }
    }
}

/// TLS 1.2 + 1.3 around an SNI resolver. With a resolver set, pingora ignores the file paths and
/// builds a rustls config around it; ALPN offers h2 then http/1.1.
fn tls_settings(tls: &ListenerTls) -> Result<(TlsSettings, Arc<SniResolver>), String> {
    let resolver = SniResolver::load(&tls.certificates)?;
    let mut settings = TlsSettings::intermediate("", "").map_err(|e| e.to_string())?;
    settings.set_cert_resolver(resolver.clone());
    settings.enable_h2();
    Ok((settings, resolver))
}

/// The admin listener, bound here rather than by pingora: a busy address is a start-up error
/// (exit 1) instead of pingora's 30 s of retries and a panicking service thread.
fn admin_service(
    bind: std::net::SocketAddr,
    snapshot: &SharedSnapshot,
    readiness: &Arc<Readiness>,
) -> Result<AdminListener, StartError> {
    let listener = std::net::TcpListener::bind(bind)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| StartError::AdminBind { addr: bind, source })?;
    Ok(AdminListener {
        listener: Mutex::new(Some(listener)),
        app: Arc::new(AdminApp {
            readiness: readiness.clone(),
            snapshot: snapshot.clone(),
            started: std::time::SystemTime::now(),
        }),
    })
}

/// Serves [`AdminApp`] on a socket bound before the server started.
struct AdminListener {
    listener: Mutex<Option<std::net::TcpListener>>,
    app: Arc<AdminApp>,
}

#[async_trait]
impl BackgroundService for AdminListener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(listener) = taken.and_then(|l| tokio::net::TcpListener::from_std(l).ok()) else {
            tracing::error!("admin listener unavailable");
            return;
        };
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        let app = self.app.clone();
                        let shutdown = shutdown.clone();
                        tokio::spawn(async move { serve_admin_connection(app, tcp, shutdown).await });
                    }
                    // Out of descriptors and the like: back off briefly rather than spin.
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Requests on one admin connection until the client closes it (keep-alive reuses the stream).
async fn serve_admin_connection(
    app: Arc<AdminApp>,
    tcp: tokio::net::TcpStream,
    shutdown: ShutdownWatch,
) {
    let l4: pingora::protocols::l4::stream::Stream = tcp.into();
    let mut stream: Option<pingora::protocols::Stream> = Some(Box::new(l4));
    while let Some(s) = stream.take() {
        stream = app.process_new(s, &shutdown).await;
    }
}
