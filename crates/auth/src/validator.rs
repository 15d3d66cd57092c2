//! The token validator: decides, for one route, whether a bearer token is acceptable and who it
//! names. JWTs from issuers with keys are verified locally; anything else goes to the route's
//! introspecting issuers. Both kinds of result are cached by the token's SHA-256 and never
//! outlive the token; route-specific checks (trusted issuer, audience) run on every request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcpgate_config::Issuer;
use moka::Expiry;
use serde_json::Value;

use crate::bearer::TokenDigest;
use crate::error::{AuthError, AuthErrorKind};
use crate::introspection::{Answer, Failure, Introspector};
use crate::jwks::{IssuerKeys, PublishedBy};
use crate::jwt::{self, UnverifiedJwt};
use crate::observe::{CallOutcome, TokenCache};
use crate::principal::{
    audience_accepted, audiences, build_principal, check_required, check_times, now_secs,
    numeric_date, Principal,
};

/// Most verified JWTs / introspection answers remembered at once (each is about 1–2 KiB).
const CACHE_ENTRIES: u64 = 20_000;

/// What a route accepts: which issuers (by configured name) and which resource URL as audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTrust {
    issuers: Vec<String>,
    resource: String,
}

impl RouteTrust {
    pub fn new(issuers: Vec<String>, resource: String) -> RouteTrust {
        RouteTrust { issuers, resource }
    }
    pub fn resource(&self) -> &str {
        &self.resource
    }
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }
    fn trusts(&self, name: &str) -> bool {
        self.issuers.iter().any(|i| i == name)
    }
}

/// Identifies one issuer runtime for the life of the process, so that cache entries made under
/// one issuer configuration are never read under another after a reload.
type RuntimeId = u64;

static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// One issuer's live state: its keys (and their refresh task) and its introspection client with
/// its call bound. Shared by every validator whose configuration has this issuer unchanged.
struct IssuerRuntime {
    id: RuntimeId,
    config: Issuer,
    keys: Option<Arc<IssuerKeys>>,
    introspector: Option<Introspector>,
    refresh: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl IssuerRuntime {
    fn new(cfg: &Issuer, http: &reqwest::Client) -> IssuerRuntime {
        IssuerRuntime {
            id: NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed),
            config: cfg.clone(),
            keys: cfg.jwks.clone().map(|source| {
                Arc::new(IssuerKeys::new(
                    cfg.issuer.clone(),
                    source,
                    cfg.jwks_refresh,
                    http.clone(),
                ))
            }),
            introspector: cfg
                .introspection
                .clone()
                .map(|c| Introspector::new(c, http.clone())),
            refresh: Mutex::new(None),
        }
    }

    /// Start the key refresh loop unless it runs already (needs a Tokio runtime).
    fn start_refresh(&self) {
        let Some(keys) = &self.keys else { return };
        let mut refresh = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        if refresh.is_none() {
            *refresh = Some(tokio::spawn(keys.clone().run_refresh_loop()));
        }
    }
}

impl Drop for IssuerRuntime {
    /// The refresh loop ends with the last configuration that names this issuer unchanged.
    fn drop(&mut self) {
        let refresh = self.refresh.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = refresh.take() {
            task.abort();
        }
    }
}

/// A verified JWT: signature, issuer and times checked; audience is checked per route.
struct CachedJwt {
    principal: Arc<Principal>,
    issuer: RuntimeId,
    kid: Option<String>,
    ttl: Duration,
}

/// An introspection outcome for one issuer.
struct Introspected {
    outcome: Result<Arc<Principal>, AuthErrorKind>,
    ttl: Duration,
}

/// Cache entries expire with their own TTL (bounded by the token's `exp`).
struct OwnTtl;

