//! The browser side of a login: `/oauth/authorize` checks the client's request and sends the
//! person to the IdP; `/oauth/callback` takes the IdP's answer and applies the login policy;
//! the consent page and its POST decide; the client gets its code at its redirect URI.

use std::time::Duration;

use crate::clients::Client;
use crate::exchange::{LoginRequest, LoginResponse, Params};
use crate::idp::{IdpRequest, User};
use crate::pages::{consent_page, error_page, ConsentView};
use crate::policy::{check_login, grant_scopes};
use crate::records::{CodeRecord, Grant, Pending, UserRecord};
use crate::secrets::{hash, is_valid_challenge, pkce_challenge, random_secret, same_secret};
use crate::service::{LoginRoute, LoginService};
use crate::store::Kind;
use crate::throttle::Budget;

/// A login may take this long from `/authorize` to the consent answer.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// RFC 6749 §4.1.2 recommends at most 10 minutes; a client redeems within seconds.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);

/// Where an error may safely go once client and redirect URI are known (RFC 6749 §4.1.2.1).
struct ClientRedirect<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl ClientRedirect<'_> {
    /// The redirect with `params`, the client's `state` and `iss` (RFC 9207 §2).
    fn with(&self, params: &[(&str, &str)]) -> LoginResponse {
        let Ok(mut url) = url::Url::parse(self.redirect_uri) else {
            return error_page(
                400,
                "redirect_uri_invalid",
                "The application's redirect address is not valid.",
            );
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(s) = self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", self.issuer);
        }
        LoginResponse::redirect(url.as_str())
    }

    fn error(&self, error: &str, description: &str, reason: &'static str) -> LoginResponse {
        self.with(&[("error", error), ("error_description", description)])
            .refused(reason)
    }
}

impl LoginService {
    pub(crate) async fn authorize(
        &self,
        req: &LoginRequest,
        routes: &[LoginRoute],
    ) -> LoginResponse {
        if !self.throttle.allow(Budget::Authorize, req.client_ip).await {
            return error_page(
                429,
                "login_rate_limited",
                "Too many sign-in attempts from your address. Wait a minute and try again.",
            );
        }
        let q = req.query_params();
        let (client, redirect_uri) = match self.client_and_redirect(&q).await {
            Ok(found) => found,
            Err(page) => return page,
        };
        let state = q.single("state").ok().flatten();
        let back = ClientRedirect {
            redirect_uri: &redirect_uri,
            state,
            issuer: &self.config.issuer,
        };
        let grant = match self.checked_grant(&q, client, &redirect_uri, routes) {
            Ok(g) => g,
            Err((error, description, reason)) => return back.error(error, &description, reason),
        };
        self.start_idp_login(grant).await
    }

    /// The client and its redirect URI, or a page: with either unknown, redirecting the
    /// error would make the front door an open redirector (RFC 6749 §4.1.2.1).
    async fn client_and_redirect(&self, q: &Params) -> Result<(Client, String), LoginResponse> {
        let bad = |reason, msg: &str| error_page(400, reason, msg);
        let (Ok(Some(id)), Ok(Some(redirect))) = (q.single("client_id"), q.single("redirect_uri"))
        else {
            return Err(bad(
                "invalid_request",
                "The application sent no (or a repeated) client_id or redirect_uri.",
            ));
        };
        let client = match self.clients.find(id).await {
            Ok(c) => c,
            Err(e) if e.reason() == "login_store_unavailable" => return Err(self.store_down()),
            Err(e) => {
                tracing::info!(reason = e.reason(), error = %e, "authorize: client refused");
                return Err(bad(
                    e.reason(),
                    "The application is not known to this sign-in service.",
                ));
            }
        };
        if !client.redirect_allowed(redirect) {
            return Err(bad(
                "redirect_uri_mismatch",
                "The application asked to return to an address it did not register.",
            ));
        }
        Ok((client, redirect.to_owned()))
    }

