//! Budgets kept in this process: one TAT per key in a bounded cache. Each entry expires the
//! moment its TAT passes (a TAT in the past is a full budget, the same as no entry), and the
//! cache holds at most `max_keys` entries, so a flood of distinct keys (spoofed subjects, many
//! source addresses) costs bounded memory: the least useful entries are evicted — which gives
//! those callers a fresh budget, the price of the bound.
//!
//! Not `governor`: its keyed limiter grows a map until told to prune and does not expose the TAT,
//! which the headers need and which Redis must compute the same way.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::ops::compute::Op;
use moka::sync::Cache;
use moka::Expiry;

use crate::gcra::{decide, Decision, Limit};
use crate::key::BudgetKey;
use crate::{Charge, Store, StoreFailure};

/// Budgets in this process only (each replica counts its own).
pub struct MemoryStore {
    cache: Cache<String, u64>,
    epoch: Instant,
}

/// Expire each entry at its TAT (stored as µs since the store's epoch).
struct AtTat {
    epoch: Instant,
}

impl AtTat {
    fn until(&self, tat_us: u64, now: Instant) -> Option<Duration> {
        let at = self.epoch + Duration::from_micros(tat_us);
        Some(at.saturating_duration_since(now))
    }
}

impl Expiry<String, u64> for AtTat {
    fn expire_after_create(&self, _: &String, tat: &u64, now: Instant) -> Option<Duration> {
        self.until(*tat, now)
    }

    fn expire_after_update(
        &self,
        _: &String,
        tat: &u64,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.until(*tat, now)
    }
}

impl MemoryStore {
    pub fn new(max_keys: u64) -> MemoryStore {
        let epoch = Instant::now();
        MemoryStore {
            cache: Cache::builder()
                .max_capacity(max_keys)
                .expire_after(AtTat { epoch })
                .build(),
            epoch,
        }
    }

    /// Entries held now (after pending evictions are applied).
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Charge one request; the key's lock makes concurrent charges of one key serial.
    fn charge(&self, key: &BudgetKey, limit: Limit) -> Decision {
        let now = self.now_us();
        let mut decision = None;
        self.cache.entry(key.0.clone()).and_compute_with(|entry| {
            let (d, new_tat) = decide(entry.map(|e| e.into_value()), now, limit);
            decision = Some(d);
            new_tat.map_or(Op::Nop, Op::Put)
        });
        decision.unwrap_or_else(|| decide(None, now, limit).0)
    }

    fn peek(&self, key: &BudgetKey, limit: Limit) -> Decision {
        decide(self.cache.get(&key.0), self.now_us(), limit).0
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn check(
        &self,
        key: &BudgetKey,
        limit: Limit,
        charge: Charge,
    ) -> Result<Decision, StoreFailure> {
        Ok(match charge {
            Charge::Consume => self.charge(key, limit),
            Charge::Peek => self.peek(key, limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> BudgetKey {
        BudgetKey(format!("{i:032x}"))
    }

    /// One request an hour, two at once: nothing refills during a test.
    fn hourly() -> Limit {
        Limit::new(1, Duration::from_secs(3600), 2)
    }

    #[tokio::test]
    async fn each_key_has_its_own_budget() {
        let store = MemoryStore::new(100);
        for k in [key(1), key(2)] {
            let mut allowed = 0;
            for _ in 0..5 {
                allowed += usize::from(
                    store
                        .check(&k, hourly(), Charge::Consume)
                        .await
                        .unwrap()
                        .allowed,
                );
            }
            assert_eq!(allowed, 2);
        }
    }

    #[tokio::test]
    async fn a_peek_never_charges() {
        let store = MemoryStore::new(100);
        for _ in 0..10 {
            assert!(
                store
                    .check(&key(1), hourly(), Charge::Peek)
                    .await
                    .unwrap()
                    .allowed
            );
        }
        assert!(store.is_empty());
        store
            .check(&key(1), hourly(), Charge::Consume)
            .await
            .unwrap();
        store
            .check(&key(1), hourly(), Charge::Consume)
            .await
            .unwrap();
        assert!(
            !store
                .check(&key(1), hourly(), Charge::Peek)
                .await
                .unwrap()
                .allowed
        );
    }

    #[tokio::test]
    async fn a_flood_of_distinct_keys_stays_within_the_bound() {
        let store = MemoryStore::new(1_000);
        for i in 0..50_000 {
            store
                .check(&key(i), hourly(), Charge::Consume)
                .await
                .unwrap();
        }
        assert!(store.len() <= 1_000, "{} entries", store.len());
    }

    #[tokio::test]
    async fn entries_expire_once_their_budget_is_whole_again() {
        let store = MemoryStore::new(100);
        let fast = Limit::new(1000, Duration::from_secs(1), 1);
        store.check(&key(1), fast, Charge::Consume).await.unwrap();
        // The TAT is 1 ms ahead; poll until the entry is gone (no fixed sleep decides the test).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !store.is_empty() {
            assert!(Instant::now() < deadline, "entry never expired");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
