//! The front door as one service: its endpoints, what it is built from, and the dispatch from a
//! request to the flow that answers it. The flows live in `authorize` and `token`.

use std::sync::Arc;

use mcpgate_config::Login;
use serde_json::json;

use crate::clients::ClientRegistry;
use crate::exchange::{LoginRequest, LoginResponse};
use crate::idp::UpstreamProvider;
use crate::pages::error_page;
use crate::signer::Signer;
use crate::store::{KvStore, Records};
use crate::throttle::Throttle;

/// A route whose tokens the front door may issue: `auth.issuers` names `login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRoute {
    pub name: String,
    /// Canonical resource URL (the token's `aud`).
    pub resource: String,
    /// Scopes the route advertises (what may be granted for it).
    pub scopes: Vec<String>,
}

/// Where each endpoint lives: under the issuer's path (RFC 8414 §3 for the metadata).
#[derive(Debug, Clone)]
pub struct Paths {
    /// `scheme://host[:port]` of the issuer: endpoints are absolute URLs in the metadata.
    pub origin: String,
    pub metadata: String,
    pub authorize: String,
    pub callback: String,
    pub consent: String,
    pub token: String,
    pub register: String,
    pub revoke: String,
    pub jwks: String,
}

impl Paths {
    fn new(issuer: &str) -> Paths {
        let url = url::Url::parse(issuer).ok();
        let base = url.as_ref().map_or("", |u| u.path().trim_end_matches('/'));
        let at = |p: &str| format!("{base}/oauth/{p}");
        Paths {
            origin: url
                .as_ref()
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
            metadata: format!("/.well-known/oauth-authorization-server{base}"),
            authorize: at("authorize"),
            callback: at("callback"),
            consent: at("consent"),
            token: at("token"),
            register: at("register"),
            revoke: at("revoke"),
            jwks: at("jwks"),
        }
    }
}

/// The login front door.
pub struct LoginService {
    pub(crate) config: Login,
    pub(crate) records: Records,
    pub(crate) clients: ClientRegistry,
    pub(crate) idp: UpstreamProvider,
    pub(crate) signer: Signer,
    pub(crate) paths: Paths,
    /// Unauthenticated endpoints that create state are throttled per address.
    pub(crate) throttle: Throttle,
}

