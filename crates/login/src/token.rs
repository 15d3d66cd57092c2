//! The client side: `/oauth/token` (authorization code with PKCE, refresh with rotation and
//! reuse detection), `/oauth/revoke` (RFC 7009) and `/oauth/register` (RFC 7591).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;

use crate::clients::Client;
use crate::exchange::{LoginRequest, LoginResponse, Params};
use crate::policy::{check_login, grant_scopes};
use crate::records::{CodeRecord, Family, RefreshRecord, UserRecord};
use crate::secrets::{hash, pkce_matches, random_secret, short_hash};
use crate::service::LoginService;
use crate::signer::{unix_now, AccessClaims};
use crate::store::Kind;
use crate::throttle::Budget;

/// A refusal at the token endpoint: RFC 6749 §5.2.
struct Refusal {
    status: u16,
    error: &'static str,
    description: &'static str,
    reason: &'static str,
}

fn refuse(error: &'static str, description: &'static str, reason: &'static str) -> Refusal {
    Refusal {
        status: 400,
        error,
        description,
        reason,
    }
}

impl From<Refusal> for LoginResponse {
    fn from(r: Refusal) -> LoginResponse {
        let resp = LoginResponse::oauth_error(r.status, r.error, r.description).refused(r.reason);
        if r.status == 401 {
            return resp.with_header("www-authenticate", "Basic realm=\"mcpgate\"".into());
        }
        resp
    }
}

fn store_refusal() -> Refusal {
    Refusal {
        status: 503,
        error: "temporarily_unavailable",
        description: "the login store cannot be reached",
        reason: "login_store_unavailable",
    }
}

impl LoginService {
    pub(crate) async fn token(&self, req: &LoginRequest) -> LoginResponse {
        let form = req.form();
        let answer = match self.authenticate_client(req, &form).await {
            Err(r) => Err(r),
            Ok(client) => match form.single("grant_type") {
                Ok(Some("authorization_code")) => self.redeem_code(&client, &form).await,
                Ok(Some("refresh_token")) => self.refresh(&client, &form).await,
                Ok(Some(_)) => Err(refuse(
                    "unsupported_grant_type",
                    "authorization_code and refresh_token are served",
                    "unsupported_grant_type",
                )),
                _ => Err(refuse(
                    "invalid_request",
                    "grant_type is missing or repeated",
                    "invalid_request",
                )),
            },
        };
        answer.unwrap_or_else(LoginResponse::from)
    }

    /// RFC 6749 §2.3.1: HTTP Basic (form-urlencoded id and secret), or `client_id` (and
    /// `client_secret`) in the body — not both. A public client sends only its id.
    async fn authenticate_client(
        &self,
        req: &LoginRequest,
        form: &Params,
    ) -> Result<Client, Refusal> {
        let bad = || Refusal {
            status: 401,
            error: "invalid_client",
            description: "client authentication failed",
            reason: "client_auth_failed",
        };
        let basic = req.authorization.as_deref().and_then(basic_credentials);
        let body_id = form.single("client_id").map_err(|_| bad())?;
        let body_secret = form.single("client_secret").map_err(|_| bad())?;
        let (id, secret) = match (&basic, body_id) {
            (Some((id, secret)), None | Some(_)) if body_secret.is_none() => {
                if body_id.is_some_and(|b| b != id) {
                    return Err(bad());
                }
                (id.as_str(), Some(secret.as_str()))
            }
            (None, Some(id)) => (id, body_secret),
            _ => return Err(bad()),
        };
        let client = match self.clients.find(id).await {
            Ok(c) => c,
            Err(e) if e.reason() == "login_store_unavailable" => return Err(store_refusal()),
            Err(_) => return Err(bad()),
        };
        if !client.secret_matches(secret) {
            return Err(bad());
        }
        Ok(client)
    }