impl<K> Expiry<K, Arc<CachedJwt>> for OwnTtl {
    fn expire_after_create(&self, _: &K, v: &Arc<CachedJwt>, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

impl<K> Expiry<K, Arc<Introspected>> for OwnTtl {
    fn expire_after_create(&self, _: &K, v: &Arc<Introspected>, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

struct Inner {
    issuers: Vec<Arc<IssuerRuntime>>,
    /// `iss` value → indices of issuers with JWKS keys.
    by_iss: HashMap<String, Vec<usize>>,
    /// Shared with the validators this one was reloaded from and into: entries name the issuer
    /// runtime that made them, so a changed issuer's entries are simply never read again.
    jwt_cache: moka::sync::Cache<TokenDigest, Arc<CachedJwt>>,
    introspection_cache: moka::future::Cache<(RuntimeId, TokenDigest), Arc<Introspected>>,
    started: AtomicBool,
}

/// One issuer's JWKS counters and the age of the keys in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksStats {
    /// The configured issuer name (`issuers[].name`).
    pub issuer: String,
    pub fetches: u64,
    pub failures: u64,
    /// Time since the keys in use were fetched; `None` until the first successful fetch.
    pub keys_age: Option<Duration>,
}

/// One issuer as the admin status page shows it.
#[derive(Debug, Clone)]
pub struct IssuerStatus {
    /// The configured name (`issuers[].name`) and its `iss` value.
    pub name: String,
    pub issuer: String,
    /// Whether it validates JWTs by JWKS, opaque tokens by introspection, or both.
    pub jwks: bool,
    pub introspection: bool,
    /// Signing keys held, and how long ago they were fetched (`None` before the first fetch).
    pub key_count: usize,
    pub keys_age: Option<Duration>,
    /// Why the last JWKS fetch failed, if it did.
    pub last_error: Option<String>,
}

/// Validates bearer tokens for every route of one configuration snapshot. Cheap to clone.
#[derive(Clone)]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

impl TokenValidator {
    /// A validator for `issuers`, using `http` (no redirects, bounded) to reach the IdPs.
    /// Nothing is fetched until [`start_background`](Self::start_background) or the first token.
    pub fn new(issuers: &[Issuer], http: reqwest::Client) -> TokenValidator {
        let runtimes = issuers
            .iter()
            .map(|cfg| Arc::new(IssuerRuntime::new(cfg, &http)))
            .collect();
        TokenValidator::assemble(
            runtimes,
            moka::sync::Cache::builder()
                .max_capacity(CACHE_ENTRIES)
                .expire_after(OwnTtl)
                .build(),
            moka::future::Cache::builder()
                .max_capacity(CACHE_ENTRIES)
                .expire_after(OwnTtl)
                .build(),
        )
    }

    /// A validator for a reloaded configuration: every issuer whose settings equal one of
    /// `old`'s keeps that issuer's keys, refresh loop, introspection bound and cached results
    /// (no refetch, no readiness dip); a new or changed issuer starts afresh. Call
    /// [`start_background`](Self::start_background) on the result to fetch for those.
    pub fn reuse_from(
        old: &TokenValidator,
        issuers: &[Issuer],
        http: reqwest::Client,
    ) -> TokenValidator {
        let runtimes = issuers
            .iter()
            .map(|cfg| {
                old.inner
                    .issuers
                    .iter()
                    .find(|r| r.config == *cfg)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(IssuerRuntime::new(cfg, &http)))
            })
            .collect();
        TokenValidator::assemble(
            runtimes,
            old.inner.jwt_cache.clone(),
            old.inner.introspection_cache.clone(),
        )
    }

    /// Names of the issuers in `self` that do not share their runtime with `old` (new or
    /// changed), in configuration order — what a reload logs.
    pub fn renewed_since(&self, old: &TokenValidator) -> Vec<String> {
        self.inner
            .issuers
            .iter()
            .filter(|r| !old.inner.issuers.iter().any(|o| Arc::ptr_eq(o, r)))
            .map(|r| r.config.name.clone())
            .collect()
    }

    fn assemble(
        issuers: Vec<Arc<IssuerRuntime>>,
        jwt_cache: moka::sync::Cache<TokenDigest, Arc<CachedJwt>>,
        introspection_cache: moka::future::Cache<(RuntimeId, TokenDigest), Arc<Introspected>>,
    ) -> TokenValidator {
        let mut by_iss: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in issuers.iter().enumerate() {
            if r.keys.is_some() {
                by_iss.entry(r.config.issuer.clone()).or_default().push(i);
            }
        }
        TokenValidator {
            inner: Arc::new(Inner {
                issuers,
                by_iss,
                jwt_cache,
                introspection_cache,
                started: AtomicBool::new(false),
            }),
        }
    }

    /// Start fetching and refreshing every issuer's JWKS (idempotent; needs a Tokio runtime).
    /// An issuer's task stops when the last validator holding that issuer is dropped.
    pub fn start_background(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        for issuer in &self.inner.issuers {
            issuer.start_refresh();
        }
    }

    /// True once every issuer that signs JWTs has had its keys fetched at least once.
    pub fn is_ready(&self) -> bool {
        self.inner
            .issuers
            .iter()
            .filter_map(|i| i.keys.as_ref())
            .all(|k| k.has_keys())
    }

    /// Poll [`is_ready`](Self::is_ready) until it holds or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_ready() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// JWKS fetch attempts made for issuer `name` (observability and tests).
    pub fn jwks_fetches(&self, name: &str) -> u64 {
        self.inner
            .issuers
            .iter()
            .find(|i| i.config.name == name)
            .and_then(|i| i.keys.as_ref())
            .map_or(0, |k| k.fetch_count())
    }

    /// JWKS state of every issuer that signs JWTs, by configured name (for metrics).
    /// Every configured issuer's state, in configuration order.
    pub fn issuer_status(&self) -> Vec<IssuerStatus> {
        self.inner
            .issuers
            .iter()
            .map(|i| IssuerStatus {
                name: i.config.name.clone(),
                issuer: i.config.issuer.clone(),
                jwks: i.keys.is_some(),
                introspection: i.introspector.is_some(),
                key_count: i.keys.as_ref().map_or(0, |k| k.key_count()),
                keys_age: i.keys.as_ref().and_then(|k| k.keys_age()),
                last_error: i.keys.as_ref().and_then(|k| k.last_error()),
            })
            .collect()
    }

    pub fn jwks_stats(&self) -> Vec<JwksStats> {
        self.inner
            .issuers
            .iter()
            .filter_map(|i| {
                let keys = i.keys.as_ref()?;
                Some(JwksStats {
                    issuer: i.config.name.clone(),
                    fetches: keys.fetch_count(),
                    failures: keys.failure_count(),
                    keys_age: keys.keys_age(),
                })
            })
            .collect()
    }

    /// Validate `token` for a route trusting `trust`.
    pub async fn validate(
        &self,
        token: &str,
        trust: &RouteTrust,
    ) -> Result<Arc<Principal>, AuthError> {
        let digest = TokenDigest::of(token);
        let now = now_secs();
        let cached = self.inner.jwt_cache.get(&digest);
        // Only verified JWTs are cached, so a hit is a JWT without counting its dots again (a
        // scan of the whole token: about 3.2k instructions per request of a 0.8 KB token).
        if cached.is_some() || jwt::looks_like_jwt(token) {
            crate::observe::with(|o| o.token_cache(TokenCache::Jwt, cached.is_some()));
        }
        if let Some(hit) = cached {
            match self.check_cached(&hit, trust, now) {
                Ok(p) => return Ok(p),
                // The signing key left the JWKS: forget the result and verify from scratch.
                Err(AuthErrorKind::UnknownKey) => self.inner.jwt_cache.invalidate(&digest),
                Err(kind) => return Err(kind.into()),
            }
        }
        let introspectable = self.introspecting_issuers(trust).next().is_some();
        if jwt::looks_like_jwt(token) {
            match jwt::parse(token) {
                Ok(parsed) => match self.jwks_issuer(parsed.issuer_hint(), trust) {
                    Some(Ok(idx)) => {
                        return self
                            .verify_jwt(parsed, idx, digest, trust, now)
                            .await
                            .map_err(Into::into)
                    }
                    Some(Err(kind)) => return Err(kind.into()),
                    None if !introspectable => {
                        let kind = if parsed.issuer_hint().is_some() {
                            AuthErrorKind::UntrustedIssuer
                        } else {
                            AuthErrorKind::Malformed
                        };
                        return Err(kind.into());
                    }
                    None => {}
                },
                Err(kind) if !introspectable => return Err(kind.into()),
                Err(_) => {}
            }
        } else if !introspectable {
            return Err(AuthErrorKind::Malformed.into());
        }
        self.introspect(token, digest, trust, now)
            .await
            .map_err(Into::into)
    }

    /// Which JWKS issuer handles a token claiming `iss`: `None` if no issuer with keys has that
    /// `iss`; an error if such issuers exist but the route trusts none of them.
    fn jwks_issuer(
        &self,
        iss: Option<&str>,
        trust: &RouteTrust,
    ) -> Option<Result<usize, AuthErrorKind>> {
        let candidates = self.inner.by_iss.get(iss?)?;
        Some(
            candidates
                .iter()
                .copied()
                .find(|&i| trust.trusts(&self.inner.issuers[i].config.name))
                .ok_or(AuthErrorKind::UntrustedIssuer),
        )
    }

    fn introspecting_issuers<'a>(
        &'a self,
        trust: &'a RouteTrust,
    ) -> impl Iterator<Item = &'a IssuerRuntime> + 'a {
        self.inner
            .issuers
            .iter()
            .map(Arc::as_ref)
            .filter(move |i| i.introspector.is_some() && trust.trusts(&i.config.name))
    }

    fn check_cached(
        &self,
        hit: &CachedJwt,
        trust: &RouteTrust,
        now: u64,
    ) -> Result<Arc<Principal>, AuthErrorKind> {
        // An entry made under an issuer configuration this validator does not have (changed or
        // removed by a reload) is verified again from scratch.
        let issuer = self
            .inner
            .issuers
            .iter()
            .find(|i| i.id == hit.issuer)
            .ok_or(AuthErrorKind::UnknownKey)?;
        if !trust.trusts(&issuer.config.name) {
            return Err(AuthErrorKind::UntrustedIssuer);
        }
        let leeway = issuer.config.leeway.as_secs();
        if hit
            .principal
            .expires_at
            .is_some_and(|exp| now >= exp.saturating_add(leeway))
        {
            return Err(AuthErrorKind::Expired);
        }
        // Keys must still be trusted, and the signing key still published (revocation by removal).
        let keys = issuer
            .keys
            .as_ref()
            .and_then(|k| k.usable())
            .ok_or(AuthErrorKind::KeysUnavailable)?;
        if !keys.set.contains_kid(hit.kid.as_deref()) {
            return Err(AuthErrorKind::UnknownKey);
        }
        route_audience(&hit.principal, trust, &issuer.config)?;
        Ok(hit.principal.clone())
    }

    async fn verify_jwt(
        &self,
        jwt: UnverifiedJwt<'_>,
        idx: usize,
        digest: TokenDigest,
        trust: &RouteTrust,
        now: u64,
    ) -> Result<Arc<Principal>, AuthErrorKind> {
        let issuer = &self.inner.issuers[idx];
        let cfg = &issuer.config;
        jwt.check_header()?;
        let alg = jwt.algorithm(&cfg.algorithms)?;
        jwt.check_type(cfg.require_at_jwt)?;
        let keys = issuer.keys.as_ref().ok_or(AuthErrorKind::KeysUnavailable)?;
        // Unverified, and only used to decide whether our keys are recent enough to call an
        // unknown `kid` unknown (see `jwks`); a malformed `iat` is refused after verification.
        let iat = numeric_date(&jwt.claims, "iat").ok().flatten();
        let published_by = PublishedBy::token_seen_now(iat, cfg.leeway);
        let key = keys.key_for(jwt.kid.as_deref(), alg, published_by).await?;
        jwt.verify(&key, alg)?;
        // Signature good: now the claims mean something.
        if jwt.claims.get("iss").and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
            return Err(AuthErrorKind::UntrustedIssuer);
        }
        let leeway = cfg.leeway.as_secs();
        let exp = check_times(&jwt.claims, now, leeway, true)?;
        check_required(&jwt.claims, &cfg.required_claims, true)?;
        let aud = audiences(&jwt.claims)?;
        let kid = jwt.kid.clone();
        let principal = Arc::new(build_principal(
            jwt.claims,
            cfg,
            aud,
            exp,
            digest.short_hex(),
        ));
        let ttl = Duration::from_secs(exp.map_or(0, |e| e.saturating_sub(now)));
        self.inner.jwt_cache.insert(
            digest,
            Arc::new(CachedJwt {
                principal: principal.clone(),
                issuer: issuer.id,
                kid,
                ttl,
            }),
        );
        route_audience(&principal, trust, cfg)?;
        Ok(principal)
    }

