//! One issuer's signing keys over time: fetched at start-up, refreshed in the background
//! (honouring `Cache-Control: max-age` between a floor and a ceiling), refetched — rate limited
//! and shared by concurrent callers — when a token names a `kid` our keys are too old to rule on,
//! kept through an outage for the stale window and then refused (fail closed).
//!
//! # Unknown `kid`s, garbage and rotations (issue 12, class 10)
//!
//! A signature cannot be checked before the key is fetched, so a garbage `kid` and the `kid` of a
//! key the IdP published a second ago look the same. Refetching for every unknown `kid` lets
//! anyone hammer the IdP; refusing (401) every unknown `kid` once the cooldown has been spent lets
//! anyone who sends garbage first get a legitimate rotation refused. What settles it is *when*
//! the keys were fetched: IdPs publish a key before they sign with it (otherwise no verifier could
//! accept the first tokens of a rotation), so a JWKS fetched after a token's key must have been
//! published ([`PublishedBy`]: the request's arrival, or the token's `iat` plus leeway) and
//! lacking its `kid` proves the `kid` unknown — 401. Keys fetched earlier prove nothing, and then:
//!
//! - if the cooldown allows, fetch now (one fetch, shared by everyone queued behind it);
//! - else hold the request until the cooldown ends, if that is within [`MAX_HOLD`], and let the
//!   one fetch made then rule for every held request (garbage gets 401, the new key passes);
//! - else answer [`AuthErrorKind::UnknownKeyPending`] (503 + `Retry-After`): "retry", not "bad
//!   token".
//!
//! So the IdP still sees at most one unknown-`kid` fetch per `unknown_kid_cooldown`, garbage can
//! delay a rotation by at most one cooldown but never get it refused, and garbage claiming an old
//! `iat` is refused without any fetch at all. `iat` is unverified here, which is sound: it only
//! chooses between "refuse now" and "look again" for the token that carries it, and a legitimate
//! token's `iat` is honest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use mcpgate_config::{Algorithm, JwksRefresh, JwksSource};
use url::Url;

use crate::error::AuthErrorKind;
use crate::fetch::{self, MAX_DOCUMENT};
use crate::keys::{KeySet, Lookup, VerifyKey};

/// When no `Cache-Control: max-age` is sent, refresh this often (clamped to the floor/ceiling).
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Longest a request waits for the unknown-`kid` cooldown to end so the next fetch can rule on
/// it. With the default cooldown (10 s) every token gets a definite answer; a longer cooldown
/// answers "retry later" instead of holding requests for longer than clients wait.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(10);

/// Keys as of the last successful fetch.
pub(crate) struct KeyState {
    pub set: KeySet,
    /// After this instant the keys are too old to trust (refresh interval + stale window).
    pub usable_until: Instant,
    /// When the fetch that produced these keys started, on both clocks: the document reflects
    /// the IdP at that moment or later.
    fetched_at: Instant,
    fetched_at_unix: u64,
}

impl KeyState {
    /// Whether these keys were fetched late enough to hold the key of a token whose key was
    /// published by `by`: only then does a missing `kid` mean the `kid` is unknown.
    fn speaks_for(&self, by: &PublishedBy) -> bool {
        self.fetched_at >= by.arrived || by.signed_by.is_some_and(|t| self.fetched_at_unix >= t)
    }

    /// The key, a definite refusal, or `None` when these keys are too old to tell.
    fn rule(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        by: &PublishedBy,
    ) -> Option<Result<Arc<VerifyKey>, AuthErrorKind>> {
        match self.set.find(kid, alg) {
            Lookup::Found(k) => Some(Ok(k)),
            Lookup::Mismatch => Some(Err(AuthErrorKind::KeyMismatch)),
            Lookup::NotFound if self.speaks_for(by) => Some(Err(AuthErrorKind::UnknownKey)),
            Lookup::NotFound => None,
        }
    }
}

/// The latest moment a token's signing key must have been published, for a legitimate token:
/// the token existed when its request arrived, and was signed at its `iat` — give or take the
/// issuer's leeway of clock skew, plus one second because `iat` is rounded down.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishedBy {
    arrived: Instant,
    /// `iat + leeway + 1`, Unix seconds.
    signed_by: Option<u64>,
}

impl PublishedBy {
    /// For a token in hand now (so it exists now) claiming `iat`.
    pub fn token_seen_now(iat: Option<u64>, leeway: Duration) -> PublishedBy {
        PublishedBy::new(Instant::now(), iat, leeway)
    }

    fn new(arrived: Instant, iat: Option<u64>, leeway: Duration) -> PublishedBy {
        PublishedBy {
            arrived,
            signed_by: iat.map(|iat| iat.saturating_add(leeway.as_secs()).saturating_add(1)),
        }
    }
}