    /// RFC 6749 §4.1.3 with PKCE: single use, same client, same redirect URI, the verifier.
    /// A replayed code revokes everything it issued (§4.1.2).
    async fn redeem_code(&self, client: &Client, form: &Params) -> Result<LoginResponse, Refusal> {
        let invalid = |reason| {
            refuse(
                "invalid_grant",
                "the code is invalid, expired or already used",
                reason,
            )
        };
        let code = form
            .single("code")
            .ok()
            .flatten()
            .ok_or_else(|| invalid("code_missing"))?;
        let key = hash(code);
        let record: Option<CodeRecord> = self
            .records
            .take(Kind::Code, &key)
            .await
            .map_err(|_| store_refusal())?;
        let Some(record) = record else {
            let used: Option<String> = self
                .records
                .get(Kind::UsedCode, &key)
                .await
                .map_err(|_| store_refusal())?;
            if let Some(family) = used {
                tracing::warn!(code_hash = %short_hash(code), "authorization code replayed: revoking what it issued");
                self.revoke_family(&family).await;
                return Err(invalid("code_replayed"));
            }
            return Err(invalid("code_unknown"));
        };
        let g = &record.grant;
        if g.client.id != client.id {
            return Err(invalid("code_client_mismatch"));
        }
        if form.single("redirect_uri").ok().flatten() != Some(g.redirect_uri.as_str()) {
            return Err(invalid("redirect_uri_mismatch"));
        }
        let verifier = form
            .single("code_verifier")
            .ok()
            .flatten()
            .unwrap_or_default();
        if !pkce_matches(verifier, &g.code_challenge) {
            return Err(invalid("pkce_mismatch"));
        }
        if let Ok(Some(resource)) = form.single("resource") {
            if resource.trim_end_matches('/') != g.resource {
                return Err(refuse(
                    "invalid_target",
                    "resource differs from the authorization request",
                    "resource_mismatch",
                ));
            }
        }
        let family = Family {
            id: random_secret(),
            client_id: client.id.clone(),
            resource: g.resource.clone(),
            scope: record.scope.clone(),
            user: record.user.clone(),
            // Without refresh tokens for this client there is nothing to re-check later.
            idp_refresh: record.idp_refresh.clone().filter(|_| g.client.refresh),
        };
        let remember = self.config.access_ttl.max(crate::authorize::CODE_TTL * 10);
        self.records
            .put(Kind::UsedCode, &key, &family.id, remember)
            .await
            .map_err(|_| store_refusal())?;
        self.issue_tokens(&family, &family.scope, "token_issued")
            .await
    }

    /// RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1): the old token is spent; presenting a spent
    /// one again means it was stolen, so the whole family goes (RFC 9700 §4.14.2). Each refresh
    /// re-checks the user at the IdP and against the login policy.
    async fn refresh(&self, client: &Client, form: &Params) -> Result<LoginResponse, Refusal> {
        let invalid = |reason| {
            refuse(
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
                reason,
            )
        };
        let token = form
            .single("refresh_token")
            .ok()
            .flatten()
            .ok_or_else(|| invalid("refresh_missing"))?;
        let key = hash(token);
        let record: Option<RefreshRecord> = self
            .records
            .take(Kind::Refresh, &key)
            .await
            .map_err(|_| store_refusal())?;
        let Some(record) = record else {
            let used: Option<String> = self
                .records
                .get(Kind::UsedRefresh, &key)
                .await
                .map_err(|_| store_refusal())?;
            if let Some(family) = used {
                tracing::warn!(token_hash = %short_hash(token), "refresh token reused: revoking its family");
                self.revoke_family(&family).await;
                return Err(invalid("refresh_reused"));
            }
            return Err(invalid("refresh_unknown"));
        };
        if record.client_id != client.id {
            self.revoke_family(&record.family).await;
            return Err(invalid("refresh_client_mismatch"));
        }
        let family: Option<Family> = self
            .records
            .get(Kind::Family, &record.family)
            .await
            .map_err(|_| store_refusal())?;
        let Some(mut family) = family else {
            return Err(invalid("refresh_revoked"));
        };
        let user = match self.recheck_user(&family).await {
            Ok(u) => u,
            Err(RecheckFailure::Unavailable) => {
                // Not the client's fault: give its token back so that it can retry.
                let _ = self
                    .records
                    .put(Kind::Refresh, &key, &record, self.config.refresh_ttl)
                    .await;
                return Err(Refusal {
                    status: 503,
                    error: "temporarily_unavailable",
                    description: "the identity provider cannot be reached",
                    reason: "idp_unavailable",
                });
            }
            Err(RecheckFailure::Refused(reason)) => {
                self.revoke_family(&family.id).await;
                return Err(invalid(reason));
            }
        };
        let granted: Vec<String> = family
            .scope
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        let requested = form.single("scope").ok().flatten();
        if requested.is_some_and(|r| {
            r.split_ascii_whitespace()
                .any(|s| !granted.iter().any(|g| g == s))
        }) {
            return Err(refuse(
                "invalid_scope",
                "a refresh may only narrow the granted scope",
                "scope_widened",
            ));
        }
        let scope = grant_scopes(&self.config.grants, &user.0, &granted, requested).join(" ");
        family.user = UserRecord::from(&user.0);
        family.idp_refresh = user.1.or(family.idp_refresh);
        self.records
            .put(Kind::UsedRefresh, &key, &family.id, self.config.refresh_ttl)
            .await
            .map_err(|_| store_refusal())?;
        self.issue_tokens(&family, &scope, "token_refreshed").await
    }

    /// The user as the IdP sees them now, still allowed to log in, still the same `sub`.
    async fn recheck_user(
        &self,
        family: &Family,
    ) -> Result<(crate::idp::User, Option<String>), RecheckFailure> {
        let Some(idp_refresh) = &family.idp_refresh else {
            return Err(RecheckFailure::Refused("idp_refresh_missing"));
        };
        let login = match self.idp.recheck(idp_refresh).await {
            Ok(l) => l,
            Err(e) if e.reason == "idp_unavailable" => return Err(RecheckFailure::Unavailable),
            Err(e) => return Err(RecheckFailure::Refused(e.reason)),
        };
        if login.user.sub != family.user.sub {
            return Err(RecheckFailure::Refused("idp_subject_changed"));
        }
        check_login(&self.config.policy, &login.user).map_err(RecheckFailure::Refused)?;
        Ok((login.user, login.refresh_token))
    }

