//! Rate limits for the gateway: GCRA decisions ([`gcra`]), hashed budget keys from request facts
//! ([`key`]), the configured rules and the decision over them ([`rules`]), the in-process store
//! ([`memory`]) and the IETF `RateLimit` headers ([`headers`]). Pure: the proxy wires it, and
//! `mcpgate-store` implements [`Store`] on Redis for budgets shared by every replica.

pub mod answer;
pub mod gcra;
pub mod headers;
pub mod key;
pub mod memory;
pub mod rules;

use async_trait::async_trait;

pub use gcra::{Decision, Limit};
pub use key::{budget_key, client_ip, BudgetKey, Facts};
pub use memory::MemoryStore;
pub use rules::{Event, Limiter, Observe, RuleState, Stage, Verdict, UNAUTHENTICATED};

/// Whether a check spends from the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Charge one request (when allowed).
    Consume,
    /// Only say whether one more request would be allowed.
    Peek,
}

/// A store could not decide (unreachable, too slow, a script error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreFailure {
    /// Stable snake_case reason for logs (`store_timeout`, `store_error`).
    pub reason: &'static str,
    pub message: String,
}

/// Where budgets (one TAT per key) are kept and decided on, atomically per key.
#[async_trait]
pub trait Store: Send + Sync {
    async fn check(
        &self,
        key: &BudgetKey,
        limit: Limit,
        charge: Charge,
    ) -> Result<Decision, StoreFailure>;
}
