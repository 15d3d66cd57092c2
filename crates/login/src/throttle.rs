//! Per-address budgets for the endpoints anyone may call and that create state (`/authorize`,
//! `/register`): a flood from one address cannot fill the store or make us fetch on its behalf.

use std::net::IpAddr;
use std::time::Duration;

use mcpgate_ratelimit::{BudgetKey, Charge, Limit, MemoryStore, Store};

/// Which budget a request spends from.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Starting a login: a person needs a handful a minute.
    Authorize,
    /// Registering a client: a client registers once.
    Register,
}

impl Budget {
    fn limit(self) -> Limit {
        match self {
            Budget::Authorize => Limit::new(30, Duration::from_secs(60), 30),
            Budget::Register => Limit::new(10, Duration::from_secs(3600), 10),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Budget::Authorize => "login-authorize",
            Budget::Register => "login-register",
        }
    }
}

/// In-process budgets (bounded): each replica throttles on its own, which bounds the total.
pub struct Throttle {
    store: MemoryStore,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            store: MemoryStore::new(100_000),
        }
    }
}

impl Throttle {
    /// Whether `ip` may spend one more from `budget`. IPv6 addresses share a /64 (one host
    /// owns a whole /64 and can rotate within it). No address (a Unix socket): allowed.
    pub async fn allow(&self, budget: Budget, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else {
            return true;
        };
        let key = BudgetKey(format!("{}:{}", budget.name(), prefix(ip)));
        match self
            .store
            .check(&key, budget.limit(), Charge::Consume)
            .await
        {
            Ok(d) => d.allowed,
            Err(_) => false,
        }
    }
}

/// The address a budget is kept for: IPv4 as is, IPv6 by its /64.
fn prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_over_its_budget_is_refused_and_others_are_not() {
        let t = Throttle::default();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::ffff".parse().unwrap();
        for _ in 0..10 {
            assert!(t.allow(Budget::Register, Some(a)).await);
        }
        assert!(!t.allow(Budget::Register, Some(same_64)).await);
        assert!(
            t.allow(Budget::Register, Some("2001:db9::1".parse().unwrap()))
                .await
        );
        assert!(t.allow(Budget::Authorize, Some(a)).await);
    }
}
