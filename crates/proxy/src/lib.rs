//! The pingora layer of mcpgate: listeners and TLS termination, the request path (routing,
//! authentication, forwarding, streaming), the admin endpoints and the process lifecycle.
//! Decisions live in the pure crates (`mcpgate-http`, `mcpgate-auth`, `mcpgate-mcp`); this crate
//! only wires them into pingora.

pub mod admin;
pub mod metrics;
pub mod reload;
pub mod request;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod upstream;

pub use server::{preflight, ConfigSource, GatewayServer, StartError};
