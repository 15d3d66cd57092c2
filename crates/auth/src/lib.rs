//! Access-token validation for mcpgate.
//!
//! [`TokenValidator`] turns a bearer token into a [`Principal`] for one route ([`RouteTrust`]) or
//! an [`AuthError`] saying why not. JWTs are verified against their issuer's JWKS
//! (modules `jwks`, `keys`, `jwt`); opaque tokens are introspected (module `introspection`); results are
//! cached by the token's SHA-256 until the token expires. Everything fails closed: no keys or
//! no introspection answer is an error ([`AuthErrorKind::is_unavailable`]), never a pass.

mod bearer;
mod error;
mod fetch;
#[doc(hidden)]
pub mod fuzzing;
mod introspection;
mod jwks;
mod jwt;
pub mod keys;
mod observe;
mod principal;
mod validator;

pub use bearer::{bearer_token, token_hash, MalformedAuthorization, TokenDigest, MAX_TOKEN_LEN};
pub use error::{AuthError, AuthErrorKind};
/// For other clients of identity providers (the login front door): errors and URLs as logged.
pub use fetch::{printable_url, without_url as transport_error};
pub use observe::{set_observer, AuthObserver, CallOutcome, TokenCache};
pub use principal::Principal;
pub use validator::{IssuerStatus, JwksStats, RouteTrust, TokenValidator};
