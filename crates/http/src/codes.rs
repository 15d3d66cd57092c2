//! Every JSON-RPC error code the gateway answers with, in one place (docs/errors.md lists them
//! with their HTTP statuses and reasons). JSON-RPC 2.0 reserves −32768..−32000; within it the
//! standard codes are used where they fit, −32000..−32019 are implementation-defined (ours), and
//! −32020..−32099 belong to MCP (2026-07-28).

/// The body is not JSON (JSON-RPC 2.0 §5.1).
pub const PARSE_ERROR: i64 = -32700;
/// Not an acceptable JSON-RPC request: bad shape, duplicate keys, a batch where none is allowed,
/// a malformed path or request.
pub const INVALID_REQUEST: i64 = -32600;
/// The method's parameters are unusable (e.g. `tools/call` without a tool name).
pub const INVALID_PARAMS: i64 = -32602;
/// The gateway itself failed, or a list answer could not be filtered (fail closed).
pub const INTERNAL_ERROR: i64 = -32603;
/// A token is needed or the one sent was refused (401).
pub const AUTHENTICATION_REQUIRED: i64 = -32001;
/// The MCP server behind the gateway is unreachable, too slow or broken (502/504).
pub const UPSTREAM_UNAVAILABLE: i64 = -32002;
/// The gateway or its identity provider cannot serve now; retry later (503).
pub const UNAVAILABLE: i64 = -32003;
/// No MCP endpoint at this path (404).
pub const NO_ROUTE: i64 = -32004;
/// HTTP method not allowed on this endpoint (405).
pub const METHOD_NOT_ALLOWED: i64 = -32005;
/// Policy refuses the call, or the Origin is not allowed (403).
pub const FORBIDDEN: i64 = -32010;
/// The `Mcp-Session-Id` is unknown to the caller (404): start a new session.
pub const SESSION_NOT_FOUND: i64 = -32011;
/// The request body or headers exceed the gateway's limits (413/431).
pub const TOO_LARGE: i64 = -32013;
/// Over a rate limit (429): `Retry-After` says when to try again.
pub const RATE_LIMITED: i64 = -32014;
/// MCP 2026-07-28: an `Mcp-Method` / `Mcp-Name` header disagrees with the body (400).
pub const HEADER_MISMATCH: i64 = -32020;
