//! The IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers-10, Structured Field lists):
//! `RateLimit-Policy: "per-user";q=100;w=10` names each policy with its quota and window, and
//! `RateLimit: "per-user";r=0;t=4` says what is left and when it is whole again; `Retry-After`
//! (RFC 9110 §10.2.3) says when a refused request may be sent again.
//!
//! GCRA has no fixed windows, so the policy states the burst as the quota and the time a whole
//! burst takes to earn back as the window (600/min with burst 100 → `q=100;w=10`), which is the
//! same sustained rate. `t` is the time until the whole burst is available again.

use std::time::Duration;

use crate::gcra::{Decision, Limit};

/// One `RateLimit-Policy` list member. Rule names are checked by configuration to be tokens
/// (letters, digits, `_`, `-`, `.`), so they need no escaping inside the quoted string.
pub fn policy_item(name: &str, limit: Limit) -> String {
    let window = whole_seconds(Duration::from_micros(limit.window_us()));
    format!("\"{name}\";q={};w={window}", limit.burst)
}

/// One `RateLimit` list member.
pub fn state_item(name: &str, decision: &Decision) -> String {
    format!(
        "\"{name}\";r={};t={}",
        decision.remaining,
        whole_seconds(decision.reset)
    )
}

/// `Retry-After` delay-seconds: rounded up, so a client that waits exactly this long is allowed.
pub fn retry_after(decision: &Decision) -> String {
    whole_seconds(decision.retry_after).max(1).to_string()
}

/// Seconds rounded up (a client told 0 would retry at once and be refused again).
fn whole_seconds(d: Duration) -> u64 {
    d.as_micros()
        .div_ceil(1_000_000)
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra::decide;

    #[test]
    fn policy_states_the_burst_and_the_time_to_earn_it_back() {
        let l = Limit::new(600, Duration::from_secs(60), 100);
        assert_eq!(policy_item("per-user", l), "\"per-user\";q=100;w=10");
        let l = Limit::new(1, Duration::from_secs(3600), 1);
        assert_eq!(policy_item("hourly", l), "\"hourly\";q=1;w=3600");
    }

    #[test]
    fn a_refusal_has_no_remaining_and_rounds_times_up() {
        let l = Limit::new(60, Duration::from_secs(60), 5);
        let mut tat = None;
        for _ in 0..5 {
            tat = decide(tat, 0, l).1.or(tat);
        }
        let (refused, _) = decide(tat, 400_000, l);
        assert_eq!(state_item("tool-calls", &refused), "\"tool-calls\";r=0;t=5");
        assert_eq!(retry_after(&refused), "1");
        let (first, _) = decide(None, 0, l);
        assert_eq!(state_item("tool-calls", &first), "\"tool-calls\";r=4;t=1");
    }
}
