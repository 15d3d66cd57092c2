//! The upstream OpenID Connect provider users sign in with: discovery (cached, issuer checked
//! exactly), the authorize redirect, the RFC 9207 callback issuer check, the code exchange with
//! the ID-token checks of OpenID Connect Core §3.1.3.7, and the refresh that re-checks a user.
//! Every failure fails closed with one stable `reason`.

mod discovery;
mod http;
mod id_token;
mod keys;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcpgate_config::{Algorithm, UpstreamIdp};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use url::Url;

use discovery::Metadata;
use http::TokenAnswer;
use id_token::Expected;
use mcpgate_auth::keys::VerifyKey;

/// Metadata is re-fetched this often (endpoints and the iss flag rarely change).
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// After a failed fetch, callers within this window get the failure (or the stale copy) instead
/// of each waiting on the IdP again; then the next caller retries.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);
/// Metadata older than this is not served when the IdP cannot be reached.
const METADATA_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// The JWKS is re-fetched this often.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` triggers at most one extra JWKS fetch per this window (the IdP rotated its
/// key; a flood of tokens with unknown kids cannot hammer the IdP through us).
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);
/// A failed periodic JWKS refresh keeps the old keys and is retried after this.
const JWKS_RETRY: Duration = Duration::from_secs(10);

/// Who signed in at the IdP, from its verified ID token (or, on a refresh without one, its
/// userinfo endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub sub: String,
    pub email: Option<String>,
    /// `true` only for a JSON `true` or the string `"true"` (some IdPs send strings).
    pub email_verified: bool,
    pub name: Option<String>,
    /// From the configured groups claim (a string or an array of strings).
    pub groups: Vec<String>,
    /// Every claim of the ID token (or userinfo answer), for `require_claims`.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A completed sign-in (or re-check) at the IdP.
#[derive(Clone)]
pub struct IdpLogin {
    pub user: User,
    /// The IdP's refresh token, kept server-side only to re-check the user at each refresh.
    /// From [`UpstreamProvider::recheck`]: the rotated token if the IdP sent one, else `None`
    /// (keep using the previous one).
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for IdpLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpLogin")
            .field("user", &self.user)
            .field(
                "refresh_token",
                &self.refresh_token.as_deref().map(short_hash),
            )
            .finish()
    }
}

/// Why the IdP step failed.
///
/// Reasons: `idp_unavailable` (unreachable, 5xx, garbage, or a refresh the user cannot be
/// re-checked from), `idp_metadata_invalid` (discovery document wrong, e.g. another issuer),
/// `idp_issuer_mismatch` (RFC 9207 callback `iss`), `idp_code_rejected` (the token endpoint
/// refused the code), `id_token_invalid`, `id_token_nonce_mismatch`, `idp_user_revoked`
/// (refresh answered `invalid_grant`), `idp_subject_changed` ([`UpstreamProvider::recheck_subject`]).
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

/// The OpenID Connect client of the front door, for one configured provider. Cheap to share
/// (`Arc`); discovery and the JWKS are fetched on first use and cached.
pub struct UpstreamProvider {
    config: UpstreamIdp,
    http: reqwest::Client,
    discovery: Url,
    metadata: tokio::sync::Mutex<MetadataSlot>,
    keys: tokio::sync::Mutex<KeySlot>,
}

#[derive(Default)]
struct MetadataSlot {
    current: Option<(Arc<Metadata>, Instant)>,
    failure: Option<(IdpError, Instant)>,
}

#[derive(Default)]
struct KeySlot {
    /// The `jwks_uri` the keys came from (a metadata change starts over).
    uri: Option<Url>,
    keys: Arc<Vec<VerifyKey>>,
    refresh_at: Option<Instant>,
    /// The last refetch an unknown `kid` caused.
    last_forced: Option<Instant>,
}