    /// An access token, and a refresh token when the IdP gave us a way to re-check the user.
    async fn issue_tokens(
        &self,
        family: &Family,
        scope: &str,
        event: &'static str,
    ) -> Result<LoginResponse, Refusal> {
        let u = &family.user;
        let claims = AccessClaims {
            sub: &u.sub,
            audience: &family.resource,
            client_id: &family.client_id,
            scope,
            email: u.email.as_deref(),
            email_verified: u.email_verified,
            name: u.name.as_deref(),
            groups: &u.groups,
            family: &family.id,
        };
        let ttl = self.config.access_ttl;
        let access = self.signer.access_token(&claims, ttl).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            Refusal {
                status: 500,
                error: "server_error",
                description: "cannot sign a token",
                reason: "signing_failed",
            }
        })?;
        let keep = self.config.refresh_ttl.max(ttl);
        self.records
            .put(Kind::Family, &family.id, family, keep)
            .await
            .map_err(|_| store_refusal())?;
        let mut body = json!({ "access_token": access, "token_type": "Bearer", "expires_in": ttl.as_secs(), "scope": scope });
        if family.idp_refresh.is_some() && !self.config.refresh_ttl.is_zero() {
            let refresh = random_secret();
            let record = RefreshRecord {
                family: family.id.clone(),
                client_id: family.client_id.clone(),
            };
            self.records
                .put(
                    Kind::Refresh,
                    &hash(&refresh),
                    &record,
                    self.config.refresh_ttl,
                )
                .await
                .map_err(|_| store_refusal())?;
            body["refresh_token"] = refresh.into();
        }
        Ok(LoginResponse::json(200, &body).counted(event))
    }

    /// Ends a family: its refresh tokens stop working and its access tokens are refused by
    /// routes that check [`LoginService::family_active`].
    async fn revoke_family(&self, family: &str) {
        if let Err(e) = self.records.delete(Kind::Family, family).await {
            tracing::error!(error = %e, "revoking a token family failed");
        }
    }

    /// Whether the family an access token names (`sid`) is still active.
    pub async fn family_active(&self, family: &str) -> Result<bool, crate::store::StoreError> {
        Ok(self
            .records
            .get::<serde_json::Value>(Kind::Family, family)
            .await?
            .is_some())
    }

    /// RFC 7009: the answer is 200 whatever the token was (§2.2), so it reveals nothing.
    pub(crate) async fn revoke(&self, req: &LoginRequest) -> LoginResponse {
        let form = req.form();
        let client = match self.authenticate_client(req, &form).await {
            Ok(c) => c,
            Err(r) => return r.into(),
        };
        let Ok(Some(token)) = form.single("token") else {
            return refuse("invalid_request", "token is required", "invalid_request").into();
        };
        let record: Option<RefreshRecord> = self
            .records
            .get(Kind::Refresh, &hash(token))
            .await
            .ok()
            .flatten();
        let family = match record {
            Some(r) => Some(r)
                .filter(|r| r.client_id == client.id)
                .map(|r| r.family),
            None => access_token_family(token, &client.id),
        };
        if let Some(f) = family {
            self.revoke_family(&f).await;
        }
        LoginResponse::json(200, &json!({})).counted("token_revoked")
    }

    pub(crate) async fn register(&self, req: &LoginRequest) -> LoginResponse {
        if !self.clients.dynamic_registration() {
            return LoginResponse::oauth_error(404, "not_found", "dynamic registration is off")
                .refused("registration_disabled");
        }
        if !self.throttle.allow(Budget::Register, req.client_ip).await {
            return LoginResponse::oauth_error(
                429,
                "too_many_requests",
                "too many registrations from this address",
            )
            .refused("registration_rate_limited");
        }
        let registered = match crate::register::register(&req.body, unix_now()) {
            Ok(r) => r,
            Err(e) => {
                return LoginResponse::oauth_error(400, e.error, &e.description)
                    .refused("registration_invalid")
            }
        };
        if self.clients.save_dynamic(&registered.client).await.is_err() {
            return store_refusal().into();
        }
        tracing::info!(client_id = %registered.client.id, "client registered dynamically");
        LoginResponse::json(201, &registered.answer).counted("client_registered")
    }
}

enum RecheckFailure {
    Unavailable,
    Refused(&'static str),
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// The family (`sid`) of one of our access tokens, if it was issued to `client_id`. The
/// signature is not checked: `sid` is a 256-bit secret, so naming one proves holding a token.
fn access_token_family(token: &str, client_id: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (claims.get("client_id")?.as_str()? == client_id)
        .then(|| claims.get("sid")?.as_str().map(str::to_owned))?
}
