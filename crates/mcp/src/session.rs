//! Session binding: the principal that caused an upstream to mint an `Mcp-Session-Id` owns it;
//! anyone else presenting that id is treated as if it did not exist. Bindings live in a
//! [`SessionStore`] (this process's memory here; Redis in `mcpgate-store` so replicas share them)
//! or in the id itself ([`crate::seal`]). The in-memory store keys entries by the SHA-256 of the
//! session id (ids are bearer secrets) and forgets them after inactivity.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mcpgate_auth::Principal;
use sha2::{Digest, Sha256};

/// Who owns a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Nobody owns this id (never seen, or expired).
    Unbound,
    /// The caller owns it.
    Owner,
    /// Someone else owns it.
    Mismatch,
}

/// The session owner a principal stands for: its subject; without one (client-credentials
/// tokens introspected without `sub`, tokens with neither `sub` nor `client_id`) the token itself.
/// A `client_id` alone is never an owner: every user of one client would share its sessions.
pub fn owner(p: &Principal) -> SessionOwner {
    let subject = match &p.subject {
        Some(sub) => format!("sub:{sub}"),
        None => format!("token:{}", p.token_hash),
    };
    SessionOwner {
        issuer: p.issuer.clone(),
        subject,
    }
}

/// Session ids are unique per upstream, not across them: bind them per route.
pub fn session_key(route: &str, session_id: &str) -> String {
    format!("{route}\u{0}{session_id}")
}

/// The store could not answer; the caller refuses the request (fail closed), never binds.
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable ({reason}): {detail}")]
pub struct StoreUnavailable {
    /// The store's stable reason (`store_timeout`, `store_error`, ...), for logs.
    pub reason: &'static str,
    pub detail: String,
}

/// Where bindings live. `session_id` is a [`session_key`]; `idle` is the route's
/// `session_idle_timeout`, after which an unused binding is forgotten.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn bind(
        &self,
        session_id: &str,
        owner: SessionOwner,
        idle: Duration,
    ) -> Result<(), StoreUnavailable>;
    /// Checking a session the caller owns counts as activity.
    async fn check(
        &self,
        session_id: &str,
        owner: &SessionOwner,
        idle: Duration,
    ) -> Result<SessionCheck, StoreUnavailable>;
    async fn remove(&self, session_id: &str) -> Result<(), StoreUnavailable>;
}

/// How this gateway keeps who owns which session (configuration `sessions.mode`).
pub enum SessionBindings {
    /// Sealed into the id the client sees; nothing stored anywhere.
    Sealed(crate::seal::SessionSealer),
    /// Bound in a store under [`session_key`]s of the upstream's ids.
    Stored(Arc<dyn SessionStore>),
}

/// One binding and when its owner last used it.
struct Binding {
    owner: SessionOwner,
    idle: Duration,
    last_used: Mutex<Instant>,
}

/// Bindings in this process's memory.
pub struct MemorySessionStore {
    cache: moka::sync::Cache<[u8; 32], Arc<Binding>>,
}

impl MemorySessionStore {
    /// `idle`: the longest idle time of any route (each binding keeps its own route's).
    pub fn new(idle: Duration, max_entries: u64) -> MemorySessionStore {
        MemorySessionStore {
            // moka's own idle eviction reclaims memory; only the owner's use counts as activity
            // (checked below), so probing someone else's session cannot keep it alive.
            cache: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .time_to_idle(idle)
                .build(),
        }
    }

