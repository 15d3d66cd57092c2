//! Rate-limit budgets in Redis, shared by every replica: one Lua script per decision does the
//! GCRA of `mcpgate_ratelimit::gcra` atomically in one round trip. Time is Redis's own (`TIME`),
//! so replicas with skewed clocks agree; the TAT expires (`PX`) the moment the budget is whole
//! again, so idle keys cost nothing; each key carries its hash in a `{hash tag}`, so on Redis
//! Cluster every operation on a budget stays in one slot.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mcpgate_ratelimit::{BudgetKey, Charge, Decision, Limit, Store, StoreFailure};
use redis::Script;
use tokio::sync::OnceCell;

use crate::{RedisStore, StoreError};

/// KEYS[1]: the budget; ARGV: interval µs, burst, 1 to charge / 0 to peek.
/// Returns {allowed, µs until allowed, µs until the whole burst is back}.
/// Redis ≥ 5 replicates a script's effects, so reading `TIME` before a write is allowed.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat + interval - now
if ahead > window then
  return {0, ahead - window, tat - now}
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', math.ceil(ahead / 1000))
end
return {1, 0, ahead}
";

/// After a failed connection attempt, decisions fail at once for this long instead of each
/// trying again: while Redis is gone, requests cost no connection storm.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Budgets in Redis. Connects on first use (the gateway starts and serves, following
/// `on_store_error`, while Redis is still away); the connection then re-establishes itself.
pub struct RedisRateStore {
    url: String,
    timeout: Duration,
    store: OnceCell<RedisStore>,
    last_failure: Mutex<Option<Instant>>,
    script: Script,
}

impl RedisRateStore {
    pub fn new(url: &str, timeout: Duration) -> RedisRateStore {
        RedisRateStore {
            url: url.to_owned(),
            timeout,
            store: OnceCell::new(),
            last_failure: Mutex::new(None),
            script: Script::new(GCRA_LUA),
        }
    }

    /// The connection, connecting first if needed (at most one attempt per pause).
    async fn store(&self) -> Result<&RedisStore, StoreFailure> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let paused = self
            .last_failure
            .lock()
            .map(|t| t.is_some_and(|t| t.elapsed() < RECONNECT_PAUSE))
            .unwrap_or(false);
        if paused {
            return Err(StoreFailure {
                reason: "store_unreachable",
                message: format!("redis unreachable; next attempt within {RECONNECT_PAUSE:?}"),
            });
        }
        let connected = self
            .store
            .get_or_try_init(|| RedisStore::connect(&self.url, self.timeout, "rate_limits"))
            .await;
        if connected.is_err() {
            if let Ok(mut t) = self.last_failure.lock() {
                *t = Some(Instant::now());
            }
        }
        connected.map_err(failure)
    }

    /// `mcpgate:rl:{<hash>}`: the hash tag is the whole hash, so a budget's slot is its own.
    pub fn redis_key(key: &BudgetKey) -> String {
        format!("mcpgate:rl:{{{}}}", key.0)
    }
}

#[async_trait]
impl Store for RedisRateStore {
    async fn check(
        &self,
        key: &BudgetKey,
        limit: Limit,
        charge: Charge,
    ) -> Result<Decision, StoreFailure> {
        let store = self.store().await?;
        let mut conn = store.connection();
        let mut invocation = self.script.key(Self::redis_key(key));
        invocation
            .arg(limit.interval_us)
            .arg(limit.burst)
            .arg(u8::from(charge == Charge::Consume));
        // EVALSHA, falling back to EVAL once after a Redis restart forgot the script.
        let (allowed, retry_us, reset_us): (u8, u64, u64) = store
            .bounded(invocation.invoke_async(&mut conn))
            .await
            .map_err(failure)?;
        Ok(Decision::from_parts(
            limit,
            allowed == 1,
            retry_us,
            reset_us,
        ))
    }
}

fn failure(e: StoreError) -> StoreFailure {
    StoreFailure {
        reason: e.reason(),
        message: e.to_string(),
    }
}