    /// The checks after client and redirect, in RFC 6749 §4.1.1 order, then PKCE (RFC 7636 /
    /// OAuth 2.1: S256 only) and the resource (RFC 8707: one of the routes).
    fn checked_grant(
        &self,
        q: &Params,
        client: Client,
        redirect_uri: &str,
        routes: &[LoginRoute],
    ) -> Result<Grant, (&'static str, String, &'static str)> {
        let one = |name: &str| {
            q.single(name)
                .map_err(|why| ("invalid_request", why, "invalid_request"))
        };
        if one("response_type")? != Some("code") {
            return Err((
                "unsupported_response_type",
                "only response_type=code is served".into(),
                "unsupported_response_type",
            ));
        }
        let challenge = one("code_challenge")?.filter(|c| is_valid_challenge(c));
        let Some(challenge) = challenge else {
            return Err((
                "invalid_request",
                "PKCE is required: send a S256 code_challenge".into(),
                "pkce_missing",
            ));
        };
        if one("code_challenge_method")? != Some("S256") {
            return Err((
                "invalid_request",
                "code_challenge_method must be S256".into(),
                "pkce_method_unsupported",
            ));
        }
        let Some(route) = LoginService::route_for(routes, one("resource")?) else {
            return Err((
                "invalid_target",
                "resource must name one of this gateway's MCP servers".into(),
                "resource_unknown",
            ));
        };
        Ok(Grant {
            client,
            redirect_uri: redirect_uri.to_owned(),
            state: one("state")?.map(str::to_owned),
            code_challenge: challenge.to_owned(),
            resource: route.resource.clone(),
            route: route.name.clone(),
            requested_scope: one("scope")?.map(str::to_owned),
        })
    }

    /// Stores the login under a fresh browser cookie and sends the person to the IdP with the
    /// front door's own state, nonce and PKCE verifier.
    async fn start_idp_login(&self, grant: Grant) -> LoginResponse {
        let login_id = random_secret();
        let pending = Pending {
            grant,
            idp_state: random_secret(),
            nonce: random_secret(),
            idp_verifier: random_secret(),
            user: None,
            idp_refresh: None,
            scope: None,
            csrf: None,
        };
        let (callback, challenge) = (self.callback_url(), pkce_challenge(&pending.idp_verifier));
        let idp_req = idp_request(&pending, &callback, &challenge);
        let url = match self.idp.authorize_url(&idp_req).await {
            Ok(url) => url,
            Err(e) => return self.idp_failed(&e),
        };
        if let Err(down) = self
            .keep(Kind::Pending, &hash(&login_id), &pending, LOGIN_TTL)
            .await
        {
            return down;
        }
        LoginResponse::redirect(url.as_str())
            .with_cookie(self.login_cookie(&login_id, LOGIN_TTL))
            .counted("login_started")
    }

    pub(crate) async fn callback(
        &self,
        req: &LoginRequest,
        routes: &[LoginRoute],
    ) -> LoginResponse {
        let Some((key, mut pending)) = self.pending(req).await else {
            return expired();
        };
        let q = req.query_params();
        let state = q.single("state").ok().flatten().unwrap_or_default();
        if !same_secret(state, &pending.idp_state) {
            return error_page(400, "login_state_mismatch", "This sign-in answer does not belong to the sign-in your browser started. Start again from your application.");
        }
        let back = ClientRedirect {
            redirect_uri: &pending.grant.redirect_uri,
            state: pending.grant.state.as_deref(),
            issuer: &self.config.issuer,
        };
        if let Ok(Some(error)) = q.single("error") {
            let _ = self.records.delete(Kind::Pending, &key).await;
            let error = if error == "access_denied" {
                "access_denied"
            } else {
                "server_error"
            };
            return back.error(
                error,
                "the identity provider did not sign the user in",
                "idp_refused",
            );
        }
        if let Err(e) = self
            .idp
            .check_callback_issuer(q.single("iss").ok().flatten())
            .await
        {
            return self.idp_failed(&e);
        }
        let Ok(Some(code)) = q.single("code") else {
            return error_page(
                400,
                "idp_code_missing",
                "The identity provider answered without a code.",
            );
        };
        let (callback, challenge) = (self.callback_url(), pkce_challenge(&pending.idp_verifier));
        let idp_req = idp_request(&pending, &callback, &challenge);
        let login = match self.idp.redeem(&idp_req, code, &pending.idp_verifier).await {
            Ok(l) => l,
            Err(e) => return self.idp_failed(&e),
        };
        if let Err(reason) = check_login(&self.config.policy, &login.user) {
            let _ = self.records.delete(Kind::Pending, &key).await;
            tracing::info!(reason, sub_hash = %crate::secrets::short_hash(&login.user.sub), "login refused by policy");
            return back.error("access_denied", reason, reason);
        }
        let Some(scope) = scopes_for(&self.config.grants, routes, &pending.grant, &login.user)
        else {
            return error_page(
                400,
                "resource_unknown",
                "The server this sign-in was for is no longer served here.",
            );
        };
        pending.user = Some(UserRecord::from(&login.user));
        pending.idp_refresh = login.refresh_token;
        pending.scope = Some(scope.join(" "));
        self.consent_or_code(key, pending, &scope).await
    }

