//! The compiled, immutable runtime view of one configuration: route table, upstreams, auth
//! trust and limits. A request loads the current snapshot once and keeps it to the end, so a
//! configuration swap never changes the rules under an in-flight request.

use std::net::SocketAddr;
use std::sync::Arc;

use mcpgate_auth::{RouteTrust, TokenValidator};
use mcpgate_config::{Config, IpNet, Limits, Login, Route, RouteAuth, RouteAuthRequired};
use mcpgate_http::challenge::{bearer_challenge, resource_metadata_url};
use mcpgate_http::legacy_sse::EndpointMapping;
use mcpgate_http::metadata::MetadataDocs;
use mcpgate_http::RouteTable;
use mcpgate_login::LoginRoute;
use mcpgate_mcp::route::{BadIdentityHeader, RouteMcp};
use mcpgate_ratelimit::{Limiter, Store};

use crate::metrics::RouteSeries;
use crate::upstream::{CompiledUpstream, UpstreamError};

pub enum CompiledAuth {
    None,
    Required {
        trust: RouteTrust,
        /// RFC 9728 metadata URL for the route's resource.
        metadata_url: String,
        /// The challenge sent with a 401 when no token was presented.
        challenge: String,
    },
}

impl CompiledAuth {
    /// The RFC 9728 metadata URL challenges point at; empty on unauthenticated routes.
    pub fn metadata_url(&self) -> &str {
        match self {
            CompiledAuth::Required { metadata_url, .. } => metadata_url,
            CompiledAuth::None => "",
        }
    }
}

pub struct CompiledRoute {
    pub name: String,
    pub path: String,
    pub upstream: CompiledUpstream,
    pub auth: CompiledAuth,
    pub endpoint_mapping: EndpointMapping,
    /// Policy and MCP rules.
    pub mcp: RouteMcp,
    /// How long an unused session binding lasts (`session_idle_timeout`).
    pub session_idle_timeout: std::time::Duration,
    /// Shown on the status page: the route's `host`, and how many tool/resource/prompt rules.
    pub host: Option<String>,
    pub rule_count: usize,
    /// The route's own metric series, resolved once.
    pub series: RouteSeries,
}

impl CompiledRoute {
    fn compile(config: &Config, index: usize, r: &Route) -> Result<CompiledRoute, CompileError> {
        let upstream = CompiledUpstream::compile(&r.upstream)
            .map_err(|source| CompileError::Upstream { index, source })?;
        let mcp = RouteMcp::compile(r, &config.public_url)
            .map_err(|source| CompileError::Identity { index, source })?;
        let auth = match &r.auth {
            RouteAuth::None => CompiledAuth::None,
            RouteAuth::Required(req) => CompiledAuth::compile(req, &mcp),
        };
        let endpoint_mapping = EndpointMapping {
            route_path: r.path.clone(),
            upstream_base: upstream.base_path.clone(),
            upstream_origin: upstream.origin.clone(),
        };
        Ok(CompiledRoute {
            name: r.name.clone(),
            path: r.path.clone(),
            upstream,
            auth,
            endpoint_mapping,
            mcp,
            session_idle_timeout: r.mcp.session_idle_timeout,
            host: r.host.clone(),
            rule_count: r.mcp.tools.len() + r.mcp.resources.len() + r.mcp.prompts.len(),
            series: RouteSeries::default(),
        })
    }
}

impl CompiledAuth {
    /// Trust (issuers, audience) and the 401 challenge: the metadata URL and the baseline scopes.
    fn compile(req: &RouteAuthRequired, mcp: &RouteMcp) -> CompiledAuth {
        let metadata_url = resource_metadata_url(&req.resource);
        let baseline = mcp.policy.baseline_scopes().join(" ");
        CompiledAuth::Required {
            trust: RouteTrust::new(req.issuers.clone(), canonical_resource(&req.resource)),
            challenge: bearer_challenge(
                &metadata_url,
                Some(baseline.as_str()).filter(|s| !s.is_empty()),
                None,
                None,
            ),
            metadata_url,
        }
    }
}

/// What the gateway knows about a listener when a request arrives on it.
pub struct ListenerInfo {
    pub bind: SocketAddr,
    pub tls: bool,
    pub trusted_proxies: Vec<IpNet>,
}

