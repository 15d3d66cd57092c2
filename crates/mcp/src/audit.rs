//! The audit trail: one `mcpgate::audit` line per MCP decision — who did what on which route, and
//! what the gateway decided. Token and session ids are hashed, never written.
//!
//! Every field has its own key, and none is called `target`, `level`, `timestamp` or `message`:
//! those keys belong to the log line itself, and a JSON parser keeps only the last of two equal
//! keys (RFC 8259 §4 leaves duplicates undefined), which once cost the tool name.

use mcpgate_auth::Principal;

use crate::jsonrpc::Target;

/// What ties an audit line to the rest of the request's records. Kept as the values themselves
/// and written as text only when the line is written: with audit lines filtered out, formatting
/// them anyway cost every request about 0.8k instructions (callgrind).
#[derive(Debug, Clone, Copy, Default)]
pub struct Correlation<'a> {
    /// The gateway's id for the request (also on the access-log line), written as 16 hex digits.
    pub request_id: Option<u64>,
    /// The W3C trace id the request belongs to (its span's, or the caller's `traceparent`),
    /// written as 32 hex digits.
    pub trace_id: Option<[u8; 16]>,
    /// Short SHA-256 of the `Mcp-Session-Id`, never the id itself (it is a bearer credential).
    pub session_hash: &'a str,
    /// The JSON-RPC `id` of an accepted request, written as JSON text.
    pub jsonrpc_id: Option<&'a serde_json::Value>,
}

impl Correlation<'_> {
    fn request_id_text(&self) -> String {
        self.request_id
            .map(|id| format!("{id:016x}"))
            .unwrap_or_default()
    }

    fn trace_id_text(&self) -> String {
        self.trace_id
            .map(|id| format!("{:032x}", u128::from_be_bytes(id)))
            .unwrap_or_default()
    }

    fn jsonrpc_id_text(&self) -> String {
        self.jsonrpc_id.map(|v| v.to_string()).unwrap_or_default()
    }
}

/// Log one decision (`allow` or `deny`) with its reason, without correlation ids.
pub fn record(
    decision: &str,
    reason: &str,
    route: &str,
    principal: Option<&Principal>,
    method: Option<&str>,
    target: Option<&Target>,
) {
    let decided = Decision {
        decision,
        reason,
        route,
        principal,
        method,
        target,
    };
    record_with(&decided, &Correlation::default());
}

/// One decision, as the judge saw it.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub decision: &'a str,
    pub reason: &'a str,
    pub route: &'a str,
    pub principal: Option<&'a Principal>,
    pub method: Option<&'a str>,
    pub target: Option<&'a Target>,
}

/// Log one decision with the ids that correlate it to the access log and the trace.
pub fn record_with(d: &Decision<'_>, c: &Correlation<'_>) {
    let (kind, name) = target_parts(d.target);
    let p = d.principal;
    tracing::info!(
        target: "mcpgate::audit",
        decision = d.decision,
        reason = d.reason,
        route = d.route,
        issuer = p.map(|p| p.issuer.as_str()).unwrap_or_default(),
        subject = p.and_then(|p| p.subject.as_deref()).unwrap_or_default(),
        client_id = p.and_then(|p| p.client_id.as_deref()).unwrap_or_default(),
        token_hash = p.map(|p| p.token_hash.as_str()).unwrap_or_default(),
        mcp_method = d.method.unwrap_or_default(),
        target_kind = kind,
        target_name = name,
        session_hash = c.session_hash,
        // Field values are only evaluated for a line that is written.
        request_id = c.request_id_text().as_str(),
        jsonrpc_id = c.jsonrpc_id_text().as_str(),
        trace_id = c.trace_id_text().as_str(),
        "mcp decision"
    );
}

/// `(kind, name)` of what a request acts on; empty strings when it acts on nothing named.
pub fn target_parts(target: Option<&Target>) -> (&'static str, &str) {
    match target {
        Some(Target::Tool(n)) => ("tool", n.as_str()),
        Some(Target::Resource(n)) => ("resource", n.as_str()),
        Some(Target::Prompt(n)) => ("prompt", n.as_str()),
        None => ("", ""),
    }
}