    /// A remembered consent goes straight to the code; otherwise the consent page.
    async fn consent_or_code(
        &self,
        key: String,
        mut pending: Pending,
        scope: &[String],
    ) -> LoginResponse {
        let remembered = self
            .records
            .get::<bool>(Kind::Consent, &consent_key(&pending))
            .await;
        match remembered {
            Err(_) => return self.store_down(),
            Ok(Some(true)) => {
                let _ = self.records.delete(Kind::Pending, &key).await;
                return self.issue_code(pending).await;
            }
            Ok(_) => {}
        }
        let csrf = random_secret();
        pending.csrf = Some(csrf.clone());
        if let Err(down) = self.keep(Kind::Pending, &key, &pending, LOGIN_TTL).await {
            return down;
        }
        let user = pending
            .user
            .as_ref()
            .map(|u| u.email.clone().unwrap_or_else(|| u.sub.clone()))
            .unwrap_or_default();
        consent_page(&ConsentView {
            client: &pending.grant.client,
            redirect_uri: &pending.grant.redirect_uri,
            route: &pending.grant.route,
            resource: &pending.grant.resource,
            scopes: scope,
            user: &user,
            form_action: &self.paths.consent,
            csrf: &csrf,
        })
    }

    pub(crate) async fn consent(&self, req: &LoginRequest) -> LoginResponse {
        let form = req.form();
        let Some(login_id) = req.cookie(&self.cookie_name()) else {
            return expired();
        };
        // Taken, not read: one answer per consent page, and a failed CSRF check ends the login.
        let pending: Option<Pending> = match self.records.take(Kind::Pending, &hash(login_id)).await
        {
            Ok(p) => p,
            Err(_) => return self.store_down(),
        };
        let Some(pending) = pending.filter(|p| p.user.is_some()) else {
            return expired();
        };
        let sent = form.single("csrf").ok().flatten().unwrap_or_default();
        if !pending
            .csrf
            .as_deref()
            .is_some_and(|c| same_secret(sent, c))
        {
            return error_page(403, "consent_csrf", "This answer did not come from the consent page. Start again from your application.");
        }
        let back = ClientRedirect {
            redirect_uri: &pending.grant.redirect_uri,
            state: pending.grant.state.as_deref(),
            issuer: &self.config.issuer,
        };
        if form.single("decision").ok().flatten() != Some("allow") {
            return back.error(
                "access_denied",
                "the user denied the request",
                "consent_denied",
            );
        }
        if !self.config.consent_remember.is_zero() {
            let key = consent_key(&pending);
            if let Err(down) = self
                .keep(Kind::Consent, &key, &true, self.config.consent_remember)
                .await
            {
                return down;
            }
        }
        self.issue_code(pending)
            .await
            .with_cookie(self.login_cookie("", Duration::ZERO))
    }