    async fn introspect(
        &self,
        token: &str,
        digest: TokenDigest,
        trust: &RouteTrust,
        now: u64,
    ) -> Result<Arc<Principal>, AuthErrorKind> {
        let mut refusal = AuthErrorKind::Inactive;
        let mut unavailable = None;
        for issuer in self.introspecting_issuers(trust) {
            let asked = AtomicBool::new(false);
            let looked_up = self
                .inner
                .introspection_cache
                .try_get_with((issuer.id, digest), async {
                    asked.store(true, Ordering::Relaxed);
                    self.introspect_uncached(issuer, token, digest, now).await
                })
                .await;
            let hit = !asked.load(Ordering::Relaxed);
            crate::observe::with(|o| o.token_cache(TokenCache::Introspection, hit));
            match looked_up {
                Ok(entry) => match &entry.outcome {
                    Ok(p) => {
                        let leeway = issuer.config.leeway.as_secs();
                        if p.expires_at
                            .is_some_and(|exp| now >= exp.saturating_add(leeway))
                        {
                            refusal = AuthErrorKind::Expired;
                            continue;
                        }
                        introspected_audience(p, trust, issuer)?;
                        return Ok(p.clone());
                    }
                    Err(AuthErrorKind::Inactive) => {}
                    Err(kind) => refusal = *kind,
                },
                Err(failure) => {
                    // An IdP that cannot answer outranks one that is only busy: both are 503s.
                    let kind = no_answer(&failure, &issuer.config.name, digest);
                    if unavailable != Some(AuthErrorKind::IdpUnavailable) {
                        unavailable = Some(kind);
                    }
                }
            }
        }
        Err(unavailable.unwrap_or(refusal))
    }

