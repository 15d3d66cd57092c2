//! The audit trail: one `mcpgate::audit` line per MCP decision — who did what on which route, and
//! what the gateway decided. Token hashes only, never tokens.

use mcpgate_auth::Principal;

use crate::jsonrpc::Target;

/// Log one decision (`allow` or `deny`) with its reason.
pub fn record(
    decision: &str,
    reason: &str,
    route: &str,
    principal: Option<&Principal>,
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
        target_name = name,
        "mcp decision"
    );
}