/// One pass under the fetch lock.
enum Step {
    Ruled(Result<Arc<VerifyKey>, AuthErrorKind>),
    /// The keys cannot rule and the cooldown forbids fetching before this instant.
    CoolingDown(Instant),
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An issuer's JWKS and the machinery that keeps it current.
pub(crate) struct IssuerKeys {
    issuer: String,
    source: JwksSource,
    refresh: JwksRefresh,
    http: reqwest::Client,
    state: ArcSwapOption<KeyState>,
    /// The JWKS URL found by discovery (cleared on failure so the next attempt rediscovers).
    discovered: Mutex<Option<Url>>,
    /// Serialises fetches: concurrent unknown-`kid` refetches share one request.
    fetch_lock: tokio::sync::Mutex<()>,
    /// When the last on-demand fetch (unknown `kid`, or no usable keys) happened: those, and only
    /// those, are rate limited, so a scheduled refresh just before a rotation cannot delay
    /// picking up the new key.
    last_unknown_kid_fetch: Mutex<Option<Instant>>,
    fetches: AtomicU64,
    /// Fetch attempts that left the keys unchanged (network, status, document problems).
    failures: AtomicU64,
    /// The last fetch's error, cleared by the next success (the status page shows it).
    last_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl IssuerKeys {
    pub fn new(
        issuer: String,
        source: JwksSource,
        refresh: JwksRefresh,
        http: reqwest::Client,
    ) -> IssuerKeys {
        IssuerKeys {
            issuer,
            source,
            refresh,
            http,
            state: ArcSwapOption::empty(),
            discovered: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            last_unknown_kid_fetch: Mutex::new(None),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// True once keys have been fetched successfully at least once.
    pub fn has_keys(&self) -> bool {
        self.state.load().is_some()
    }

    /// How long ago the keys in use were fetched; `None` before the first successful fetch.
    /// Signing keys held now (0 before the first successful fetch).
    pub fn key_count(&self) -> usize {
        self.state.load().as_ref().map_or(0, |s| s.set.len())
    }

    /// Why the last fetch failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    pub fn keys_age(&self) -> Option<Duration> {
        self.state.load().as_ref().map(|s| s.fetched_at.elapsed())
    }

    /// Failed fetch attempts so far (for metrics).
    pub fn failure_count(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Fetch attempts made so far (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The current keys if they are still within their usable window.
    pub fn usable(&self) -> Option<Arc<KeyState>> {
        self.state
            .load_full()
            .filter(|s| Instant::now() <= s.usable_until)
    }

    /// The verification key for a token's `kid`/`alg` (see the module docs for how an unknown
    /// `kid` is ruled on). `by` says when the token's key must have been published.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        by: PublishedBy,
    ) -> Result<Arc<VerifyKey>, AuthErrorKind> {
        if let Some(ruled) = self.usable().and_then(|s| s.rule(kid, alg, &by)) {
            return ruled;
        }
        let hold_until = Instant::now() + MAX_HOLD;
        loop {
            match self.refetch_for(kid, alg, &by).await {
                Step::Ruled(ruled) => return ruled,
                // Without usable keys there is nothing a rotation could be hiding behind:
                // fail closed at once rather than hold requests through an IdP outage.
                Step::CoolingDown(_) if self.usable().is_none() => {
                    return Err(AuthErrorKind::KeysUnavailable)
                }
                Step::CoolingDown(until) if until <= hold_until => {
                    tokio::time::sleep_until(until.into()).await;
                }
                Step::CoolingDown(_) => return Err(AuthErrorKind::UnknownKeyPending),
            }
        }
    }

    /// Under the fetch lock: rule with keys someone fetched while we queued, else fetch now if
    /// the cooldown allows, else say when it will.
    async fn refetch_for(&self, kid: Option<&str>, alg: Algorithm, by: &PublishedBy) -> Step {
        let _guard = self.fetch_lock.lock().await;
        if let Some(ruled) = self.usable().and_then(|s| s.rule(kid, alg, by)) {
            return Step::Ruled(ruled);
        }
        if let Some(until) = self.take_fetch_budget() {
            return Step::CoolingDown(until);
        }
        if let Err(e) = self.fetch_locked().await {
            tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refetch failed");
        }
        Step::Ruled(match self.usable() {
            None => Err(AuthErrorKind::KeysUnavailable),
            // Started after the caller arrived, so it rules — unless it failed and left older keys.
            Some(state) => state
                .rule(kid, alg, by)
                .unwrap_or(Err(AuthErrorKind::UnknownKeyPending)),
        })
    }

    /// Claim the on-demand fetch allowance: `None` if granted (and now spent), else the instant
    /// the cooldown ends.
    fn take_fetch_budget(&self) -> Option<Instant> {
        let mut last = lock(&self.last_unknown_kid_fetch);
        let now = Instant::now();
        if let Some(until) = last
            .map(|t| t + self.refresh.unknown_kid_cooldown)
            .filter(|until| *until > now)
        {
            return Some(until);
        }
        *last = Some(now);
        None
    }

    /// A JWKS document held locally (a file, or the front door's own keys), parsed strictly.
    fn local_document(
        bytes: &[u8],
        what: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let limits = mcpgate_json::Limits {
            max_depth: 32,
            max_bytes: MAX_DOCUMENT,
        };
        mcpgate_json::parse_object(bytes, limits).map_err(|e| format!("{what}: {e}"))
    }

    /// One fetch under the lock (used by the background loop). Returns when to refresh next.
    pub async fn refresh_now(&self) -> Result<Duration, String> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<Duration, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = self.fetch_and_store().await;
        if fetched.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        *lock(&self.last_error) = fetched.as_ref().err().cloned();
        fetched
    }

    async fn fetch_and_store(&self) -> Result<Duration, String> {
        let (fetched_at, fetched_at_unix) = (Instant::now(), unix_now());
        let (doc, max_age) = match &self.source {
            JwksSource::File(path) => {
                let bytes = read_file_capped(path).await?;
                (
                    Self::local_document(&bytes, &path.display().to_string())?,
                    None,
                )
            }
            JwksSource::Inline(json) => (
                Self::local_document(json.as_bytes(), "the login front door's keys")?,
                None,
            ),
            JwksSource::Uri(url) => self.get(url.clone()).await?,
            JwksSource::Discovery => {
                let url = self.discover().await?;
                let got = self.get(url).await;
                if got.is_err() {
                    *lock(&self.discovered) = None;
                }
                got?
            }
        };
        let set = KeySet::parse(&doc)?;
        if set.len() == 0 {
            return Err("JWKS holds no usable signing key".into());
        }
        let interval = max_age.unwrap_or(DEFAULT_REFRESH).clamp(
            self.refresh.min_interval,
            self.refresh.max_interval.max(self.refresh.min_interval),
        );
        tracing::debug!(issuer = %self.issuer, keys = set.len(), skipped = set.skipped, ?interval, "JWKS loaded");
        self.state.store(Some(Arc::new(KeyState {
            set,
            usable_until: Instant::now() + interval + self.refresh.stale_window,
            fetched_at,
            fetched_at_unix,
        })));
        Ok(interval)
    }

    async fn get(
        &self,
        url: Url,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, Option<Duration>), String> {
        let f = fetch::json_object(
            self.http.get(url.clone()),
            self.refresh.timeout,
            MAX_DOCUMENT,
        )
        .await
        .map_err(|e| format!("{}: {e}", fetch::printable_url(&url)))?;
        Ok((f.body, f.max_age))
    }

    /// Find `jwks_uri` from the issuer's OpenID configuration, falling back to RFC 8414 metadata.
    /// The document must name this exact issuer.
    async fn discover(&self) -> Result<Url, String> {
        if let Some(u) = lock(&self.discovered).clone() {
            return Ok(u);
        }
        let mut last_err = String::new();
        for url in discovery_urls(&self.issuer)? {
            match fetch::json_object(
                self.http.get(url.clone()),
                self.refresh.timeout,
                MAX_DOCUMENT,
            )
            .await
            {
                Ok(f) => {
                    if f.body.get("issuer").and_then(|v| v.as_str()) != Some(self.issuer.as_str()) {
                        last_err = format!("{url}: metadata names a different issuer");
                        continue;
                    }
                    let jwks = f
                        .body
                        .get("jwks_uri")
                        .and_then(|v| v.as_str())
                        .and_then(|s| Url::parse(s).ok())
                        .filter(|u| matches!(u.scheme(), "https" | "http"))
                        .ok_or_else(|| format!("{url}: no valid jwks_uri"))?;
                    *lock(&self.discovered) = Some(jwks.clone());
                    return Ok(jwks);
                }
                Err(e) => last_err = format!("{url}: {e}"),
            }
        }
        Err(format!("discovery failed: {last_err}"))
    }

    /// Keep the keys fresh until the task is aborted: refresh on the interval the last fetch
    /// chose; on failure retry with backoff from 1 s up to the floor interval.
    pub async fn run_refresh_loop(self: Arc<Self>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let wait = match self.refresh_now().await {
                Ok(interval) => {
                    backoff = Duration::from_secs(1);
                    interval
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, retry_in = ?backoff, "JWKS fetch failed");
                    let w = backoff;
                    backoff =
                        (backoff * 2).min(self.refresh.min_interval.max(Duration::from_secs(1)));
                    w
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

async fn read_file_capped(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_DOCUMENT as u64 {
        return Err(format!(
            "{}: larger than {MAX_DOCUMENT} bytes",
            path.display()
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// OIDC Discovery (`<issuer>/.well-known/openid-configuration`) then RFC 8414
/// (`<origin>/.well-known/oauth-authorization-server<path>`).
pub(crate) fn discovery_urls(issuer: &str) -> Result<Vec<Url>, String> {
    let base = Url::parse(issuer).map_err(|e| format!("issuer is not a URL: {e}"))?;
    let path = base.path().trim_end_matches('/').to_owned();
    let mut oidc = base.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    let mut rfc8414 = base;
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    Ok(vec![oidc, rfc8414])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys_fetched(at: Instant, at_unix: u64) -> KeyState {
        let doc = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "old", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        KeyState {
            set: KeySet::parse(doc.as_object().unwrap()).unwrap(),
            usable_until: at + Duration::from_secs(3600),
            fetched_at: at,
            fetched_at_unix: at_unix,
        }
    }

    #[test]
    fn a_missing_kid_is_unknown_only_in_keys_fetched_after_its_key_had_to_exist() {
        let t0 = Instant::now();
        let unix = 1_000_000;
        let keys = keys_fetched(t0, unix);
        let leeway = Duration::from_secs(30);
        let ruling = |by: PublishedBy| keys.rule(Some("new"), Algorithm::ES256, &by);
        // Arrived before the fetch started: the fetch rules.
        let early = PublishedBy::new(t0 - Duration::from_millis(1), None, leeway);
        assert!(matches!(
            ruling(early),
            Some(Err(AuthErrorKind::UnknownKey))
        ));
        // Arrived after it, no `iat`: these keys cannot tell.
        let later = t0 + Duration::from_millis(1);
        assert!(ruling(PublishedBy::new(later, None, leeway)).is_none());
        // Arrived after it, but signed (iat + leeway + 1 s) no later than the fetch: rules.
        let old_iat = Some(unix - 31);
        assert!(matches!(
            ruling(PublishedBy::new(later, old_iat, leeway)),
            Some(Err(AuthErrorKind::UnknownKey))
        ));
        // An `iat` within the leeway of the fetch proves nothing.
        assert!(ruling(PublishedBy::new(later, Some(unix - 30), leeway)).is_none());
        assert!(ruling(PublishedBy::new(later, Some(unix + 5), leeway)).is_none());
        // A known kid is found, and a wrong algorithm refused, however recent the token.
        let recent = PublishedBy::new(later, None, leeway);
        assert!(matches!(
            keys.rule(Some("old"), Algorithm::ES256, &recent),
            Some(Ok(_))
        ));
        assert!(matches!(
            keys.rule(Some("old"), Algorithm::RS256, &recent),
            Some(Err(AuthErrorKind::KeyMismatch))
        ));
    }

    #[test]
    fn the_fetch_budget_is_one_per_cooldown() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let keys = IssuerKeys::new(
            "https://idp.example".into(),
            JwksSource::Discovery,
            JwksRefresh {
                unknown_kid_cooldown: Duration::from_millis(200),
                ..JwksRefresh::default()
            },
            reqwest::Client::new(),
        );
        let start = Instant::now();
        assert_eq!(keys.take_fetch_budget(), None, "the first fetch is allowed");
        let until = keys.take_fetch_budget().expect("then the cooldown runs");
        assert!(until >= start + Duration::from_millis(200));
        assert!(until <= Instant::now() + Duration::from_millis(200));
        assert_eq!(
            keys.take_fetch_budget(),
            Some(until),
            "asking again does not extend it"
        );
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(
            keys.take_fetch_budget(),
            None,
            "allowed again after the cooldown"
        );
    }

    #[test]
    fn discovery_urls_follow_both_specs() {
        let u = discovery_urls("https://login.example.com/realms/corp").unwrap();
        assert_eq!(
            u[0].as_str(),
            "https://login.example.com/realms/corp/.well-known/openid-configuration"
        );
        assert_eq!(
            u[1].as_str(),
            "https://login.example.com/.well-known/oauth-authorization-server/realms/corp"
        );
        let u = discovery_urls("https://idp.example.com/").unwrap();
        assert_eq!(
            u[0].as_str(),
            "https://idp.example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            u[1].as_str(),
            "https://idp.example.com/.well-known/oauth-authorization-server"
        );
    }

    #[tokio::test]
    async fn a_failed_jwks_fetch_names_the_endpoint_without_its_query() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/jwks?key=s3cret")).unwrap();
        let keys = IssuerKeys::new(
            "https://idp.example".into(),
            JwksSource::Uri(url),
            JwksRefresh::default(),
            reqwest::Client::new(),
        );
        let e = keys.refresh_now().await.unwrap_err();
        assert!(
            e.starts_with(&format!("http://127.0.0.1:{port}/jwks: ")),
            "{e}"
        );
        assert!(
            e.to_lowercase().contains("refused") && !e.contains("s3cret"),
            "{e}"
        );
    }
}
