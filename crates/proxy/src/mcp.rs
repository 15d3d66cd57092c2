//! The MCP-aware part of the request path: judging the JSON-RPC body before any byte of it
//! reaches the upstream, Origin checks, session binding, identity headers, `*/list` answer
//! filtering and the audit trail. The decisions come from `mcpgate-mcp`; this module only
//! moves bytes and formats answers.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mcpgate_auth::Principal;
use mcpgate_config::{IdentityHeaders, Route, RouteAuth};
use mcpgate_http::challenge::bearer_challenge;
use mcpgate_http::routing::normalize_host;
use mcpgate_http::ErrorBody;
use mcpgate_mcp::filter::{filter_json, SseFilter};
use mcpgate_mcp::jsonrpc::{self, Body, ListKind, Message, MessageKind, RpcError, Target};
use mcpgate_mcp::policy::{Denial, DenialKind, RoutePolicy};
use mcpgate_mcp::session::SessionOwner;
use serde_json::Value;

/// JSON-RPC error codes of the gateway's own MCP answers (server-defined range).
pub const CODE_FORBIDDEN: i64 = -32010;
pub const CODE_SESSION_NOT_FOUND: i64 = -32011;

/// Bodies up to this size are read in `request_filter` (pingora can replay at most 64 KiB);
/// larger or chunked bodies are held back in `request_body_filter` until judged.
pub const EARLY_READ_LIMIT: u64 = 64 * 1024;

/// Largest upstream `*/list` JSON answer the gateway will buffer to filter; larger ones are refused.
pub const MAX_FILTERED_ANSWER: usize = 16 * 1024 * 1024;

/// A route's compiled MCP rules.
pub struct RouteMcp {
    pub policy: RoutePolicy,
    pub allow_batches: bool,
    /// Allowed `Origin` values; empty means the default rule (see [`RouteMcp::origin_allowed`]).
    pub origins: Vec<String>,
    pub identity: Option<IdentityHeaders>,
    pub authenticated: bool,
    /// Host names this route is known by: `public_url`'s host and the route's `host`.
    known_hosts: Vec<String>,
}

impl RouteMcp {
    pub fn compile(route: &Route, public_url: &url::Url) -> RouteMcp {
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
        RouteMcp {
            policy: RoutePolicy::compile(access, &route.mcp),
            allow_batches: route.mcp.allow_batches,
            origins: route.mcp.origins.clone(),
            identity: route.mcp.identity_headers.clone(),
            authenticated: access.is_some(),
            known_hosts,
        }
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

/// What the gateway learnt from an accepted request body.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    pub id: Option<Value>,
    pub method: Option<String>,
    pub target: Option<Target>,
    /// Set when the answer must be filtered.
    pub list: Option<ListKind>,
}

/// Why a request is refused at the MCP layer.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// Not acceptable JSON-RPC (400).
    Invalid(RpcError),
    /// Policy says no (403).
    Denied(Box<DeniedCall>),
}

/// A call policy refused, and what it was.
#[derive(Debug, Clone)]
pub struct DeniedCall {
    pub id: Option<Value>,
    pub method: Option<String>,
    pub target: Option<Target>,
    pub denial: Denial,
}

impl Refusal {
    pub fn denied(
        id: Option<Value>,
        method: Option<String>,
        target: Option<Target>,
        denial: Denial,
    ) -> Refusal {
        Refusal::Denied(Box::new(DeniedCall {
            id,
            method,
            target,
            denial,
        }))
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid(e) => e.reason(),
            Refusal::Denied(d) => d.denial.reason,
        }
    }

    /// Status, extra headers and the JSON-RPC error body.
    pub fn answer(&self, metadata_url: &str) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
        match self {
            Refusal::Invalid(e) => {
                let body = ErrorBody::new(400, e.code, e.message.clone(), e.reason())
                    .with_id(e.id.clone().unwrap_or(Value::Null));
                (400, Vec::new(), body.to_json())
            }
            Refusal::Denied(d) => {
                let (id, denial) = (&d.id, &d.denial);
                let mut headers = Vec::new();
                if denial.kind == DenialKind::InsufficientScope && !metadata_url.is_empty() {
                    let scope = denial.required_scopes.join(" ");
                    headers.push((
                        "www-authenticate",
                        bearer_challenge(
                            metadata_url,
                            Some(&scope),
                            Some("insufficient_scope"),
                            Some(&denial.message),
                        ),
                    ));
                }
                let body =
                    ErrorBody::new(403, CODE_FORBIDDEN, denial.message.clone(), denial.reason)
                        .with_id(id.clone().unwrap_or(Value::Null));
                (403, headers, body.to_json())
            }
        }
    }
}

