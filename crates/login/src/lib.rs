//! The login front door: mcpgate as the OAuth 2.1 authorization server toward MCP clients, in
//! front of an OpenID Connect identity provider that offers no client registration (Entra ID,
//! Google Workspace, Okta). Pure logic over plain request/response values; the pingora crate
//! only hands requests in and writes the answers out. docs/login.md describes the flows.

pub mod cimd;
pub mod idp;