impl UpstreamProvider {
    /// Builds the client (reading `ca_file`); no network call yet.
    pub fn new(config: &UpstreamIdp) -> Result<UpstreamProvider, String> {
        Ok(UpstreamProvider {
            http: http::client(config)?,
            discovery: discovery::discovery_url(&config.issuer)?,
            config: config.clone(),
            metadata: tokio::sync::Mutex::default(),
            keys: tokio::sync::Mutex::default(),
        })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Where to send the user's browser (discovers the provider on first use): the
    /// authorization endpoint with the code flow's parameters, PKCE S256, and the configured
    /// extra `params` (which configuration keeps from overriding ours).
    pub async fn authorize_url(&self, req: &IdpRequest<'_>) -> Result<Url, IdpError> {
        let meta = self.metadata().await?;
        let mut url = meta.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", req.redirect_uri)
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", req.state)
                .append_pair("nonce", req.nonce)
                .append_pair("code_challenge", req.code_challenge)
                .append_pair("code_challenge_method", "S256");
            for (k, v) in &self.config.params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// RFC 9207 §2.4: the callback's `iss`, when sent, must be the issuer exactly; when the
    /// provider's metadata promises it, it must be sent (a mix-up attack strips it).
    pub async fn check_callback_issuer(&self, iss: Option<&str>) -> Result<(), IdpError> {
        let meta = self.metadata().await?;
        match iss {
            Some(iss) if iss == self.config.issuer => Ok(()),
            Some(_) => Err(issuer_mismatch("the callback's iss is another issuer")),
            None if meta.iss_parameter_supported => Err(issuer_mismatch(
                "the provider sends iss with every response, this callback has none",
            )),
            None => Ok(()),
        }
    }

    /// Exchanges the callback's code (RFC 6749 §4.1.3, PKCE RFC 7636 §4.5) and verifies the ID
    /// token (signature, iss, aud/azp, exp/iat, nonce). Keeps the IdP's refresh token if one
    /// came back.
    pub async fn redeem(
        &self,
        req: &IdpRequest<'_>,
        code: &str,
        code_verifier: &str,
    ) -> Result<IdpLogin, IdpError> {
        let meta = self.metadata().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", req.redirect_uri),
            ("code_verifier", code_verifier),
        ];
        let body = match self.token_request(&meta, &form).await? {
            TokenAnswer::Issued(body) => body,
            TokenAnswer::Refused(error) => {
                tracing::info!(code = %short_hash(code), %error, "the IdP refused the code");
                return Err(IdpError {
                    reason: "idp_code_rejected",
                    detail: format!("the IdP refused the code: {error}"),
                });
            }
        };
        let Some(Value::String(token)) = body.get("id_token") else {
            return Err(id_token::invalid("the token response has no id_token"));
        };
        let claims = self.verify_id_token(&meta, token, Some(req.nonce)).await?;
        Ok(IdpLogin {
            user: id_token::user(claims, &self.config.groups_claim)?,
            refresh_token: text(&body, "refresh_token"),
        })
    }

    /// Refreshes at the IdP (RFC 6749 §6): the grant still works, so the user is still allowed
    /// to sign in there. `invalid_grant` (user disabled, token revoked) → `idp_user_revoked`;
    /// any other failure → `idp_unavailable`.
    ///
    /// The user comes from the new ID token (verified, no nonce: OpenID Connect Core §12.2) or,
    /// when the IdP sends none, from its userinfo endpoint with the new access token. With
    /// neither, the user cannot be re-checked and this fails closed (`idp_unavailable`).
    /// **The caller must compare `user.sub` with the stored one** (§12.2) — or use
    /// [`UpstreamProvider::recheck_subject`].
    pub async fn recheck(&self, refresh_token: &str) -> Result<IdpLogin, IdpError> {
        let meta = self.metadata().await?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let body = match self.token_request(&meta, &form).await? {
            TokenAnswer::Issued(body) => body,
            TokenAnswer::Refused(error) if error == "invalid_grant" => {
                return Err(IdpError {
                    reason: "idp_user_revoked",
                    detail: "the IdP refused the refresh token (user disabled or grant revoked)"
                        .into(),
                })
            }
            TokenAnswer::Refused(error) => {
                return Err(unavailable(format!("the IdP refused the refresh: {error}")))
            }
        };
        let claims = match body.get("id_token") {
            Some(Value::String(token)) => self.verify_id_token(&meta, token, None).await?,
            Some(_) => return Err(id_token::invalid("id_token is not a string")),
            None => self.userinfo(&meta, &body).await?,
        };
        Ok(IdpLogin {
            user: id_token::user(claims, &self.config.groups_claim)?,
            refresh_token: text(&body, "refresh_token"),
        })
    }

    /// [`UpstreamProvider::recheck`], requiring the same `sub` as at sign-in
    /// (`idp_subject_changed` otherwise).
    pub async fn recheck_subject(
        &self,
        refresh_token: &str,
        sub: &str,
    ) -> Result<IdpLogin, IdpError> {
        let login = self.recheck(refresh_token).await?;
        if login.user.sub != sub {
            return Err(IdpError {
                reason: "idp_subject_changed",
                detail: "the refreshed identity is another user".into(),
            });
        }
        Ok(login)
    }

    /// POSTs to the token endpoint with the client's authentication: `client_secret_basic`
    /// when a secret is configured, else a public client's `client_id` in the body.
    async fn token_request(
        &self,
        meta: &Metadata,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, IdpError> {
        let mut form = form.to_vec();
        let basic = match &self.config.client_secret {
            Some(secret) => Some((self.config.client_id.as_str(), secret.expose())),
            None => {
                form.push(("client_id", &self.config.client_id));
                None
            }
        };
        http::post_token(
            &self.http,
            &meta.token_endpoint,
            &form,
            basic,
            self.config.timeout,
        )
        .await
        .map_err(unavailable)
    }

    /// OpenID Connect Core §5.3 with the refresh answer's access token.
    async fn userinfo(
        &self,
        meta: &Metadata,
        body: &Map<String, Value>,
    ) -> Result<Map<String, Value>, IdpError> {
        let Some(endpoint) = &meta.userinfo_endpoint else {
            return Err(unavailable(
                "the refresh answer has no ID token and the IdP no userinfo endpoint: \
                 the user cannot be re-checked",
            ));
        };
        let Some(access_token) = text(body, "access_token") else {
            return Err(unavailable("the refresh answer has no access token"));
        };
        http::get_json(
            &self.http,
            endpoint,
            Some(&access_token),
            self.config.timeout,
        )
        .await
        .map_err(unavailable)
    }

    /// Signature (JWKS, re-fetched once on an unknown kid) then the claims.
    async fn verify_id_token(
        &self,
        meta: &Metadata,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, IdpError> {
        let parsed = id_token::parse(token)?;
        let kid = parsed.kid.as_deref();
        let keys = self.keys_for(meta, kid, parsed.alg).await?;
        let candidates = keys::candidates(&keys, kid, parsed.alg);
        if candidates.is_empty() {
            return Err(id_token::invalid(format!(
                "no key in the IdP's JWKS for kid {:?} and {:?}",
                kid.map(|k| k.chars().take(64).collect::<String>()),
                parsed.alg
            )));
        }
        let message = parsed.signing_input.as_bytes();
        if !candidates
            .iter()
            .any(|k| k.verify(parsed.alg, message, &parsed.signature))
        {
            return Err(id_token::invalid("bad signature"));
        }
        let expected = Expected {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            nonce,
            now: now_secs(),
        };
        id_token::check_claims(&parsed.claims, &expected)?;
        Ok(parsed.claims)
    }

    /// The discovered metadata: cached for [`METADATA_TTL`]; on failure the stale copy (up to
    /// [`METADATA_MAX_STALE`]) if the IdP is merely unreachable, and a failure is remembered
    /// only for [`RETRY_AFTER_FAILURE`].
    async fn metadata(&self) -> Result<Arc<Metadata>, IdpError> {
        // One fetch at a time: concurrent sign-ins wait for it instead of stampeding the IdP.
        let mut slot = self.metadata.lock().await;
        let now = Instant::now();
        if let Some((meta, at)) = &slot.current {
            if now.duration_since(*at) < METADATA_TTL {
                return Ok(meta.clone());
            }
        }
        if let Some((error, at)) = &slot.failure {
            if now.duration_since(*at) < RETRY_AFTER_FAILURE {
                return stale_or(&slot, error.clone(), now);
            }
        }
        match self.fetch_metadata().await {
            Ok(meta) => {
                let meta = Arc::new(meta);
                slot.current = Some((meta.clone(), now));
                slot.failure = None;
                Ok(meta)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.config.issuer, %error, "OpenID discovery failed");
                slot.failure = Some((error.clone(), now));
                if error.reason == "idp_metadata_invalid" {
                    // A wrong document is not an outage: stop using the old one.
                    slot.current = None;
                    return Err(error);
                }
                stale_or(&slot, error, now)
            }
        }
    }

    async fn fetch_metadata(&self) -> Result<Metadata, IdpError> {
        let doc = http::get_json(&self.http, &self.discovery, None, self.config.timeout)
            .await
            .map_err(|e| unavailable(format!("discovery: {e}")))?;
        discovery::parse(&self.config.issuer, &doc).map_err(|detail| IdpError {
            reason: "idp_metadata_invalid",
            detail,
        })
    }

    /// The JWKS, fetched on first use, every [`JWKS_TTL`], on a `jwks_uri` change, and once
    /// more for an unknown `kid` (at most once per [`UNKNOWN_KID_REFETCH`]).
    async fn keys_for(
        &self,
        meta: &Metadata,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<Vec<VerifyKey>>, IdpError> {
        let mut slot = self.keys.lock().await;
        let now = Instant::now();
        let due =
            slot.uri.as_ref() != Some(&meta.jwks_uri) || slot.refresh_at.is_none_or(|at| now >= at);
        if due {
            self.refresh_keys(&mut slot, &meta.jwks_uri, now).await?;
        }
        let unknown = kid.is_some() && keys::candidates(&slot.keys, kid, alg).is_empty();
        let may_refetch = slot
            .last_forced
            .is_none_or(|at| now.duration_since(at) >= UNKNOWN_KID_REFETCH);
        if unknown && may_refetch && !due {
            slot.last_forced = Some(now);
            self.refresh_keys(&mut slot, &meta.jwks_uri, now).await?;
        }
        Ok(slot.keys.clone())
    }

    async fn refresh_keys(
        &self,
        slot: &mut KeySlot,
        uri: &Url,
        now: Instant,
    ) -> Result<(), IdpError> {
        if slot.uri.as_ref() != Some(uri) {
            *slot = KeySlot {
                uri: Some(uri.clone()),
                ..KeySlot::default()
            };
        }
        let fetched = http::get_json(&self.http, uri, None, self.config.timeout)
            .await
            .and_then(|doc| keys::parse_jwks(&doc));
        match fetched {
            Ok(keys) => {
                slot.keys = Arc::new(keys);
                slot.refresh_at = Some(now + JWKS_TTL);
                Ok(())
            }
            // Keep verifying with the keys we have; try again soon.
            Err(error) if !slot.keys.is_empty() => {
                tracing::warn!(issuer = %self.config.issuer, %error, "JWKS refresh failed; keeping the previous keys");
                slot.refresh_at = Some(now + JWKS_RETRY);
                Ok(())
            }
            Err(error) => Err(unavailable(format!("JWKS: {error}"))),
        }
    }
}

/// The stale metadata, if young enough, else `error`.
fn stale_or(slot: &MetadataSlot, error: IdpError, now: Instant) -> Result<Arc<Metadata>, IdpError> {
    match &slot.current {
        Some((meta, at)) if now.duration_since(*at) < METADATA_MAX_STALE => Ok(meta.clone()),
        _ => Err(error),
    }
}

fn unavailable(detail: impl Into<String>) -> IdpError {
    IdpError {
        reason: "idp_unavailable",
        detail: detail.into(),
    }
}

fn issuer_mismatch(detail: &str) -> IdpError {
    IdpError {
        reason: "idp_issuer_mismatch",
        detail: detail.into(),
    }
}

fn text(body: &Map<String, Value>, name: &str) -> Option<String> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// What logs may name a code or token by: 8 hex digits of its SHA-256.
fn short_hash(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..4])
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