    /// The code, bound to everything the client asked and the user who answered.
    async fn issue_code(&self, pending: Pending) -> LoginResponse {
        let (Some(user), Some(scope)) = (pending.user, pending.scope) else {
            return expired();
        };
        let code = random_secret();
        let record = CodeRecord {
            grant: pending.grant,
            user,
            scope,
            idp_refresh: pending.idp_refresh,
        };
        if let Err(down) = self.keep(Kind::Code, &hash(&code), &record, CODE_TTL).await {
            return down;
        }
        let back = ClientRedirect {
            redirect_uri: &record.grant.redirect_uri,
            state: record.grant.state.as_deref(),
            issuer: &self.config.issuer,
        };
        tracing::info!(
            client_id = %record.grant.client.id,
            route = %record.grant.route,
            sub = %record.user.sub,
            scope = %record.scope,
            "login: code issued"
        );
        back.with(&[("code", &code)]).counted("code_issued")
    }

    /// Stores a record, or the page that says the store is down.
    async fn keep<T: serde::Serialize>(
        &self,
        kind: Kind,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), LoginResponse> {
        self.records
            .put(kind, id, value, ttl)
            .await
            .map_err(|_| self.store_down())
    }

    /// The login this browser started (by its cookie), with its store key.
    async fn pending(&self, req: &LoginRequest) -> Option<(String, Pending)> {
        let key = hash(req.cookie(&self.cookie_name())?);
        let pending = self.records.get(Kind::Pending, &key).await.ok()??;
        Some((key, pending))
    }

    fn idp_failed(&self, e: &crate::idp::IdpError) -> LoginResponse {
        tracing::warn!(reason = e.reason, error = %e, "login: identity provider step failed");
        let (status, msg) = match e.reason {
            "idp_unavailable" => (
                502,
                "The identity provider cannot be reached right now. Try again shortly.",
            ),
            _ => (400, "The identity provider's answer could not be verified."),
        };
        error_page(status, e.reason, msg)
    }

    pub(crate) fn callback_url(&self) -> String {
        format!("{}{}", self.paths.origin, self.paths.callback)
    }

    /// `__Host-` (RFC 6265bis §4.1.3.2): Secure, no Domain, Path=/ — no sibling host can set
    /// or shadow it. Over plain http (loopback demos) browsers refuse Secure, so drop the prefix.
    pub(crate) fn cookie_name(&self) -> String {
        if self.paths.origin.starts_with("https://") {
            "__Host-mcpgate-login".into()
        } else {
            "mcpgate-login".into()
        }
    }

    /// SameSite=Lax: sent on the IdP's top-level redirect back to `/callback`, never on a
    /// cross-site POST (the consent form is same-site).
    fn login_cookie(&self, value: &str, ttl: Duration) -> String {
        let secure = if self.paths.origin.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            self.cookie_name(),
            ttl.as_secs()
        )
    }
}

/// The front door's side of one IdP round trip: the same values going out and coming back.
fn idp_request<'a>(p: &'a Pending, callback: &'a str, challenge: &'a str) -> IdpRequest<'a> {
    IdpRequest {
        redirect_uri: callback,
        state: &p.idp_state,
        nonce: &p.nonce,
        code_challenge: challenge,
    }
}

/// Consent is remembered per user, client, redirect URI and scopes: any change asks again.
fn consent_key(p: &Pending) -> String {
    let user = p.user.as_ref().map_or("", |u| u.sub.as_str());
    let scope = p.scope.as_deref().unwrap_or_default();
    hash(
        &[
            user,
            &p.grant.client.id,
            &p.grant.redirect_uri,
            &p.grant.resource,
            scope,
        ]
        .join("\0"),
    )
}

/// What the user may be granted on the route the login is for (gone after a reload: `None`).
fn scopes_for(
    grants: &[mcpgate_config::Grant],
    routes: &[LoginRoute],
    grant: &Grant,
    user: &User,
) -> Option<Vec<String>> {
    let route = routes.iter().find(|r| r.name == grant.route)?;
    Some(grant_scopes(
        grants,
        user,
        &route.scopes,
        grant.requested_scope.as_deref(),
    ))
}

fn expired() -> LoginResponse {
    error_page(400, "login_expired", "This sign-in has expired or was started in another browser. Start again from your application.")
}
