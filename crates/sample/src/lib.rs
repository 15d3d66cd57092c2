//! Test and demo infrastructure for mcpgate: a real MCP upstream and a real
//! token issuer, both on loopback.
//!
//! - [`mcp_server`] owns [`SampleMcpServer`]: an MCP server speaking
//!   Streamable HTTP and legacy HTTP+SSE, with counters ([`Stats`]) that tests
//!   assert on.
//! - [`issuer`] owns [`DemoIssuer`]: a local OAuth/OIDC issuer serving JWKS and
//!   discovery metadata, minting ES256 JWTs and opaque tokens, and answering
//!   token introspection.
//! - `sse` owns Server-Sent Events framing and streaming responses.
//! - `util` owns the small helpers both servers share (locking, random ids,
//!   serving with a shutdown switch).

pub mod issuer;
pub mod mcp_server;
mod sse;
mod util;

pub use issuer::{DemoIssuer, IssuerOptions};
pub use mcp_server::{McpServerOptions, SampleMcpServer, Stats};
