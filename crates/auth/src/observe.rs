//! What token validation reports for metrics: cache hits and misses, introspection calls and
//! their latency (JWKS fetches are read from the validator: [`crate::JwksStats`]). The auth crate knows no metrics library; the
//! gateway installs one [`AuthObserver`] per process and turns these calls into counters.

use std::sync::OnceLock;
use std::time::Duration;

/// Which cache a token lookup consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCache {
    /// Verified JWTs.
    Jwt,
    /// Introspection answers (per issuer).
    Introspection,
}

impl TokenCache {
    pub fn label(self) -> &'static str {
        match self {
            TokenCache::Jwt => "jwt",
            TokenCache::Introspection => "introspection",
        }
    }
}

/// How one introspection call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The IdP answered (active or not).
    Answered,
    /// No usable answer: network error, timeout, bad status or body.
    Failed,
    /// Not sent: every call slot was busy.
    Shed,
}

impl CallOutcome {
    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Answered => "answered",
            CallOutcome::Failed => "failed",
            CallOutcome::Shed => "shed",
        }
    }
}

/// Receives validation events. Issuer names are the configured `issuers[].name` (bounded);
/// nothing here ever carries a token or a subject.
pub trait AuthObserver: Send + Sync {
    fn token_cache(&self, cache: TokenCache, hit: bool);
    fn introspection(&self, issuer: &str, outcome: CallOutcome, elapsed: Duration);
}

static OBSERVER: OnceLock<Box<dyn AuthObserver>> = OnceLock::new();

/// Install the process's observer (the first call wins; later ones are ignored).
pub fn set_observer(observer: Box<dyn AuthObserver>) {
    let _ = OBSERVER.set(observer);
}

pub(crate) fn with(f: impl FnOnce(&dyn AuthObserver)) {
    if let Some(o) = OBSERVER.get() {
        f(o.as_ref());
    }
}
