//! A route's compiled MCP rules: its policy, whether batches are allowed, the Origin /
//! DNS-rebinding guard and the identity headers it sets upstream.

use http::{HeaderName, HeaderValue};
use mcpgate_auth::Principal;
use mcpgate_config::{IdentityHeaders, Route, RouteAuth};
use mcpgate_http::routing::normalize_host;

use crate::policy::RoutePolicy;

/// A route's compiled MCP rules.
pub struct RouteMcp {
    pub policy: RoutePolicy,
    pub allow_batches: bool,
    /// Allowed `Origin` values; empty means the default rule (see [`RouteMcp::origin_allowed`]).
    pub origins: Vec<String>,
    /// Identity header names (subject, email, scopes, client id) when the route sets them.
    pub identity: Option<IdentityNames>,
    pub authenticated: bool,
    /// Host names this route is known by: `public_url`'s host and the route's `host`.
    known_hosts: Vec<String>,
}

/// The header names of `routes[].identity_headers`, parsed once.
pub struct IdentityNames {
    /// subject, email, scopes, client id — in that order; `None` is not sent.
    pub names: [Option<HeaderName>; 4],
    /// Removed from client requests: the configured names and the four default names, so a
    /// client cannot pass off its own `X-MCP-Email` beside a gateway-set `X-User`.
    pub strip: Vec<HeaderName>,
}

/// A configured identity header name that is not a valid header name (configuration validation
/// refuses these, so this only guards against a configuration built by hand).
#[derive(Debug, thiserror::Error)]
#[error("identity header {0:?} is not a valid header name")]
pub struct BadIdentityHeader(pub String);

impl RouteMcp {
    pub fn compile(route: &Route, public_url: &url::Url) -> Result<RouteMcp, BadIdentityHeader> {
        let access = match &route.auth {
            RouteAuth::Required(r) => Some(&r.access),
            RouteAuth::None => None,
        };
        let known_hosts = public_url
            .host_str()
            .into_iter()
            .chain(route.host.as_deref())
            .map(normalize_host)
            .collect();
        let identity = match &route.mcp.identity_headers {
            Some(h) => Some(IdentityNames::compile(h)?),
            None => None,
        };
        Ok(RouteMcp {
            policy: RoutePolicy::compile(access, &route.mcp),
            allow_batches: route.mcp.allow_batches,
            origins: route.mcp.origins.clone(),
            identity,
            authenticated: access.is_some(),
            known_hosts,
        })
    }

    /// DNS-rebinding and cross-site guard. With `origins` configured, a present `Origin` must be
    /// listed. Without, authenticated routes rely on the token (a rebinding page cannot read it);
    /// an unauthenticated route answers only requests whose `Host` — and `Origin`, when present —
    /// name the gateway: `public_url`'s host, the route's `host`, or a loopback name.
    pub fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        if !self.origins.is_empty() {
            let Some(origin) = origin else { return true };
            let origin = origin.trim().to_ascii_lowercase();
            return self.origins.contains(&origin);
        }
        if self.authenticated {
            return true;
        }
        if !host.is_some_and(|h| self.is_known(&normalize_host(h))) {
            return false;
        }
        match origin {
            None => true,
            Some(o) => url::Url::parse(o.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .and_then(|u| u.host_str().map(normalize_host))
                .is_some_and(|h| self.is_known(&h)),
        }
    }

    fn is_known(&self, host: &str) -> bool {
        matches!(host, "localhost" | "127.0.0.1" | "::1")
            || self.known_hosts.iter().any(|k| k == host)
    }
}

impl IdentityNames {
    fn compile(h: &IdentityHeaders) -> Result<IdentityNames, BadIdentityHeader> {
        let [s, e, sc, c] = h.names().map(|n| n.map(header_name).transpose());
        let names = [s?, e?, sc?, c?];
        let mut strip: Vec<HeaderName> = names.iter().flatten().cloned().collect();
        for d in IdentityHeaders::DEFAULT_NAMES {
            let d = HeaderName::from_static(d);
            if !strip.contains(&d) {
                strip.push(d);
            }
        }
        Ok(IdentityNames { names, strip })
    }