    fn key(session_id: &str) -> [u8; 32] {
        Sha256::digest(session_id.as_bytes()).into()
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn bind(
        &self,
        session_id: &str,
        owner: SessionOwner,
        idle: Duration,
    ) -> Result<(), StoreUnavailable> {
        let binding = Binding {
            owner,
            idle,
            last_used: Mutex::new(Instant::now()),
        };
        self.cache.insert(Self::key(session_id), Arc::new(binding));
        Ok(())
    }

    async fn check(
        &self,
        session_id: &str,
        owner: &SessionOwner,
        _idle: Duration,
    ) -> Result<SessionCheck, StoreUnavailable> {
        let key = Self::key(session_id);
        let Some(b) = self.cache.get(&key) else {
            return Ok(SessionCheck::Unbound);
        };
        let mut last = b.last_used.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() > b.idle {
            drop(last);
            self.cache.invalidate(&key);
            return Ok(SessionCheck::Unbound);
        }
        if b.owner == *owner {
            *last = Instant::now();
            Ok(SessionCheck::Owner)
        } else {
            Ok(SessionCheck::Mismatch)
        }
    }

    async fn remove(&self, session_id: &str) -> Result<(), StoreUnavailable> {
        self.cache.invalidate(&Self::key(session_id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    fn who(sub: &str) -> SessionOwner {
        SessionOwner {
            issuer: "https://idp".into(),
            subject: sub.into(),
        }
    }

    fn principal(sub: Option<&str>, client_id: Option<&str>, token_hash: &str) -> Principal {
        Principal {
            issuer: "https://idp".into(),
            issuer_name: "idp".into(),
            subject: sub.map(Into::into),
            client_id: client_id.map(Into::into),
            scopes: vec![],
            audience: vec![],
            expires_at: None,
            email: None,
            email_verified: false,
            groups: vec![],
            claims: Default::default(),
            token_hash: token_hash.into(),
        }
    }

    #[test]
    fn callers_without_a_subject_own_sessions_by_their_token_only() {
        let alice = owner(&principal(Some("alice"), Some("cli"), "aaaa"));
        assert_eq!(
            alice,
            owner(&principal(Some("alice"), Some("other"), "bbbb"))
        );
        // Two users of one client, neither with `sub`: not the same owner.
        let u1 = owner(&principal(None, Some("cli"), "1111"));
        let u2 = owner(&principal(None, Some("cli"), "2222"));
        assert_ne!(u1, u2);
        // Neither `sub` nor `client_id`: still an owner, of its own sessions only.
        assert_ne!(owner(&principal(None, None, "3333")), u1);
        // A subject that spells a token owner is still a subject.
        assert_ne!(owner(&principal(Some("token:1111"), None, "x")), u1);
    }

    #[tokio::test]
    async fn binds_checks_and_removes() {
        let s = MemorySessionStore::new(Duration::from_secs(60), 100);
        assert_eq!(
            s.check("sid", &who("alice"), IDLE).await.unwrap(),
            SessionCheck::Unbound
        );
        s.bind("sid", who("alice"), IDLE).await.unwrap();
        assert_eq!(
            s.check("sid", &who("alice"), IDLE).await.unwrap(),
            SessionCheck::Owner
        );
        assert_eq!(
            s.check("sid", &who("mallory"), IDLE).await.unwrap(),
            SessionCheck::Mismatch
        );
        let other_issuer = SessionOwner {
            issuer: "https://other".into(),
            subject: "alice".into(),
        };
        assert_eq!(
            s.check("sid", &other_issuer, IDLE).await.unwrap(),
            SessionCheck::Mismatch,
            "same subject, other issuer"
        );
        s.remove("sid").await.unwrap();
        assert_eq!(
            s.check("sid", &who("mallory"), IDLE).await.unwrap(),
            SessionCheck::Unbound
        );
    }

    #[tokio::test]
    async fn the_owners_use_keeps_a_binding_alive() {
        let s = MemorySessionStore::new(Duration::from_millis(300), 100);
        s.bind("sid", who("alice"), Duration::from_millis(300))
            .await
            .unwrap();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(900) {
            assert_eq!(
                s.check("sid", &who("alice"), IDLE).await.unwrap(),
                SessionCheck::Owner
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn bindings_expire_with_inactivity() {
        let s = MemorySessionStore::new(Duration::from_millis(300), 100);
        s.bind("sid", who("alice"), Duration::from_millis(300))
            .await
            .unwrap();
        let start = std::time::Instant::now();
        while s.check("sid", &who("mallory"), IDLE).await.unwrap() != SessionCheck::Unbound {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "binding never expired"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "expired too early"
        );
    }
}
