//! The validated configuration model: what the rest of mcpgate consumes.
//!
//! Every value here has already been checked (URLs parsed, durations parsed, references between
//! routes and issuers resolved, secrets interpolated). Nothing downstream re-validates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

pub use crate::ipnet::IpNet;

/// A secret string (client secret, upstream credential). Its `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret's value; call only where it is sent to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// How clients reach the gateway (scheme, host, optional port, no trailing slash).
    pub public_url: Url,
    pub listeners: Vec<Listener>,
    pub admin: Option<Admin>,
    pub routes: Vec<Route>,
    pub issuers: Vec<Issuer>,
    pub limits: Limits,
    pub logging: Logging,
    pub shutdown: Shutdown,
    pub sessions: crate::sessions::Sessions,
    /// OpenTelemetry span export; `None` when the `tracing:` section is absent.
    pub tracing: Option<crate::telemetry::Tracing>,
    /// `None`: no rate limits.
    pub rate_limits: Option<crate::rate_limits::RateLimits>,
    /// The login front door; `None` when the `login:` section is absent.
    pub login: Option<crate::login::Login>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub bind: SocketAddr,
    pub tls: Option<ListenerTls>,
    /// Plaintext listener that also accepts HTTP/2 with prior knowledge (h2c). Never with `tls`.
    pub h2c: bool,
    /// Peers whose `X-Forwarded-*` headers are trusted (exact IPs or CIDR ranges). Empty: trust none.
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// At least one. The first is the default; the others are chosen by SNI against their names.
    pub certificates: Vec<CertificatePair>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub bind: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Normalised absolute path without a trailing slash (or exactly `/`).
    pub path: String,
    /// Lower-case host name (without port) this route is bound to, if any.
    pub host: Option<String>,
    pub upstream: Upstream,
    pub auth: RouteAuth,
    /// MCP-level rules: tools/resources/prompts, origins, batches, identity headers, sessions.
    pub mcp: McpPolicy,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http` or `https`; its path replaces the route path.
    pub url: Url,
    pub timeouts: UpstreamTimeouts,
    pub tls: UpstreamTls,
    /// Extra headers sent upstream (e.g. a static credential); values may come from env/files.
    pub headers: BTreeMap<String, Secret>,
    /// Request headers never forwarded, beyond the built-in set (lower-case names).
    pub strip_headers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    pub connect: Duration,
    /// Longest wait for the upstream's response headers and between body reads of a non-SSE answer.
    pub request: Duration,
    /// Longest silence on an SSE stream before it is cut.
    pub stream_idle: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(60),
            stream_idle: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    /// PEM bundle of trusted CAs; none → the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mTLS toward the upstream.
    pub client_cert: Option<CertificatePair>,
    /// SNI / verified name override; default: the URL's host.
    pub server_name: Option<String>,
}

// Built once per configuration load; boxing would only add noise at every use.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RouteAuth {
    /// `auth: none` — explicitly unauthenticated.
    None,
    Required(RouteAuthRequired),
}

#[derive(Debug, Clone)]
pub struct RouteAuthRequired {
    /// Names of trusted issuers (each exists in `Config::issuers`).
    pub issuers: Vec<String>,
    /// The route's canonical resource URL (default: public_url + path).
    pub resource: Url,
    /// Who may use the route at all, beyond holding a valid token.
    pub access: Access,
}

/// Route-wide requirements on the caller (`routes[].auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Scopes every request on the route needs.
    pub required_scopes: Vec<String>,
    /// Lower-case email domains; empty = any. An `hd` claim naming a listed domain also passes.
    pub allowed_domains: Vec<String>,
    /// With `allowed_domains`: the email must be verified (`email_verified: true`). Default true.
    pub require_email_verified: bool,
    /// Any of these groups (issuer's groups claim); empty = any.
    pub allowed_groups: Vec<String>,
    /// Exact claim values (`tenant: acme`); a claim array matches if it contains the value.
    pub require_claims: BTreeMap<String, String>,
    /// `scope: [scopes it implies]`, applied transitively.
    pub scope_hierarchy: BTreeMap<String, Vec<String>>,
    /// Advertised in the metadata and the 401 challenge; default: `required_scopes`.
    pub scopes_supported: Option<Vec<String>>,
    /// RFC 9728 `resource_name` / `resource_documentation`.
    pub resource_name: Option<String>,
    pub resource_documentation: Option<Url>,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            required_scopes: Vec::new(),
            allowed_domains: Vec::new(),
            require_email_verified: true,
            allowed_groups: Vec::new(),
            require_claims: BTreeMap::new(),
            scope_hierarchy: BTreeMap::new(),
            scopes_supported: None,
            resource_name: None,
            resource_documentation: None,
        }
    }
}

/// One `tools` / `resources` / `prompts` rule; the first rule whose pattern matches decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpRule {
    /// Glob on the tool name / resource URI / prompt name: `*` any run, `?` one character.
    pub pattern: String,
    /// All of these scopes are needed (on top of the route's `required_scopes`).
    pub scopes: Vec<String>,
    /// Any of these groups is needed; empty = no group condition.
    pub groups: Vec<String>,
    /// Refuse outright (and hide from lists).
    pub deny: bool,
}

/// Header names for identity passed to the upstream (`routes[].identity_headers`): only the
/// named ones are sent; `{}` names all four with their default names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityHeaders {
    pub subject: Option<String>,
    pub email: Option<String>,
    pub scopes: Option<String>,
    pub client_id: Option<String>,
}