    /// The caller's identity headers that are named; values that are not plain visible ASCII
    /// are left out rather than sent mangled.
    pub fn values(&self, p: &Principal) -> Vec<(HeaderName, HeaderValue)> {
        let [subject, email, scopes, client_id] = &self.names;
        let scope_list = (!p.scopes.is_empty()).then(|| p.scopes.join(" "));
        [
            (subject, p.subject.clone()),
            (email, p.email.clone()),
            (scopes, scope_list),
            (client_id, p.client_id.clone()),
        ]
        .into_iter()
        .filter_map(|(name, v)| {
            let name = name.as_ref()?;
            let v = v.filter(|v| v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))?;
            Some((name.clone(), HeaderValue::try_from(v).ok()?))
        })
        .collect()
    }
}

fn header_name(name: &str) -> Result<HeaderName, BadIdentityHeader> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| BadIdentityHeader(name.to_owned()))
}

#[cfg(test)]
pub(crate) fn test_route(authenticated: bool, origins: &[&str]) -> RouteMcp {
    RouteMcp {
        policy: RoutePolicy::compile(None, &mcpgate_config::McpPolicy::default()),
        allow_batches: false,
        origins: origins.iter().map(|s| s.to_string()).collect(),
        identity: None,
        authenticated,
        known_hosts: vec!["mcp.example.com".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::test_route as route;

    #[test]
    fn origin_and_host_rules() {
        let listed = route(true, &["https://app.example.com"]);
        assert!(listed.origin_allowed(None, Some("gw")));
        assert!(listed.origin_allowed(Some("https://APP.example.com"), Some("gw")));
        assert!(!listed.origin_allowed(Some("https://evil.example"), Some("gw")));
        assert!(route(true, &[]).origin_allowed(Some("https://anything"), Some("anything")));
        let open = route(false, &[]);
        assert!(open.origin_allowed(None, Some("127.0.0.1:8080")));
        assert!(open.origin_allowed(Some("http://localhost:3000"), Some("localhost:8080")));
        assert!(open.origin_allowed(Some("https://mcp.example.com"), Some("MCP.example.com")));
        assert!(open.origin_allowed(None, Some("[::1]:8080")));
        // DNS rebinding: the attacker's name in Host and/or Origin.
        assert!(!open.origin_allowed(Some("http://evil.example.com"), Some("evil.example.com")));
        assert!(!open.origin_allowed(None, Some("evil.example.com:8080")));
        assert!(!open.origin_allowed(Some("http://evil.example"), Some("127.0.0.1:8080")));
        assert!(!open.origin_allowed(Some("null"), Some("127.0.0.1:8080")));
        assert!(!open.origin_allowed(None, None));
    }

    #[test]
    fn only_named_identity_headers_are_sent_and_every_default_name_is_stripped() {
        use super::{IdentityHeaders, IdentityNames};
        let only_subject = IdentityHeaders {
            subject: Some("x-user".into()),
            ..IdentityHeaders::default()
        };
        let names = IdentityNames::compile(&only_subject).unwrap();
        let p = mcpgate_auth::Principal {
            subject: Some("alice".into()),
            email: Some("alice@example.com".into()),
            scopes: vec!["mcp:read".into()],
            client_id: Some("cli".into()),
            issuer: "https://idp.example.com".into(),
            issuer_name: "idp".into(),
            audience: vec![],
            expires_at: None,
            email_verified: true,
            groups: vec![],
            claims: Default::default(),
            token_hash: "h".into(),
        };
        let sent: Vec<String> = names
            .values(&p)
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(sent, ["x-user"]);
        let stripped: Vec<&str> = names.strip.iter().map(|n| n.as_str()).collect();
        assert_eq!(
            stripped,
            [
                "x-user",
                "x-mcp-subject",
                "x-mcp-email",
                "x-mcp-scopes",
                "x-mcp-client-id"
            ]
        );
        let all = IdentityNames::compile(&IdentityHeaders::all_default()).unwrap();
        assert_eq!(all.values(&p).len(), 4);
    }
}
