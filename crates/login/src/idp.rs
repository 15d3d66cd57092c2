//! The upstream OpenID Connect provider users sign in with: discovery, the authorize redirect,
//! the code exchange with ID-token checks, and the refresh that re-checks a user. (Placeholder:
//! being written.)

use mcpgate_config::UpstreamIdp;
use url::Url;

/// Who signed in at the IdP, from its verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// From the configured groups claim.
    pub groups: Vec<String>,
    /// Every claim of the ID token, for `require_claims`.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A completed sign-in at the IdP.
#[derive(Debug, Clone)]
pub struct IdpLogin {
    pub user: User,
    /// The IdP's refresh token, kept server-side only to re-check the user at each refresh.
    pub refresh_token: Option<String>,
}

/// Why the IdP step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct IdpError {
    /// Stable snake_case reason.
    pub reason: &'static str,
    pub detail: String,
}

/// The values one authorize round trip to the IdP is bound to.
#[derive(Debug, Clone)]
pub struct IdpRequest<'a> {
    /// The front door's callback URL registered at the IdP.
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    /// PKCE S256 challenge of the front door's own verifier.
    pub code_challenge: &'a str,
}

pub struct UpstreamProvider {
    _config: UpstreamIdp,
}

impl UpstreamProvider {
    pub fn new(config: &UpstreamIdp) -> Result<UpstreamProvider, String> {
        Ok(UpstreamProvider {
            _config: config.clone(),
        })
    }

    /// Where to send the user's browser (discovers the provider on first use).
    pub async fn authorize_url(&self, _req: &IdpRequest<'_>) -> Result<Url, IdpError> {
        Err(unavailable())
    }

    /// RFC 9207: the `iss` of the callback, when sent (or required by the provider's metadata).
    pub async fn check_callback_issuer(&self, _iss: Option<&str>) -> Result<(), IdpError> {
        Err(unavailable())
    }

    /// Exchanges the callback's code and verifies the ID token (signature, iss, aud, exp, nonce).
    pub async fn redeem(
        &self,
        _req: &IdpRequest<'_>,
        _code: &str,
        _code_verifier: &str,
    ) -> Result<IdpLogin, IdpError> {
        Err(unavailable())
    }

    /// Refreshes at the IdP: the user is still who they were and still allowed to sign in.
    pub async fn recheck(&self, _refresh_token: &str) -> Result<IdpLogin, IdpError> {
        Err(unavailable())
    }
}

fn unavailable() -> IdpError {
    IdpError {
        reason: "idp_unavailable",
        detail: "not implemented yet".into(),
    }
}