    /// One introspection call and the checks that do not depend on the route.
    async fn introspect_uncached(
        &self,
        issuer: &IssuerRuntime,
        token: &str,
        digest: TokenDigest,
        now: u64,
    ) -> Result<Arc<Introspected>, Failure> {
        let introspector = issuer
            .introspector
            .as_ref()
            .ok_or_else(|| Failure::Unavailable("no introspection endpoint".into()))?;
        let negative = |kind| Introspected {
            outcome: Err(kind),
            ttl: introspector.negative_cache_ttl(),
        };
        let started = Instant::now();
        let answer = introspector.introspect(token).await;
        let outcome = match &answer {
            Ok(_) => CallOutcome::Answered,
            Err(Failure::Busy) => CallOutcome::Shed,
            Err(Failure::Unavailable(_)) => CallOutcome::Failed,
        };
        let name = &issuer.config.name;
        crate::observe::with(|o| o.introspection(name, outcome, started.elapsed()));
        let claims = match answer? {
            Answer::Inactive => return Ok(Arc::new(negative(AuthErrorKind::Inactive))),
            Answer::Active(claims) => claims,
        };
        let cfg = &issuer.config;
        let checked = (|| {
            if claims
                .get("iss")
                .is_some_and(|v| v.as_str() != Some(cfg.issuer.as_str()))
            {
                return Err(AuthErrorKind::UntrustedIssuer);
            }
            let exp = check_times(&claims, now, cfg.leeway.as_secs(), false)?;
            check_required(&claims, &cfg.required_claims, true)?;
            Ok((exp, audiences(&claims)?))
        })();
        let (exp, aud) = match checked {
            Ok(v) => v,
            Err(kind) => return Ok(Arc::new(negative(kind))),
        };
        let ttl = match exp {
            Some(exp) => introspector
                .cache_ttl()
                .min(Duration::from_secs(exp.saturating_sub(now))),
            None => introspector.cache_ttl(),
        };
        let principal = build_principal(claims, cfg, aud, exp, digest.short_hex());
        Ok(Arc::new(Introspected {
            outcome: Ok(Arc::new(principal)),
            ttl,
        }))
    }
}

