//! The request header names the hooks look up, parsed once: a lookup by `&str` parses and
//! lower-cases the name on every call (`HdrName::from_bytes`, `parse_hdr`: about 8k of the
//! 188.5k instructions callgrind counted per request went to a dozen such lookups).

use http::HeaderName;

pub use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST, ORIGIN, TRANSFER_ENCODING};
pub use mcpgate_http::headers::{X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};

pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
