//! Where the front door keeps what outlives one request — pending logins, codes, refresh-token
//! families, consents, registered clients — as expiring key/value records. Keys are hashes of
//! the secrets they stand for, never the secrets. Memory serves one replica; `mcpgate-store`
//! implements [`KvStore`] on Redis for several.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A store that could not answer: the front door fails closed (503 / a clear page).
#[derive(Debug, Clone, thiserror::Error)]
#[error("login store unavailable: {0}")]
pub struct StoreError(pub String);

/// Expiring records with an atomic take (single-use codes and refresh tokens).
#[async_trait]
pub trait KvStore: Send + Sync {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads and deletes in one step: of two concurrent takes, one gets the value.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Typed records over a [`KvStore`] (JSON), one key prefix per kind.
#[derive(Clone)]
pub struct Records {
    kv: Arc<dyn KvStore>,
}

impl Records {
    pub fn new(kv: Arc<dyn KvStore>) -> Records {
        Records { kv }
    }

    pub async fn put<T: Serialize>(
        &self,
        kind: Kind,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError(e.to_string()))?;
        self.kv.put(&kind.key(id), bytes, ttl).await
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        decode(self.kv.get(&kind.key(id)).await?)
    }

    pub async fn take<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        decode(self.kv.take(&kind.key(id)).await?)
    }

    pub async fn exists(&self, kind: Kind, id: &str) -> Result<bool, StoreError> {
        Ok(self.kv.get(&kind.key(id)).await?.is_some())
    }

    pub async fn delete(&self, kind: Kind, id: &str) -> Result<(), StoreError> {
        self.kv.delete(&kind.key(id)).await
    }
}

/// A record that no longer decodes (written by another version) counts as absent: fail closed.
fn decode<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// The kinds of record, each under its own key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A login between `/authorize` and the code: by the hash of the browser cookie's id.
    Pending,
    /// An authorization code, by its hash (single use).
    Code,
    /// A used code, by its hash: a replay revokes what the code issued (RFC 6749 §4.1.2).
    UsedCode,
    /// A refresh token, by its hash (single use: rotated at every refresh).
    Refresh,
    /// A rotated-out refresh token, by its hash: reuse revokes the family (RFC 9700 §4.14.2).
    UsedRefresh,
    /// A refresh-token family (one login of one client), by its id.
    Family,
    /// A remembered consent, by the hash of user, client, redirect and scopes.
    Consent,
    /// A dynamically registered client, by its id.
    Client,
}

impl Kind {
    fn key(self, id: &str) -> String {
        let prefix = match self {
            Kind::Pending => "pending",
            Kind::Code => "code",
            Kind::UsedCode => "used-code",
            Kind::Refresh => "refresh",
            Kind::UsedRefresh => "used-refresh",
            Kind::Family => "family",
            Kind::Consent => "consent",
            Kind::Client => "client",
        };
        format!("mcpgate:login:{prefix}:{id}")
    }
}

/// Records in this process's memory, each expiring on its own TTL; bounded so that a flood of
/// `/authorize` or `/register` calls cannot grow it without limit.
pub struct MemoryKv {
    cache: moka::sync::Cache<String, (Arc<Vec<u8>>, Instant)>,
}

/// Per-entry expiry: the deadline stored with the value.
struct Deadline;

impl moka::Expiry<String, (Arc<Vec<u8>>, Instant)> for Deadline {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &(Arc<Vec<u8>>, Instant),
        now: Instant,
    ) -> Option<Duration> {
        Some(value.1.saturating_duration_since(now))
    }
}

impl MemoryKv {
    pub fn new(max_entries: u64) -> MemoryKv {
        MemoryKv {
            cache: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(Deadline)
                .build(),
        }
    }

    fn live(&self, entry: Option<(Arc<Vec<u8>>, Instant)>) -> Option<Vec<u8>> {
        entry
            .filter(|(_, deadline)| *deadline > Instant::now())
            .map(|(v, _)| v.as_ref().clone())
    }
}

#[async_trait]
impl KvStore for MemoryKv {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        let deadline = Instant::now() + ttl;
        self.cache
            .insert(key.to_owned(), (Arc::new(value), deadline));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.live(self.cache.get(key)))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.live(self.cache.remove(key)))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.cache.invalidate(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_take_is_single_use() {
        let kv = MemoryKv::new(100);
        kv.put("k", b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(kv.take("k").await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(kv.take("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_record_is_absent() {
        let kv = MemoryKv::new(100);
        kv.put("k", b"v".to_vec(), Duration::ZERO).await.unwrap();
        assert_eq!(kv.get("k").await.unwrap(), None);
        assert_eq!(kv.take("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn records_round_trip_by_kind() {
        let r = Records::new(Arc::new(MemoryKv::new(100)));
        let ttl = Duration::from_secs(60);
        r.put(Kind::Code, "a", &vec![1, 2], ttl).await.unwrap();
        assert_eq!(r.get::<Vec<u8>>(Kind::Refresh, "a").await.unwrap(), None);
        assert_eq!(
            r.take::<Vec<u8>>(Kind::Code, "a").await.unwrap(),
            Some(vec![1, 2])
        );
    }
}
