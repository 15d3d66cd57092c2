//! Session bindings in Redis, shared by every replica: one key per session (the SHA-256 of route
//! and session id — ids are bearer secrets and never stored), the owner as its value, the route's
//! idle time as its TTL, refreshed whenever the owner uses it. An operator revokes a session by
//! deleting its key. Every failure is an error the caller refuses on (fail closed).

use std::time::Duration;

use async_trait::async_trait;
use mcpgate_mcp::session::{SessionCheck, SessionOwner, SessionStore, StoreUnavailable};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::{RedisStore, StoreError};

/// Prefix of every binding's key.
pub const KEY_PREFIX: &str = "mcpgate:session:";

/// Check and touch in one round trip, atomically: 0 unbound, 1 owner (TTL refreshed), 2 another
/// owner (TTL untouched: probing someone else's session does not keep it alive).
const CHECK: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 2
";

/// Bindings in Redis. Connects on first use (and again after a failed attempt), so a gateway
/// starts while Redis is down and refuses sessions until it answers.
pub struct RedisSessionStore {
    url: String,
    timeout: Duration,
    store: OnceCell<RedisStore>,
    check: redis::Script,
}

impl RedisSessionStore {
    /// `url` was checked by configuration validation; `timeout` bounds every command.
    pub fn new(url: impl Into<String>, timeout: Duration) -> RedisSessionStore {
        RedisSessionStore {
            url: url.into(),
            timeout,
            store: OnceCell::new(),
            check: redis::Script::new(CHECK),
        }
    }

    async fn store(&self) -> Result<&RedisStore, StoreError> {
        self.store
            .get_or_try_init(|| RedisStore::connect(&self.url, self.timeout, "sessions"))
            .await
    }
}

/// The Redis key of a [`mcpgate_mcp::session::session_key`].
pub fn redis_key(session_key: &str) -> String {
    format!(
        "{KEY_PREFIX}{}",
        hex::encode(Sha256::digest(session_key.as_bytes()))
    )
}

/// The stored owner: the issuer's length first, so no issuer/subject pair reads as another.
fn owner_value(owner: &SessionOwner) -> String {
    format!("{}:{}{}", owner.issuer.len(), owner.issuer, owner.subject)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn unavailable(e: StoreError) -> StoreUnavailable {
    StoreUnavailable {
        reason: e.reason(),
        detail: e.to_string(),
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn bind(
        &self,
        session_id: &str,
        owner: SessionOwner,
        idle: Duration,
    ) -> Result<(), StoreUnavailable> {
        let store = self.store().await.map_err(unavailable)?;
        let mut conn = store.connection();
        let mut cmd = redis::cmd("SET");
        cmd.arg(redis_key(session_id))
            .arg(owner_value(&owner))
            .arg("PX")
            .arg(millis(idle));
        store
            .bounded(cmd.query_async::<()>(&mut conn))
            .await
            .map_err(unavailable)
    }

    async fn check(
        &self,
        session_id: &str,
        owner: &SessionOwner,
        idle: Duration,
    ) -> Result<SessionCheck, StoreUnavailable> {
        let store = self.store().await.map_err(unavailable)?;
        let mut conn = store.connection();
        let mut call = self.check.key(redis_key(session_id));
        call.arg(owner_value(owner)).arg(millis(idle));
        let answer: i64 = store
            .bounded(call.invoke_async(&mut conn))
            .await
            .map_err(unavailable)?;
        Ok(match answer {
            1 => SessionCheck::Owner,
            0 => SessionCheck::Unbound,
            _ => SessionCheck::Mismatch,
        })
    }

    async fn remove(&self, session_id: &str) -> Result<(), StoreUnavailable> {
        let store = self.store().await.map_err(unavailable)?;
        let mut conn = store.connection();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(redis_key(session_id));
        store
            .bounded(cmd.query_async::<()>(&mut conn))
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(issuer: &str, subject: &str) -> SessionOwner {
        SessionOwner {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    #[test]
    fn keys_hide_the_session_id() {
        let k = redis_key("main\u{0}secret-session");
        assert!(k.starts_with(KEY_PREFIX));
        assert!(!k.contains("secret"));
        assert_eq!(k.len(), KEY_PREFIX.len() + 64);
        assert_ne!(k, redis_key("other\u{0}secret-session"), "per route");
    }

    #[test]
    fn owners_cannot_be_spelled_as_each_other() {
        assert_ne!(
            owner_value(&who("https://a", "bsub:x")),
            owner_value(&who("https://ab", "sub:x"))
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_closed() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = RedisSessionStore::new(
            format!("redis://127.0.0.1:{port}/0"),
            Duration::from_millis(300),
        );
        let idle = Duration::from_secs(60);
        let alice = who("https://idp", "sub:alice");
        assert!(s.bind("k", alice.clone(), idle).await.is_err());
        let e = s.check("k", &alice, idle).await.unwrap_err();
        assert!(e.reason.starts_with("store_"), "{e}");
        assert!(s.remove("k").await.is_err());
    }
}
