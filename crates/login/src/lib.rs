//! The login front door: mcpgate as the OAuth 2.1 authorization server toward MCP clients, in
//! front of an OpenID Connect identity provider that offers no client registration (Entra ID,
//! Google Workspace, Okta). Pure logic over plain request/response values; the pingora crate
//! only hands requests in and writes the answers out. docs/login.md describes the flows.

mod authorize;
pub mod cimd;
pub mod clients;
pub mod exchange;
pub mod idp;
mod pages;
pub mod policy;
pub mod records;
pub mod register;
pub mod secrets;
mod service;
pub mod signer;
pub mod store;
mod throttle;
mod token;

pub use exchange::{LoginRequest, LoginResponse};
pub use service::{LoginRoute, LoginService, Paths};
pub use store::{KvStore, MemoryKv, StoreError};