impl LoginService {
    pub fn new(config: &Login, kv: Arc<dyn KvStore>) -> Result<LoginService, String> {
        let records = Records::new(kv);
        Ok(LoginService {
            clients: ClientRegistry::new(&config.clients, records.clone())?,
            idp: UpstreamProvider::new(&config.upstream)?,
            signer: Signer::new(&config.issuer, &config.signing_keys)?,
            paths: Paths::new(&config.issuer),
            config: config.clone(),
            records,
            throttle: Throttle::default(),
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Whether a request path is one of the front door's endpoints.
    pub fn owns(&self, path: &str) -> bool {
        let p = &self.paths;
        [
            &p.metadata,
            &p.authorize,
            &p.callback,
            &p.consent,
            &p.token,
            &p.register,
            &p.revoke,
            &p.jwks,
        ]
        .iter()
        .any(|e| e.as_str() == path)
    }

    /// Answers one request to an endpoint [`owns`](Self::owns) claims. `routes` are those of
    /// the configuration snapshot serving the request (reloads change them).
    pub async fn handle(&self, req: &LoginRequest, routes: &[LoginRoute]) -> LoginResponse {
        if !self.for_scripts(&req.path) {
            return self.dispatch(req, routes).await;
        }
        if req.method == "OPTIONS" {
            return with_cors(LoginResponse::empty(204))
                .with_header("access-control-allow-methods", "GET, POST".into())
                .with_header(
                    "access-control-allow-headers",
                    "Authorization, Content-Type".into(),
                )
                .with_header("access-control-max-age", "600".into());
        }
        with_cors(self.dispatch(req, routes).await)
    }

    /// Endpoints a browser-based client calls from its own origin (`fetch`): metadata, keys,
    /// token, registration and revocation. They use no cookie, so any origin may read them;
    /// the pages (authorize, callback, consent) are navigations and stay same-origin.
    fn for_scripts(&self, path: &str) -> bool {
        let p = &self.paths;
        [&p.metadata, &p.jwks, &p.token, &p.register, &p.revoke]
            .iter()
            .any(|e| e.as_str() == path)
    }

    async fn dispatch(&self, req: &LoginRequest, routes: &[LoginRoute]) -> LoginResponse {
        let p = &self.paths;
        let (path, get) = (
            req.path.as_str(),
            req.method == "GET" || req.method == "HEAD",
        );
        match path {
            _ if path == p.metadata && get => self.metadata(routes),
            _ if path == p.jwks && get => LoginResponse::json(200, self.signer.jwks()),
            _ if path == p.authorize && get => self.authorize(req, routes).await,
            _ if path == p.callback && get => self.callback(req, routes).await,
            _ if path == p.consent && req.method == "POST" => self.consent(req).await,
            _ if path == p.token && req.method == "POST" => self.token(req).await,
            _ if path == p.register && req.method == "POST" => self.register(req).await,
            _ if path == p.revoke && req.method == "POST" => self.revoke(req).await,
            _ if path == p.register && !self.clients.dynamic_registration() => {
                LoginResponse::oauth_error(404, "not_found", "dynamic registration is off")
            }
            _ => LoginResponse::oauth_error(405, "invalid_request", "method not allowed")
                .with_header("allow", allowed_method(p, path).into())
                .refused("method_not_allowed"),
        }
    }

    /// The route a `resource` names (RFC 8707), compared without a trailing slash. Absent, the
    /// only route trusting the front door is meant (there is no other reading).
    pub(crate) fn route_for<'r>(
        routes: &'r [LoginRoute],
        resource: Option<&str>,
    ) -> Option<&'r LoginRoute> {
        match resource {
            Some(r) => {
                let r = r.trim_end_matches('/');
                routes.iter().find(|route| route.resource == r)
            }
            None if routes.len() == 1 => routes.first(),
            None => None,
        }
    }

    /// RFC 8414 §2 authorization server metadata.
    fn metadata(&self, routes: &[LoginRoute]) -> LoginResponse {
        let url = |p: &str| format!("{}{p}", self.paths.origin);
        let mut scopes: Vec<&str> = routes
            .iter()
            .flat_map(|r| r.scopes.iter().map(String::as_str))
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        let mut doc = json!({
            "issuer": self.config.issuer,
            "authorization_endpoint": url(&self.paths.authorize),
            "token_endpoint": url(&self.paths.token),
            "jwks_uri": url(&self.paths.jwks),
            "revocation_endpoint": url(&self.paths.revoke),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "scopes_supported": scopes,
            "client_id_metadata_document_supported": self.clients.metadata_documents(),
            "authorization_response_iss_parameter_supported": true,
        });
        if self.clients.dynamic_registration() {
            doc["registration_endpoint"] = url(&self.paths.register).into();
        }
        LoginResponse::json(200, &doc)
    }

    /// A clear page for the person when the store cannot answer: fail closed.
    pub(crate) fn store_down(&self) -> LoginResponse {
        error_page(
            503,
            "login_store_unavailable",
            "The sign-in service cannot reach its store. Try again shortly.",
        )
    }
}

/// `Access-Control-Allow-Origin: *`, never with credentials (none of these endpoints reads a
/// cookie; a token or client secret travels in the request itself).
fn with_cors(r: LoginResponse) -> LoginResponse {
    r.with_header("access-control-allow-origin", "*".into())
}

fn allowed_method(p: &Paths, path: &str) -> &'static str {
    if [&p.metadata, &p.jwks, &p.authorize, &p.callback]
        .iter()
        .any(|e| e.as_str() == path)
    {
        "GET, HEAD"
    } else {
        "POST"
    }
}
