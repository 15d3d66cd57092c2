//! How a failed authentication is answered (RFC 6750 §3 and the MCP authorization spec): 400 for a
//! malformed credential, 401 with a challenge pointing at the Protected Resource Metadata for a
//! missing or refused token, 503 with `Retry-After` when the identity provider cannot be asked.

use mcpgate_auth::AuthError;
use mcpgate_http::challenge::bearer_challenge;
use mcpgate_http::codes;

use crate::answer::{AnswerKind, LocalAnswer};

/// Why the caller is not authenticated.
#[derive(Debug)]
pub enum AuthFailure {
    /// No bearer token; carries the route's challenge (metadata URL and baseline scopes).
    Missing(String),
    /// An `Authorization` header that is not a well-formed bearer credential.
    Malformed,
    /// The token was refused; carries the token's log-safe hash.
    Invalid(AuthError, String),
}

/// Seconds a client should wait before retrying when the identity provider is unavailable.
const RETRY_AFTER_SECONDS: &str = "5";

impl AuthFailure {
    pub fn answer(self, metadata_url: &str) -> LocalAnswer {
        let answer = match &self {
            AuthFailure::Malformed => {
                let message = "malformed Authorization header";
                LocalAnswer::error(
                    400,
                    codes::INVALID_REQUEST,
                    "invalid_request",
                    message,
                    None,
                )
                .with_header(
                    "www-authenticate",
                    bearer_challenge(metadata_url, None, Some("invalid_request"), Some(message)),
                )
            }
            AuthFailure::Missing(challenge) => LocalAnswer::error(
                401,
                codes::AUTHENTICATION_REQUIRED,
                "missing_token",
                "authentication required",
                None,
            )
            .with_header("www-authenticate", challenge.clone()),
            AuthFailure::Invalid(e, _) if e.kind.is_unavailable() => LocalAnswer::error(
                503,
                codes::UNAVAILABLE,
                e.kind.as_str(),
                "the identity provider is unavailable; retry later",
                None,
            )
            .with_header("retry-after", RETRY_AFTER_SECONDS),
            AuthFailure::Invalid(e, _) => {
                let description = e.kind.description();
                LocalAnswer::error(
                    401,
                    codes::AUTHENTICATION_REQUIRED,
                    e.kind.as_str(),
                    description,
                    None,
                )
                .with_header(
                    "www-authenticate",
                    bearer_challenge(metadata_url, None, Some("invalid_token"), Some(description)),
                )
            }
        };
        let mut answer = answer.counted_as(AnswerKind::AuthFailure);
        if let AuthFailure::Invalid(_, hash) = self {
            answer.token_hash = Some(hash);
        }
        answer
    }
}
