//! Judging a complete POST body before any byte of it reaches the upstream: strict JSON-RPC
//! parse, the 2026-07-28 `Mcp-Method`/`Mcp-Name` header check, the batch rules and each message's
//! target rule — and the answer to give when the body is refused.

use mcpgate_auth::Principal;
use mcpgate_http::challenge::bearer_challenge;
use mcpgate_http::codes;
use serde_json::Value;

use crate::answer::{AnswerKind, AuditFacts, LocalAnswer};
use crate::jsonrpc::{self, Body, ListKind, Message, MessageKind, RpcError, Target};
use crate::policy::{Denial, DenialKind};
use crate::route::RouteMcp;

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

    /// The answer: 400 with the JSON-RPC error, or 403 — with an RFC 6750 `insufficient_scope`
    /// challenge naming every scope the call needs when more scopes would help (step-up).
    pub fn answer(self, metadata_url: &str) -> LocalAnswer {
        match self {
            Refusal::Invalid(e) => {
                LocalAnswer::error(400, e.code, e.reason(), e.message.clone(), e.id)
            }
            Refusal::Denied(d) => {
                let DeniedCall {
                    id,
                    method,
                    target,
                    denial,
                } = *d;
                let mut answer = LocalAnswer::error(
                    403,
                    codes::FORBIDDEN,
                    denial.reason,
                    denial.message.clone(),
                    id,
                )
                .counted_as(AnswerKind::PolicyDenial);
                if denial.kind == DenialKind::InsufficientScope && !metadata_url.is_empty() {
                    let scope = denial.required_scopes.join(" ");
                    answer = answer.with_header(
                        "www-authenticate",
                        bearer_challenge(
                            metadata_url,
                            Some(&scope),
                            Some("insufficient_scope"),
                            Some(&denial.message),
                        ),
                    );
                }
                answer.audited(AuditFacts {
                    reason: denial.reason,
                    method,
                    target,
                })
            }
        }
    }
}

/// Judge a complete POST body for a route and caller whose route baseline
/// ([`RoutePolicy::check_route`](crate::policy::RoutePolicy::check_route)) has already passed.
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
    match jsonrpc::parse_body(body, limits).map_err(Refusal::Invalid)? {
        Body::Single(msg) => judge_single(route, principal, msg, mcp_method, mcp_name),
        Body::Batch(messages) => judge_batch(route, principal, &messages),
    }
}

fn judge_single(
    route: &RouteMcp,
    principal: Option<&Principal>,
    msg: Message,
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
) -> Result<Judged, Refusal> {
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

/// Batches exist only in MCP 2025-03-26; refused unless the route allows them.
fn judge_batch(
    route: &RouteMcp,
    principal: Option<&Principal>,
    messages: &[Message],
) -> Result<Judged, Refusal> {
    if !route.allow_batches {
        return Err(invalid_request(
            "JSON-RPC batches are not supported (MCP 2025-06-18 and later send one message per request)",
        ));
    }
    for msg in messages {
        authorize(route, principal, msg)?;
    }
    // A batch answer is an array; `*/list` filtering of batches is not attempted, so a batch may
    // not carry list requests on a filtering route.
    if messages.iter().any(|m| {
        m.method
            .as_deref()
            .and_then(jsonrpc::list_kind)
            .is_some_and(|k| route.policy.filters(k))
    }) {
        return Err(invalid_request(
            "list requests must not be batched on this endpoint",
        ));
    }
    Ok(Judged {
        method: Some("batch".into()),
        ..Judged::default()
    })
}

fn invalid_request(message: &str) -> Refusal {
    Refusal::Invalid(RpcError {
        code: codes::INVALID_REQUEST,
        message: message.into(),
        id: None,
    })
}

/// The message's target rule; the route baseline was checked once for the request.
fn authorize(
    route: &RouteMcp,
    principal: Option<&Principal>,
    msg: &Message,
) -> Result<(), Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::test_route as route;

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
        let a = e.answer("");
        assert_eq!(a.status, 400);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["error"]["code"], -32600);
    }

    #[test]
    fn invalid_json_is_a_parse_error_and_ids_are_echoed() {
        let r = route(false, &[]);
        let a = judge(&r, None, b"{nope", None, None, 1 << 20)
            .unwrap_err()
            .answer("");
        assert_eq!(a.status, 400);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
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
        let v: Value = serde_json::from_slice(&e.answer("").body).unwrap();
        assert_eq!(v["error"]["code"], -32020);
        assert_eq!(v["id"], 7);
    }
}