/// Judge a complete POST body for a route and caller whose route baseline
/// ([`RoutePolicy::check_route`]) has already passed.
pub fn judge(
    route: &RouteMcp,
    principal: Option<&Principal>,
    body: &[u8],
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
    max_body: u64,
) -> Result<Judged, Refusal> {
    let limits = jsonrpc::Limits {
        max_depth: 64,
        max_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
    };
    let parsed = jsonrpc::parse_body(body, limits).map_err(Refusal::Invalid)?;
    match parsed {
        Body::Single(msg) => {
            jsonrpc::check_mcp_headers(&msg, mcp_method, mcp_name).map_err(Refusal::Invalid)?;
            authorize(route, principal, &msg)?;
            let list = msg
                .method
                .as_deref()
                .filter(|_| msg.kind == MessageKind::Request)
                .and_then(jsonrpc::list_kind)
                .filter(|k| route.policy.filters(*k));
            Ok(Judged {
                id: msg.id,
                method: msg.method,
                target: msg.target,
                list,
            })
        }
        Body::Batch(messages) => {
            if !route.allow_batches {
                return Err(Refusal::Invalid(RpcError {
                    code: -32600,
                    message: "JSON-RPC batches are not supported (MCP 2025-06-18 and later send one message per request)".into(),
                    id: None,
                }));
            }
            for msg in &messages {
                authorize(route, principal, msg)?;
            }
            // A batch answer is an array; `*/list` filtering of batches is not attempted, so a
            // batch may not carry list requests on a filtering route.
            if messages.iter().any(|m| {
                m.method
                    .as_deref()
                    .and_then(jsonrpc::list_kind)
                    .is_some_and(|k| route.policy.filters(k))
            }) {
                return Err(Refusal::Invalid(RpcError {
                    code: -32600,
                    message: "list requests must not be batched on this endpoint".into(),
                    id: None,
                }));
            }
            Ok(Judged {
                method: Some("batch".into()),
                ..Judged::default()
            })
        }
    }
}

fn authorize(
    route: &RouteMcp,
    principal: Option<&Principal>,
    msg: &Message,
) -> Result<(), Refusal> {
    // The route baseline was checked once for the request (`check_route` in request_filter);
    // each message only adds its target's rule.
    let decision = match &msg.target {
        Some(t) => route.policy.check_target(principal, t),
        None => Ok(()),
    };
    decision.map_err(|denial| {
        Refusal::denied(
            msg.id.clone(),
            msg.method.clone(),
            msg.target.clone(),
            denial,
        )
    })
}

/// The session owner a principal stands for.
pub fn owner(p: &Principal) -> Option<SessionOwner> {
    Some(SessionOwner {
        issuer: p.issuer.clone(),
        subject: p.subject.clone().or_else(|| p.client_id.clone())?,
    })
}

/// Identity headers for the upstream, when the route asks for them.
pub fn identity_headers(h: &IdentityHeaders, p: &Principal) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(4);
    let mut push = |name: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))) {
            out.push((name.to_owned(), v));
        }
    };
    push(&h.subject, p.subject.clone());
    push(&h.email, p.email.clone());
    push(
        &h.scopes,
        (!p.scopes.is_empty()).then(|| p.scopes.join(" ")),
    );
    push(&h.client_id, p.client_id.clone());
    out
}

/// Filtering state of one `*/list` answer.
pub enum ListFilter {
    /// `application/json`: buffered to the end, then filtered.
    Json {
        kind: ListKind,
        buf: BytesMut,
        too_large: bool,
    },
    /// `text/event-stream`: every event rewritten as it completes.
    Sse(Box<SseFilter>),
}

