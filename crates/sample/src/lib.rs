//! Test and demo infrastructure for mcpgate: a real MCP upstream and a real
//! token issuer, both on loopback.
//!
//! - [`mcp_server`] owns [`SampleMcpServer`]: an MCP server speaking
//!   Streamable HTTP and legacy HTTP+SSE, with counters ([`Stats`]) that tests
//!   assert on.
//! - [`issuer`] owns [`DemoIssuer`]: a local OAuth/OIDC issuer serving JWKS and
//!   discovery metadata, minting ES256 JWTs and opaque tokens, answering
//!   token introspection, and signing [`DemoUser`]s in as a small OpenID
//!   provider (authorization code + PKCE, refresh, userinfo).
//! - [`client`] owns [`DemoClient`]: a tiny web app that logs a person in
//!   through mcpgate's login front door, for `mcpgate demo`.
//! - `sse` owns Server-Sent Events framing and streaming responses.
//! - `util` owns the small helpers both servers share (locking, random ids,
//!   serving with a shutdown switch).

pub mod client;
pub mod issuer;
pub mod mcp_server;
mod sse;
mod util;

pub use client::{ClientOptions, DemoClient};
pub use issuer::{DemoIssuer, DemoUser, IssuerOptions};
pub use mcp_server::{McpServerOptions, SampleMcpServer, Stats};