pub struct Snapshot {
    pub table: RouteTable,
    /// RFC 9728 documents by request path (`/.well-known/oauth-protected-resource/github/mcp`).
    pub metadata: MetadataDocs,
    pub routes: Vec<CompiledRoute>,
    pub listeners: Vec<ListenerInfo>,
    pub limits: Limits,
    pub access_log: bool,
    pub validator: TokenValidator,
    /// `rate_limits`, over the store that outlives snapshots; `None` when not configured.
    pub rate_limits: Option<Arc<Limiter>>,
    /// Routes that trust the login front door (`auth.issuers: [login]`): what it may issue.
    pub login_routes: Vec<LoginRoute>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("routes[{index}].upstream: {source}")]
    Upstream { index: usize, source: UpstreamError },
    #[error("routes[{index}].identity_headers: {source}")]
    Identity {
        index: usize,
        source: BadIdentityHeader,
    },
}

impl Snapshot {
    pub fn compile(config: &Config, validator: TokenValidator) -> Result<Snapshot, CompileError> {
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut metadata = MetadataDocs::default();
        let mut login_routes = Vec::new();
        for (index, r) in config.routes.iter().enumerate() {
            let route = CompiledRoute::compile(config, index, r)?;
            if let RouteAuth::Required(req) = &r.auth {
                let doc = protected_resource_metadata(config, req, &route.mcp);
                if let Ok(url) = url::Url::parse(route.auth.metadata_url()) {
                    metadata.insert(&url, doc);
                }
                if req.issuers.iter().any(|i| i == Login::ISSUER_NAME) {
                    login_routes.push(LoginRoute {
                        name: r.name.clone(),
                        resource: canonical_resource(&req.resource),
                        scopes: route.mcp.policy.scopes_supported(),
                    });
                }
            }
            routes.push(route);
        }
        let table = RouteTable::new(
            config
                .routes
                .iter()
                .map(|r| (r.host.as_deref(), r.path.as_str())),
        );
        let listeners = config
            .listeners
            .iter()
            .map(|l| ListenerInfo {
                bind: l.bind,
                tls: l.tls.is_some(),
                trusted_proxies: l.trusted_proxies.clone(),
            })
            .collect();
        Ok(Snapshot {
            table,
            metadata,
            routes,
            listeners,
            limits: config.limits,
            access_log: config.logging.access_log,
            validator,
            rate_limits: None,
            login_routes,
        })
    }

    /// The configuration's rate limits over `store` (kept by the caller across snapshots so
    /// that budgets survive a reload).
    pub fn with_rate_limits(mut self, config: &Config, store: Option<Arc<dyn Store>>) -> Snapshot {
        self.rate_limits = config
            .rate_limits
            .as_ref()
            .zip(store)
            .map(|(rl, store)| Arc::new(Limiter::new(rl, store)));
        self
    }

    /// The listener a connection arrived on, by its local address.
    pub fn listener_for(&self, local: Option<SocketAddr>) -> Option<&ListenerInfo> {
        let local = local?;
        self.listeners.iter().find(|l| {
            l.bind.port() == local.port()
                && (l.bind.ip().is_unspecified() || l.bind.ip() == local.ip())
        })
    }

    pub fn upstreams(&self) -> impl Iterator<Item = &CompiledUpstream> {
        self.routes.iter().map(|r| &r.upstream)
    }
}

/// The RFC 9728 Protected Resource Metadata document for one route.
fn protected_resource_metadata(
    config: &Config,
    req: &RouteAuthRequired,
    mcp: &RouteMcp,
) -> Vec<u8> {
    let servers: Vec<&str> = req
        .issuers
        .iter()
        .filter_map(|name| config.issuers.iter().find(|i| &i.name == name))
        .map(|i| i.issuer.as_str())
        .collect();
    let mut doc = serde_json::json!({
        "resource": canonical_resource(&req.resource),
        "authorization_servers": servers,
        "scopes_supported": mcp.policy.scopes_supported(),
        "bearer_methods_supported": ["header"],
    });
    if let Some(name) = &req.access.resource_name {
        doc["resource_name"] = name.as_str().into();
    }
    if let Some(url) = &req.access.resource_documentation {
        doc["resource_documentation"] = url.as_str().into();
    }
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The resource URL as compared against `aud`: no trailing slash (except the bare origin), no fragment.
pub fn canonical_resource(url: &url::Url) -> String {
    let s = url.as_str();
    s.split('#')
        .next()
        .unwrap_or(s)
        .trim_end_matches('/')
        .to_string()
}

/// Shared handle to the current snapshot.
pub type SharedSnapshot = Arc<arc_swap::ArcSwap<Snapshot>>;
