//! Pure HTTP logic for mcpgate, free of pingora so every rule is unit-testable:
//! request-path normalisation, route matching, forwarding headers, SSE framing,
//! the legacy `endpoint` rewrite, the JSON error bodies and codes the gateway answers with, the
//! classification of proxying failures and the preparation of the upstream request header.

pub mod budget;
pub mod challenge;
pub mod codes;
pub mod error_body;
pub mod failure;
pub mod forwarded;
pub mod headers;
pub mod html;
pub mod labels;
pub mod legacy_sse;
pub mod metadata;
pub mod path;
pub mod routing;
pub mod sse;

pub use error_body::{ErrorBody, GatewayError};
pub use html::escape_html;
pub use labels::status_label;
pub use path::{normalize_path, NormalizedPath, PathError};
pub use routing::{RouteMatch, RouteTable};
