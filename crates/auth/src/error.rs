//! Why a token was refused, in a form the gateway maps to a status code, a metric label and an
//! RFC 6750 `error_description`. Descriptions are fixed strings: nothing from the token is echoed.

/// The reason a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// Not a well-formed JWT / token (bad base64, bad JSON, duplicate keys, wrong claim types).
    Malformed,
    /// `alg` missing, `none`, HMAC, or not in the issuer's allowlist.
    UnsupportedAlgorithm,
    /// A header the gateway does not understand and must not ignore (`crit`), or a bad `typ`.
    UnsupportedHeader,
    /// No key in the issuer's JWKS matches the token's `kid` (after a refetch).
    UnknownKey,
    /// The key named by `kid` cannot verify this `alg`.
    KeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `iss` is not one of the route's trusted issuers.
    UntrustedIssuer,
    /// `aud` does not contain the route's resource URL (or an accepted extra audience).
    WrongAudience,
    /// `exp` is in the past (beyond leeway).
    Expired,
    /// `nbf` is in the future (beyond leeway).
    NotYetValid,
    /// `iat` is in the future (beyond leeway).
    IssuedInFuture,
    /// A required claim is absent.
    MissingClaim,
    /// The introspection endpoint says the token is not active.
    Inactive,
    /// The issuer's signing keys cannot be obtained (never fetched, or stale beyond the window).
    KeysUnavailable,
    /// The introspection endpoint is down, slow or answering errors.
    IdpUnavailable,
    /// This issuer's introspection calls are all in flight (`introspection.max_concurrent`) and
    /// no slot freed up within the short queue wait: load shed, the token was not judged.
    IntrospectionBusy,
    /// The token names a `kid` our keys lack, but they were fetched before the token could have
    /// existed and the unknown-`kid` cooldown forbids fetching again yet: it may be a key the
    /// IdP has just published, so we cannot call it unknown.
    UnknownKeyPending,
    /// The login front door revoked the token's family (a replayed code, a reused refresh
    /// token, a user the IdP no longer lets in, or RFC 7009 revocation).
    Revoked,
    /// Whether the token was revoked cannot be learnt (the login store is unreachable).
    RevocationUnavailable,
}

impl AuthErrorKind {
    /// A short, stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthErrorKind::Malformed => "malformed_token",
            AuthErrorKind::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthErrorKind::UnsupportedHeader => "unsupported_header",
            AuthErrorKind::UnknownKey => "unknown_key",
            AuthErrorKind::KeyMismatch => "key_mismatch",
            AuthErrorKind::BadSignature => "bad_signature",
            AuthErrorKind::UntrustedIssuer => "untrusted_issuer",
            AuthErrorKind::WrongAudience => "wrong_audience",
            AuthErrorKind::Expired => "expired",
            AuthErrorKind::NotYetValid => "not_yet_valid",
            AuthErrorKind::IssuedInFuture => "issued_in_future",
            AuthErrorKind::MissingClaim => "missing_claim",
            AuthErrorKind::Inactive => "inactive",
            AuthErrorKind::KeysUnavailable => "keys_unavailable",
            AuthErrorKind::IdpUnavailable => "idp_unavailable",
            AuthErrorKind::IntrospectionBusy => "introspection_busy",
            AuthErrorKind::UnknownKeyPending => "unknown_key_pending",
            AuthErrorKind::Revoked => "token_revoked",
            AuthErrorKind::RevocationUnavailable => "revocation_unavailable",
        }
    }

    /// A human sentence for `WWW-Authenticate: error_description` and error bodies.
    pub fn description(self) -> &'static str {
        match self {
            AuthErrorKind::Malformed => "the access token is malformed",
            AuthErrorKind::UnsupportedAlgorithm => "the token's signing algorithm is not accepted",
            AuthErrorKind::UnsupportedHeader => "the token's header is not accepted",
            AuthErrorKind::UnknownKey => "the token's signing key is unknown",
            AuthErrorKind::KeyMismatch => "the token's signing key does not match its algorithm",
            AuthErrorKind::BadSignature => "the token's signature is invalid",
            AuthErrorKind::UntrustedIssuer => "the token's issuer is not trusted for this resource",
            AuthErrorKind::WrongAudience => "the token was not issued for this resource",
            AuthErrorKind::Expired => "the token has expired",
            AuthErrorKind::NotYetValid => "the token is not valid yet",
            AuthErrorKind::IssuedInFuture => "the token was issued in the future",
            AuthErrorKind::MissingClaim => "the token lacks a required claim",
            AuthErrorKind::Inactive => "the token is not active",
            AuthErrorKind::KeysUnavailable => "the issuer's signing keys are unavailable",
            AuthErrorKind::IdpUnavailable => "the identity provider is unavailable",
            AuthErrorKind::IntrospectionBusy => "too many tokens are being checked; retry later",
            AuthErrorKind::UnknownKeyPending => {
                "the token's signing key is not known yet; retry later"
            }
            AuthErrorKind::Revoked => "the token has been revoked",
            AuthErrorKind::RevocationUnavailable => {
                "whether the token is revoked cannot be checked; retry later"
            }
        }
    }

    /// True when the failure is ours or the IdP's, not the token's: answer 503, never 401.
    pub fn is_unavailable(self) -> bool {
        matches!(
            self,
            AuthErrorKind::KeysUnavailable
                | AuthErrorKind::IdpUnavailable
                | AuthErrorKind::IntrospectionBusy
                | AuthErrorKind::UnknownKeyPending
                | AuthErrorKind::RevocationUnavailable
        )
    }
}

/// A refused token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", kind.description())]
pub struct AuthError {
    pub kind: AuthErrorKind,
}

impl From<AuthErrorKind> for AuthError {
    fn from(kind: AuthErrorKind) -> Self {
        AuthError { kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailability_is_a_503() {
        assert!(AuthErrorKind::KeysUnavailable.is_unavailable());
        assert!(AuthErrorKind::IdpUnavailable.is_unavailable());
        // Load shedding and a possibly just-published key say "retry later", never "bad token".
        assert!(AuthErrorKind::IntrospectionBusy.is_unavailable());
        assert!(AuthErrorKind::UnknownKeyPending.is_unavailable());
        assert!(!AuthErrorKind::UnknownKey.is_unavailable());
        assert!(!AuthErrorKind::BadSignature.is_unavailable());
        assert!(!AuthErrorKind::Inactive.is_unavailable());
    }

    #[test]
    fn descriptions_are_safe_inside_a_quoted_header_parameter() {
        use AuthErrorKind::*;
        for k in [
            Malformed,
            UnsupportedAlgorithm,
            UnsupportedHeader,
            UnknownKey,
            KeyMismatch,
            BadSignature,
            UntrustedIssuer,
            WrongAudience,
            Expired,
            NotYetValid,
            IssuedInFuture,
            MissingClaim,
            Inactive,
            KeysUnavailable,
            IdpUnavailable,
            IntrospectionBusy,
            UnknownKeyPending,
        ] {
            assert!(
                k.description()
                    .chars()
                    .all(|c| c.is_ascii() && c != '"' && c != '\\'),
                "{k:?}"
            );
            assert!(k
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
