//! What mcpgate understands of MCP, free of any HTTP engine: classifying a JSON-RPC request body
//! (`jsonrpc`), matching names against rule globs (`glob`), deciding what a caller may do
//! (`policy`, `route`, `judge`), how refusals are answered (`answer`, `authn`) and audited
//! (`audit`), bounded metric labels and trace context (`labels`), filtering `*/list` answers to
//! what the caller may use (`filter`) and remembering which caller owns which MCP session
//! (`session`, or sealed into the id itself: `seal`); resource URIs are judged in the form the
//! upstream acts on (`uri`).

pub mod answer;
pub mod audit;
pub mod authn;
pub mod filter;
pub mod glob;
pub mod jsonrpc;
pub mod judge;
pub mod labels;
pub mod policy;
pub mod route;
pub mod seal;
pub mod session;
pub mod uri;
