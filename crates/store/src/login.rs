//! The login front door's records in Redis, shared by every replica: pending logins, codes,
//! refresh-token families, consents and registered clients, each a key with its own expiry.
//! Single use is `GETDEL` (Redis ≥ 6.2): of two replicas redeeming one code, one gets it.

use std::time::Duration;

use async_trait::async_trait;
use mcpgate_login::{KvStore, StoreError as LoginStoreError};
use tokio::sync::OnceCell;

use crate::{RedisStore, StoreError};

/// Login records in Redis. Connects on first use (and again after a failed attempt).
pub struct RedisKv {
    url: String,
    timeout: Duration,
    store: OnceCell<RedisStore>,
}

impl RedisKv {
    /// `url` was checked by configuration validation; `timeout` bounds every command.
    pub fn new(url: impl Into<String>, timeout: Duration) -> RedisKv {
        RedisKv {
            url: url.into(),
            timeout,
            store: OnceCell::new(),
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, LoginStoreError> {
        let store = self
            .store
            .get_or_try_init(|| RedisStore::connect(&self.url, self.timeout, "login"))
            .await
            .map_err(failed)?;
        let mut conn = store.connection();
        store
            .bounded(cmd.query_async::<T>(&mut conn))
            .await
            .map_err(failed)
    }
}

fn failed(e: StoreError) -> LoginStoreError {
    LoginStoreError(format!("{}: {e}", e.reason()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn one(name: &str, key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(key);
    cmd
}

#[async_trait]
impl KvStore for RedisKv {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), LoginStoreError> {
        let mut cmd = one("SET", key);
        cmd.arg(value).arg("PX").arg(millis(ttl));
        self.run::<()>(cmd).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LoginStoreError> {
        self.run(one("GET", key)).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, LoginStoreError> {
        self.run(one("GETDEL", key)).await
    }

    async fn delete(&self, key: &str) -> Result<(), LoginStoreError> {
        self.run::<()>(one("DEL", key)).await
    }
}
