//! The generic cell rate algorithm (GCRA, ITU-T I.371): one stored number per budget, the
//! theoretical arrival time (TAT) of the next request. A request is allowed when, once charged,
//! the TAT runs at most `burst` emission intervals ahead of now. The same arithmetic runs in the
//! memory store and, as Lua, in Redis (`mcpgate-store`), so both answer alike.

use std::time::Duration;

use mcpgate_config::Budget;

/// A budget in the algorithm's terms, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Time one request "costs": the period divided by the count (≥ 1 µs).
    pub interval_us: u64,
    /// Requests allowed back to back from a full budget (≥ 1).
    pub burst: u32,
}

impl Limit {
    pub fn new(count: u32, per: Duration, burst: u32) -> Limit {
        let per_us = u64::try_from(per.as_micros()).unwrap_or(u64::MAX);
        Limit {
            interval_us: (per_us / u64::from(count.max(1))).max(1),
            burst: burst.max(1),
        }
    }

    pub fn from_budget(b: &Budget) -> Limit {
        Limit::new(b.count, b.per, b.burst)
    }

    /// How far the TAT may run ahead of now: the time a full burst takes to earn back.
    pub fn window_us(&self) -> u64 {
        self.interval_us.saturating_mul(u64::from(self.burst))
    }
}

/// What one decision says, in the terms the headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests still allowed right now after this one (0 when refused).
    pub remaining: u32,
    /// When a refused request would be allowed (zero when allowed).
    pub retry_after: Duration,
    /// When the whole burst is available again.
    pub reset: Duration,
}

impl Decision {
    /// From the three numbers both stores produce: allowed, µs until allowed, µs until full.
    pub fn from_parts(limit: Limit, allowed: bool, retry_after_us: u64, reset_us: u64) -> Decision {
        let remaining = if allowed {
            let spare = limit.window_us().saturating_sub(reset_us) / limit.interval_us;
            u32::try_from(spare).unwrap_or(u32::MAX)
        } else {
            0
        };
        Decision {
            allowed,
            remaining,
            retry_after: Duration::from_micros(retry_after_us),
            reset: Duration::from_micros(reset_us),
        }
    }
}

/// Charge one request against the stored TAT (`None`: never seen or expired) at `now` (µs).
/// Returns the decision and, when allowed, the TAT to store (it may expire at that instant:
/// a TAT in the past means a full budget, the same as no TAT).
pub fn decide(tat: Option<u64>, now: u64, limit: Limit) -> (Decision, Option<u64>) {
    let base = tat.map_or(now, |t| t.max(now));
    let new_tat = base.saturating_add(limit.interval_us);
    let ahead = new_tat - now;
    if ahead > limit.window_us() {
        let retry = ahead - limit.window_us();
        return (Decision::from_parts(limit, false, retry, base - now), None);
    }
    (Decision::from_parts(limit, true, 0, ahead), Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    /// 60/min, burst 5: one request per second, five at once.
    fn limit() -> Limit {
        Limit::new(60, Duration::from_secs(60), 5)
    }

    /// Run `n` requests at `now`, returning the decisions and the TAT afterwards.
    fn run(mut tat: Option<u64>, now: u64, n: usize) -> (Vec<Decision>, Option<u64>) {
        let mut out = Vec::new();
        for _ in 0..n {
            let (d, next) = decide(tat, now, limit());
            tat = next.or(tat);
            out.push(d);
        }
        (out, tat)
    }

    #[test]
    fn a_full_budget_allows_exactly_the_burst_at_once() {
        let (ds, _) = run(None, 100 * S, 6);
        let remaining: Vec<u32> = ds.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [4, 3, 2, 1, 0, 0]);
        assert!(ds[..5].iter().all(|d| d.allowed));
        assert!(!ds[5].allowed);
    }

    #[test]
    fn a_refusal_says_exactly_when_to_retry_and_when_the_budget_is_full() {
        let (ds, tat) = run(None, 100 * S, 6);
        assert_eq!(ds[5].retry_after, Duration::from_secs(1));
        assert_eq!(ds[5].reset, Duration::from_secs(5));
        // 400 ms later the next slot is 600 ms away.
        let (d, _) = decide(tat, 100 * S + 400_000, limit());
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(600));
        // At exactly the retry time, one request passes and the next is refused again.
        let (d, tat2) = decide(tat, 101 * S, limit());
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let (d, _) = decide(tat2, 101 * S, limit());
        assert!(!d.allowed);
    }

    #[test]
    fn the_steady_rate_is_one_request_per_interval() {
        let mut tat = None;
        // Spend the burst, then one request per second is allowed forever, and no more.
        let (_, t) = run(tat, 0, 5);
        tat = t;
        for sec in 1..=100u64 {
            let (d, t) = decide(tat, sec * S, limit());
            assert!(d.allowed, "second {sec}");
            tat = t;
            let (extra, _) = decide(tat, sec * S, limit());
            assert!(!extra.allowed, "second {sec}");
        }
    }

    #[test]
    fn an_idle_budget_refills_to_the_burst_and_no_further() {
        let (_, tat) = run(None, 0, 5);
        let (ds, _) = run(tat, 3600 * S, 6);
        assert_eq!(ds.iter().filter(|d| d.allowed).count(), 5);
    }

    #[test]
    fn a_refusal_does_not_charge_the_budget() {
        let (_, tat) = run(None, 0, 5);
        for _ in 0..1000 {
            let (d, next) = decide(tat, 0, limit());
            assert!(!d.allowed && next.is_none());
        }
        assert!(decide(tat, S, limit()).0.allowed);
    }

    #[test]
    fn rates_become_intervals() {
        assert_eq!(
            Limit::new(600, Duration::from_secs(60), 100).interval_us,
            100_000
        );
        assert_eq!(
            Limit::new(3, Duration::from_secs(1), 1).interval_us,
            333_333
        );
        assert_eq!(
            Limit::new(600, Duration::from_secs(60), 100).window_us(),
            10 * S
        );
    }
}
