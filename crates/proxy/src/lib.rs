//! The pingora layer of mcpgate: listeners and TLS termination, the request path (routing,
//! authentication, forwarding, streaming), the admin endpoints and the process lifecycle.
//! Decisions live in the pure crates (`mcpgate-http`, `mcpgate-auth`, `mcpgate-mcp`); this crate wires them in.

pub mod admin;
pub mod gateway;
pub mod mcp;
pub mod metrics;
pub mod respond;
pub mod server;
pub mod snapshot;
pub mod tls;
pub mod upstream;

pub use server::{preflight, Gateway, StartError};
