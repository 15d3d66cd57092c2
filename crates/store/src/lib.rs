//! State shared by gateway replicas: one Redis connection per process (`redis://`, or `rediss://`
//! with TLS on the process-wide rustls provider), reconnecting by itself, with every command
//! bounded in time so a slow or absent Redis turns into a typed error the caller decides on
//! (`on_store_error`), never a hung request. Session bindings in Redis: `sessions`.

pub mod login;
pub mod sessions;

pub mod ratelimit;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Why a shared-state operation did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid redis URL: {0}")]
    Url(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl StoreError {
    /// Stable snake_case reason for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Url(_) => "store_url",
            StoreError::Timeout(_) => "store_timeout",
            StoreError::Redis(_) => "store_error",
        }
    }
}

/// A shared Redis connection. Cheap to clone; commands from all clones are pipelined on one
/// multiplexed connection, which the manager re-establishes after Redis restarts.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    timeout: Duration,
    /// What the connection serves (`sessions`, `rate_limits`): the observer's label.
    purpose: &'static str,
}

/// Told about every Redis round trip — its purpose, time and outcome — so the gateway can meter
/// Redis without this crate knowing about Prometheus. Installed once per process.
pub trait StoreObserver: Send + Sync {
    fn redis_call(&self, purpose: &'static str, elapsed: Duration, error: Option<&StoreError>);
}

static OBSERVER: std::sync::OnceLock<Box<dyn StoreObserver>> = std::sync::OnceLock::new();

/// Install the process's observer; later calls are ignored.
pub fn set_observer(observer: Box<dyn StoreObserver>) {
    let _ = OBSERVER.set(observer);
}

impl RedisStore {
    /// Connect to `url` (`redis://host:port/db` or `rediss://…`). Fails when the URL is invalid
    /// or Redis cannot be reached within `timeout`.
    pub async fn connect(
        url: &str,
        timeout: Duration,
        purpose: &'static str,
    ) -> Result<RedisStore, StoreError> {
        check_url(url)?;
        let client = redis::Client::open(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn =
            tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| StoreError::Timeout(timeout))??;
        Ok(RedisStore {
            conn,
            timeout,
            purpose,
        })
    }

    /// The connection, for commands and scripts; run them through [`RedisStore::bounded`].
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Run one Redis operation under the store's timeout.
    pub async fn bounded<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.timeout, op)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))
            .and_then(|r| r.map_err(StoreError::from));
        if let Some(o) = OBSERVER.get() {
            o.redis_call(self.purpose, started.elapsed(), result.as_ref().err());
        }
        result
    }
}

/// Only the two schemes we support; `check` reports anything else with the key path.
pub fn check_url(url: &str) -> Result<(), StoreError> {
    let parsed = url::Url::parse(url).map_err(|e| StoreError::Url(e.to_string()))?;
    match parsed.scheme() {
        "redis" | "rediss" if parsed.host_str().is_some() => Ok(()),
        "redis" | "rediss" => Err(StoreError::Url("no host".into())),
        other => Err(StoreError::Url(format!(
            "scheme {other:?}: expected redis:// or rediss://"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_redis_urls_with_a_host_are_accepted() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("rediss://cache.internal:6380").is_ok());
        for bad in [
            "http://x",
            "redis://",
            "127.0.0.1:6379",
            "unix:///tmp/r.sock",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = RedisStore::connect(
            &format!("redis://127.0.0.1:{port}/0"),
            Duration::from_millis(300),
            "test",
        )
        .await;
        assert!(r.is_err());
    }
}
