//! Pure HTTP logic for mcpgate, free of pingora so every rule is unit-testable:
//! request-path normalisation, route matching, forwarding headers, SSE framing,
//! the legacy `endpoint` rewrite and the JSON error bodies the gateway answers with.

pub mod challenge;
pub mod error_body;
pub mod forwarded;
pub mod headers;
pub mod legacy_sse;
pub mod path;
pub mod routing;
pub mod sse;

pub use error_body::{ErrorBody, GatewayError};
pub use path::{normalize_path, NormalizedPath, PathError};
pub use routing::{RouteMatch, RouteTable};
