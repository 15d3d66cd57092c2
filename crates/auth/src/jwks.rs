//! One issuer's signing keys over time: fetched at start-up, refreshed in the background
//! (honouring `Cache-Control: max-age` between a floor and a ceiling), refetched once — rate
//! limited and shared by concurrent callers — when a token names an unknown `kid`, kept through an
//! outage for the stale window and then refused (fail closed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use mcpgate_config::{Algorithm, JwksRefresh, JwksSource};
use url::Url;

use crate::error::AuthErrorKind;
use crate::fetch::{self, MAX_DOCUMENT};
use crate::keys::{KeySet, Lookup, VerifyKey};

/// When no `Cache-Control: max-age` is sent, refresh this often (clamped to the floor/ceiling).
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Keys as of the last successful fetch.
pub(crate) struct KeyState {
    pub set: KeySet,
    /// Increments with every successful fetch; lets waiters see that someone else refreshed.
    pub generation: u64,
    /// After this instant the keys are too old to trust (refresh interval + stale window).
    pub usable_until: Instant,
}

/// An issuer's JWKS and the machinery that keeps it current.
pub(crate) struct IssuerKeys {
    issuer: String,
    source: JwksSource,
    refresh: JwksRefresh,
    http: reqwest::Client,
    state: ArcSwapOption<KeyState>,
    generation: AtomicU64,
    /// The JWKS URL found by discovery (cleared on failure so the next attempt rediscovers).
    discovered: Mutex<Option<Url>>,
    /// Serialises fetches: concurrent unknown-`kid` refetches share one request.
    fetch_lock: tokio::sync::Mutex<()>,
    /// When the last unknown-`kid` refetch happened: those, and only those, are rate limited,
    /// so a scheduled refresh just before a rotation cannot delay picking up the new key.
    last_unknown_kid_fetch: Mutex<Option<Instant>>,
    fetches: AtomicU64,
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
            generation: AtomicU64::new(0),
            discovered: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            last_unknown_kid_fetch: Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// True once keys have been fetched successfully at least once.
    pub fn has_keys(&self) -> bool {
        self.state.load().is_some()
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

    /// The verification key for a token's `kid`/`alg`, refetching once if the `kid` is unknown.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyKey>, AuthErrorKind> {
        let seen = match self.usable() {
            Some(state) => match state.set.find(kid, alg) {
                Lookup::Found(k) => return Ok(k),
                Lookup::Mismatch => return Err(AuthErrorKind::KeyMismatch),
                Lookup::NotFound => Some(state.generation),
            },
            None => None,
        };
        self.refetch_rate_limited(seen).await;
        match self.usable() {
            None => Err(AuthErrorKind::KeysUnavailable),
            Some(state) => match state.set.find(kid, alg) {
                Lookup::Found(k) => Ok(k),
                Lookup::Mismatch => Err(AuthErrorKind::KeyMismatch),
                Lookup::NotFound => Err(AuthErrorKind::UnknownKey),
            },
        }
    }

    /// Refetch unless someone refreshed since generation `seen`, or a fetch happened within the
    /// cooldown. Concurrent callers queue on one lock and reuse the first caller's result.
    async fn refetch_rate_limited(&self, seen: Option<u64>) {
        let _guard = self.fetch_lock.lock().await;
        let someone_refreshed = match (self.state.load_full(), seen) {
            (Some(state), Some(seen)) => state.generation != seen,
            (Some(state), None) => Instant::now() <= state.usable_until,
            (None, _) => false,
        };
        if someone_refreshed {
            return;
        }
        {
            let mut last = lock(&self.last_unknown_kid_fetch);
            if last.is_some_and(|t| t.elapsed() < self.refresh.unknown_kid_cooldown) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.fetch_locked().await {
            tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refetch failed");
        }
    }

    /// One fetch under the lock (used by the background loop). Returns when to refresh next.
    pub async fn refresh_now(&self) -> Result<Duration, String> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<Duration, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (doc, max_age) = match &self.source {
            JwksSource::File(path) => {
                let bytes = read_file_capped(path).await?;
                let limits = mcpgate_json::Limits {
                    max_depth: 32,
                    max_bytes: MAX_DOCUMENT,
                };
                let doc = mcpgate_json::parse_object(&bytes, limits)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                (doc, None)
            }
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
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(issuer = %self.issuer, keys = set.len(), skipped = set.skipped, ?interval, "JWKS loaded");
        self.state.store(Some(Arc::new(KeyState {
            set,
            generation,
            usable_until: Instant::now() + interval + self.refresh.stale_window,
        })));
        Ok(interval)
    }

    async fn get(
        &self,
        url: Url,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, Option<Duration>), String> {
        let f = fetch::json_object(self.http.get(url), self.refresh.timeout, MAX_DOCUMENT).await?;
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
}