impl ListFilter {
    /// Feed one chunk of the answer; returns what to send on now.
    pub fn push(
        &mut self,
        chunk: Option<Bytes>,
        end_of_stream: bool,
        allow: &dyn Fn(&Target) -> bool,
    ) -> Bytes {
        match self {
            ListFilter::Json {
                kind,
                buf,
                too_large,
            } => {
                if let Some(c) = chunk {
                    if buf.len() + c.len() > MAX_FILTERED_ANSWER {
                        *too_large = true;
                        buf.clear();
                    } else if !*too_large {
                        buf.extend_from_slice(&c);
                    }
                }
                if !end_of_stream {
                    return Bytes::new();
                }
                if *too_large {
                    // Fail closed: never pass an unfiltered list.
                    return Bytes::from_static(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"list answer too large to filter"}}"#);
                }
                let body = std::mem::take(buf).freeze();
                match filter_json(*kind, &body, allow) {
                    Some(filtered) => Bytes::from(filtered),
                    None => body,
                }
            }
            ListFilter::Sse(f) => {
                let mut out = Vec::new();
                if let Some(c) = chunk {
                    f.push(&c, allow, &mut out);
                }
                if end_of_stream {
                    if let Some(rest) = f.finish() {
                        out.push(rest);
                    }
                }
                match out.len() {
                    0 => Bytes::new(),
                    1 => out.pop().unwrap_or_default(),
                    _ => {
                        let mut all = BytesMut::new();
                        for b in out {
                            all.extend_from_slice(&b);
                        }
                        all.freeze()
                    }
                }
            }
        }
    }
}

/// One audit record: who did what on which route, and what the gateway decided.
pub fn audit(
    decision: &str,
    reason: &str,
    route: &str,
    principal: Option<&Arc<Principal>>,
    method: Option<&str>,
    target: Option<&Target>,
) {
    let (kind, name) = match target {
        Some(Target::Tool(n)) => ("tool", n.as_str()),
        Some(Target::Resource(n)) => ("resource", n.as_str()),
        Some(Target::Prompt(n)) => ("prompt", n.as_str()),
        None => ("", ""),
    };
    tracing::info!(
        target: "mcpgate::audit",
        decision,
        reason,
        route,
        issuer = principal.map(|p| p.issuer.as_str()).unwrap_or_default(),
        subject = principal.and_then(|p| p.subject.as_deref()).unwrap_or_default(),
        client_id = principal.and_then(|p| p.client_id.as_deref()).unwrap_or_default(),
        token = principal.map(|p| p.token_hash.as_str()).unwrap_or_default(),
        mcp_method = method.unwrap_or_default(),
        target_kind = kind,
        target = name,
        "mcp decision"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(authenticated: bool, origins: &[&str]) -> RouteMcp {
        RouteMcp {
            policy: RoutePolicy::compile(None, &mcpgate_config::McpPolicy::default()),
            allow_batches: false,
            origins: origins.iter().map(|s| s.to_string()).collect(),
            identity: None,
            authenticated,
            known_hosts: vec!["mcp.example.com".into()],
        }
    }

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
    fn batches_are_refused_by_default_with_a_jsonrpc_error() {
        let r = route(false, &[]);
        let e = judge(
            &r,
            None,
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            None,
            None,
            1 << 20,
        )
        .unwrap_err();
        let (status, _, body) = e.answer("");
        assert_eq!(status, 400);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], -32600);
    }

    #[test]
    fn invalid_json_is_a_parse_error_and_ids_are_echoed() {
        let r = route(false, &[]);
        let (status, _, body) = judge(&r, None, b"{nope", None, None, 1 << 20)
            .unwrap_err()
            .answer("");
        assert_eq!(status, 400);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], -32700);
        let e = judge(
            &r,
            None,
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a"}}"#,
            Some("tools/call"),
            Some("b"),
            1 << 20,
        )
        .unwrap_err();
        let (_, _, body) = e.answer("");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], -32020);
        assert_eq!(v["id"], 7);
    }
}
