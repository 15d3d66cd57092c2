//! RFC 7662 token introspection: one client per issuer that asks the IdP whether an opaque token
//! is active, with at most `max_concurrent` calls in flight. Results are cached by the validator;
//! this module only speaks the protocol and bounds the load it puts on the IdP.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mcpgate_config::{ClientAuthMethod, Introspection};
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, SemaphorePermit};
use url::form_urlencoded;

use crate::fetch::{self, MAX_INTROSPECTION};

/// How long a request waits for a free introspection slot before it is shed with a 503. Short on
/// purpose: a queue that outlives the client's patience only moves the overload into our memory.
const QUEUE_WAIT: Duration = Duration::from_millis(500);

/// Talks to one introspection endpoint.
pub(crate) struct Introspector {
    pub config: Introspection,
    http: reqwest::Client,
    slots: CallBound,
}

/// What the endpoint said.
pub(crate) enum Answer {
    /// `active: true`, with the response's members.
    Active(Map<String, Value>),
    /// `active` false or absent.
    Inactive,
}

/// Why there is no answer. Either way the caller fails closed with 503, never treating the token
/// as inactive or active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Every slot stayed busy for the whole queue wait; the IdP was not asked.
    Busy,
    /// Down, slow, non-200 or garbage.
    Unavailable(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Busy => f.write_str("every introspection slot stayed busy (max_concurrent)"),
            Failure::Unavailable(why) => f.write_str(why),
        }
    }
}

/// At most `n` calls in flight at once; a caller waits at most `wait` for a slot, in arrival
/// order (tokio's semaphore is fair), so a burst of distinct junk bearer strings reaches the IdP
/// `n` at a time and the rest are shed instead of piling up.
pub(crate) struct CallBound {
    slots: Semaphore,
    wait: Duration,
}

impl CallBound {
    pub fn new(n: usize, wait: Duration) -> CallBound {
        CallBound {
            slots: Semaphore::new(n),
            wait,
        }
    }

    /// A slot, held until the returned permit is dropped, or `Busy` after `wait`.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, Failure> {
        match tokio::time::timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out (the semaphore is never closed, so that is the only other case).
            _ => Err(Failure::Busy),
        }
    }
}

impl Introspector {
    pub fn new(config: Introspection, http: reqwest::Client) -> Introspector {
        let slots = CallBound::new(config.max_concurrent, QUEUE_WAIT);
        Introspector {
            config,
            http,
            slots,
        }
    }

    /// Ask about `token`, once a call slot is free.
    pub async fn introspect(&self, token: &str) -> Result<Answer, Failure> {
        let _slot = self.slots.enter().await?;
        let req = self.request(token);
        let got = fetch::json_object(req, self.config.timeout, MAX_INTROSPECTION)
            .await
            .map_err(Failure::Unavailable)?;
        Ok(match got.body.get("active") {
            Some(Value::Bool(true)) => Answer::Active(got.body),
            _ => Answer::Inactive,
        })
    }

    /// The introspection request (built synchronously: the form serializer is not `Send`).
    fn request(&self, token: &str) -> reqwest::RequestBuilder {
        let c = &self.config;
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", token)
            .append_pair("token_type_hint", "access_token");
        let mut req = self.http.post(c.endpoint.clone());
        match c.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: form-encode id and secret before Basic encoding.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let creds = format!("{}:{}", enc(&c.client_id), enc(c.client_secret.expose()));
                req = req.header(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(creds)),
                );
            }
            ClientAuthMethod::ClientSecretPost => {
                form.append_pair("client_id", &c.client_id)
                    .append_pair("client_secret", c.client_secret.expose());
            }
        }
        req.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form.finish())
    }

    pub fn cache_ttl(&self) -> Duration {
        self.config.cache_ttl
    }

    pub fn negative_cache_ttl(&self) -> Duration {
        self.config.negative_cache_ttl
    }

    /// Whether an active answer without an audience may stand (the issuer opted in).
    pub fn accepts_missing_audience(&self) -> bool {
        self.config.accept_missing_audience
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_full_bound_sheds_after_the_wait_and_frees_on_drop() {
        let bound = CallBound::new(2, Duration::from_millis(50));
        let a = bound.enter().await.unwrap();
        let _b = bound.enter().await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(bound.enter().await.unwrap_err(), Failure::Busy);
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "waited first"
        );
        drop(a);
        assert!(bound.enter().await.is_ok(), "a released slot is reusable");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_than_n_in_flight() {
        let bound = Arc::new(CallBound::new(3, Duration::from_secs(5)));
        let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let (bound, now, max) = (bound.clone(), now.clone(), max.clone());
                tokio::spawn(async move {
                    let _slot = bound.enter().await.unwrap();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 3);
    }
}