impl IdentityHeaders {
    /// Default names, in the order subject, email, scopes, client id. Client-sent copies of
    /// these are removed whenever identity headers are on, named or not.
    pub const DEFAULT_NAMES: [&'static str; 4] = [
        "x-mcp-subject",
        "x-mcp-email",
        "x-mcp-scopes",
        "x-mcp-client-id",
    ];

    /// `identity_headers: {}`: all four, default names.
    pub fn all_default() -> IdentityHeaders {
        let [subject, email, scopes, client_id] = Self::DEFAULT_NAMES.map(|n| Some(n.to_owned()));
        IdentityHeaders {
            subject,
            email,
            scopes,
            client_id,
        }
    }

    /// subject, email, scopes, client id — in that order.
    pub fn names(&self) -> [Option<&str>; 4] {
        [&self.subject, &self.email, &self.scopes, &self.client_id].map(|n| n.as_deref())
    }
}

/// MCP-aware rules of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPolicy {
    pub tools: Vec<McpRule>,
    pub resources: Vec<McpRule>,
    pub prompts: Vec<McpRule>,
    /// Allowed `Origin` values (`scheme://host[:port]`, lower-case). Empty: see `docs/configuration.md`.
    pub origins: Vec<String>,
    /// Accept 2025-03-26 JSON-RPC batches (each element authorized). Default false.
    pub allow_batches: bool,
    /// Send the caller's identity upstream in these headers, when set.
    pub identity_headers: Option<IdentityHeaders>,
    /// Session bindings expire after this much inactivity.
    pub session_idle_timeout: Duration,
}

impl Default for McpPolicy {
    fn default() -> Self {
        McpPolicy {
            tools: Vec::new(),
            resources: Vec::new(),
            prompts: Vec::new(),
            origins: Vec::new(),
            allow_batches: false,
            identity_headers: None,
            session_idle_timeout: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    /// Every algorithm an issuer may allow (HMAC and `none` cannot even be configured).
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    pub fn parse(s: &str) -> Option<Algorithm> {
        Some(match s {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub name: String,
    /// Must equal the token's `iss` exactly.
    pub issuer: String,
    /// Where the signing keys come from, if this issuer signs JWTs.
    pub jwks: Option<JwksSource>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub required_claims: Vec<String>,
    pub audiences: Vec<String>,
    pub require_at_jwt: bool,
    pub claims: ClaimNames,
    pub jwks_refresh: JwksRefresh,
    pub introspection: Option<Introspection>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// Discover `jwks_uri` from `<issuer>/.well-known/openid-configuration` (or RFC 8414).
    Discovery,
    Uri(Url),
    File(PathBuf),
    /// A JWKS document held in memory: the login front door's own public keys.
    Inline(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksRefresh {
    /// Floor and ceiling applied to the JWKS `Cache-Control: max-age`.
    pub min_interval: Duration,
    pub max_interval: Duration,
    /// At most one unknown-`kid` refetch per issuer per this interval.
    pub unknown_kid_cooldown: Duration,
    /// How long the last good keys stay usable while the JWKS endpoint is failing.
    pub stale_window: Duration,
    /// Per-fetch timeout.
    pub timeout: Duration,
}

impl Default for JwksRefresh {
    fn default() -> Self {
        JwksRefresh {
            min_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(3600),
            unknown_kid_cooldown: Duration::from_secs(10),
            stale_window: Duration::from_secs(6 * 3600),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub groups: String,
    pub email: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            groups: "groups".into(),
            email: "email".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    pub endpoint: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_method: ClientAuthMethod,
    pub cache_ttl: Duration,
    pub negative_cache_ttl: Duration,
    pub timeout: Duration,
    /// Most introspection calls in flight to this endpoint at once; beyond it requests wait
    /// briefly, then get 503 (junk bearer strings must not fan out to the IdP).
    pub max_concurrent: usize,
    /// Accept an active answer that names no audience (no `aud`, or `"aud": []`). Off by
    /// default: such a token would pass on every route of every resource trusting this issuer.
    pub accept_missing_audience: bool,
}

impl Introspection {
    /// Default for [`Introspection::max_concurrent`].
    pub const DEFAULT_MAX_CONCURRENT: usize = 16;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (413 above).
    pub max_request_body: u64,
    /// Largest total size of request headers accepted (431 above).
    pub max_request_headers: usize,
    /// Request-body bytes held for judging at once, in all (503 past it).
    pub max_buffered_bodies: u64,
    /// The same, per client connection (HTTP/2 multiplexes many bodies over one).
    pub max_buffered_per_connection: u64,
    /// How long a client may take to send its request headers / each body read.
    pub client_read_timeout: Duration,
    /// How long a request head may take from its first byte to its end, in all.
    pub request_head_timeout: Duration,
    /// How long a write to a stalled client may block.
    pub client_write_timeout: Duration,
    /// Keep-alive idle time for client connections.
    pub client_keepalive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body: 4 * 1024 * 1024,
            max_request_headers: 64 * 1024,
            max_buffered_bodies: 256 * 1024 * 1024,
            max_buffered_per_connection: 16 * 1024 * 1024,
            client_read_timeout: Duration::from_secs(30),
            request_head_timeout: Duration::from_secs(10),
            client_write_timeout: Duration::from_secs(30),
            client_keepalive: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `mcpgate=debug,info`.
    pub level: String,
    /// Emit one access-log line per request.
    pub access_log: bool,
    /// Write audit lines (JSON, one per line) to this file instead of the main log.
    pub audit_file: Option<std::path::PathBuf>,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            format: LogFormat::Text,
            level: "info".into(),
            access_log: true,
            audit_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// How long in-flight requests and SSE streams may run after SIGTERM.
    pub grace_period: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            grace_period: Duration::from_secs(30),
        }
    }
}