/// Fail closed when no introspection answer came back, logging why (with the token's short
/// hash, never the token). Shedding is routine under a junk-token flood, so it logs quietly.
fn no_answer(failure: &Failure, issuer: &str, digest: TokenDigest) -> AuthErrorKind {
    let token = digest.short_hex();
    match failure {
        Failure::Busy => {
            tracing::debug!(issuer, token, "token introspection shed: all slots busy");
            AuthErrorKind::IntrospectionBusy
        }
        Failure::Unavailable(e) => {
            tracing::warn!(issuer, token, error = %e, "token introspection failed");
            AuthErrorKind::IdpUnavailable
        }
    }
}

/// An active introspection answer must name this resource as audience, exactly as a JWT must
/// (RFC 8707; RFC 9068 §4). RFC 7662 makes `aud` optional, but an answer without one (absent, or
/// `"aud": []` as ORY Hydra sends) would pass on every route of every resource that trusts the
/// issuer, so it is refused with the JWT's reason unless the issuer opted in
/// (`introspection.accept_missing_audience`).
fn introspected_audience(
    p: &Principal,
    trust: &RouteTrust,
    issuer: &IssuerRuntime,
) -> Result<(), AuthErrorKind> {
    let opted_in = issuer
        .introspector
        .as_ref()
        .is_some_and(Introspector::accepts_missing_audience);
    if p.audience.is_empty() && opted_in {
        return Ok(());
    }
    route_audience(p, trust, &issuer.config)
}

fn route_audience(p: &Principal, trust: &RouteTrust, issuer: &Issuer) -> Result<(), AuthErrorKind> {
    if audience_accepted(&p.audience, trust.resource(), &issuer.audiences) {
        Ok(())
    } else {
        Err(AuthErrorKind::WrongAudience)
    }
}
