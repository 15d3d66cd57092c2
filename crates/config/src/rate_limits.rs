//! The `rate_limits` section: where budgets live (memory or Redis), what a store failure means,
//! the per-IP budget for unauthenticated traffic, and the rules — the YAML as written (`Raw*`)
//! and the validated model. Validation is in `validate/rate_limits.rs`.

use std::time::Duration;

use serde::Deserialize;

use crate::raw::Str;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimits {
    pub store: Option<Str>,
    pub store_timeout: Option<Str>,
    pub on_store_error: Option<Str>,
    pub tools_call_answer: Option<Str>,
    pub unauthenticated: Option<RawBudget>,
    pub rules: Option<Vec<RawRateRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub rate: Option<Str>,
    pub burst: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateRule {
    pub name: Option<Str>,
    pub key: Option<OneOrMany>,
    pub methods: Option<Vec<Str>>,
    pub tools: Option<Vec<Str>>,
    pub routes: Option<Vec<Str>>,
    pub rate: Option<Str>,
    pub burst: Option<Str>,
}

/// `key: subject` or `key: [subject, tool]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(Str),
    Many(Vec<Str>),
}

/// Validated `rate_limits`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    pub store: RateStore,
    /// Bound on one decision's round trip to the store; past it, `on_store_error` applies.
    pub store_timeout: Duration,
    pub on_store_error: OnStoreError,
    pub tools_call_answer: ToolsCallAnswer,
    /// Per client IP, charged by requests whose credentials are missing or refused and checked
    /// before any token work.
    pub unauthenticated: Option<Budget>,
    pub rules: Vec<RateRule>,
}

/// Where budgets are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateStore {
    /// In this process (one replica's own budgets).
    Memory,
    /// `redis://` or `rediss://`: one budget shared by every replica.
    Redis(String),
}

/// What a decision is when the store cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    Allow,
    Deny,
}

/// How a `tools/call` over its budget is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolsCallAnswer {
    /// HTTP 429 with a JSON-RPC error (like every other refusal).
    Http429,
    /// HTTP 200 with a JSON-RPC tool result `isError: true` naming when to retry (default).
    ToolError,
}

/// A rate and the requests allowed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `count` requests per `per` (from `N/s`, `N/min`, `N/h`).
    pub count: u32,
    pub per: Duration,
    /// Requests allowed back to back from a full budget (≥ 1).
    pub burst: u32,
}

/// One request fact a rule's budget is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The token's issuer and subject (two issuers' `sub` never share a budget).
    Subject,
    ClientId,
    Ip,
    Route,
    Issuer,
    Method,
    Tool,
}

impl RateKey {
    pub const ALL: [(&'static str, RateKey); 7] = [
        ("subject", RateKey::Subject),
        ("client_id", RateKey::ClientId),
        ("ip", RateKey::Ip),
        ("route", RateKey::Route),
        ("issuer", RateKey::Issuer),
        ("method", RateKey::Method),
        ("tool", RateKey::Tool),
    ];

    pub fn name(self) -> &'static str {
        RateKey::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RateRule {
    pub name: String,
    pub key: Vec<RateKey>,
    /// JSON-RPC methods the rule counts (empty: any request).
    pub methods: Vec<String>,
    /// Tool-name globs (only `tools/call` matches them).
    pub tools: Vec<String>,
    /// Route names (empty: every route).
    pub routes: Vec<String>,
    pub budget: Budget,
}

/// `N/s`, `N/min`, `N/h` (also `sec`, `second`, `m`, `minute`, `hour`): N ≥ 1.
pub(crate) fn parse_rate(s: &str) -> Result<(u32, Duration), String> {
    const HELP: &str = " (use e.g. 10/s, 600/min, 1000/h)";
    let (n, unit) = s.trim().split_once('/').ok_or(HELP)?;
    let n: u32 = n.trim().parse().map_err(|_| HELP.to_owned())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(HELP.to_owned()),
    };
    if n == 0 {
        return Err(" (must allow at least 1 request)".to_owned());
    }
    Ok((n, per))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_their_unit() {
        assert_eq!(parse_rate("600/min"), Ok((600, Duration::from_secs(60))));
        assert_eq!(parse_rate(" 10 / s "), Ok((10, Duration::from_secs(1))));
        assert_eq!(parse_rate("5/h"), Ok((5, Duration::from_secs(3600))));
        for bad in ["0/s", "10", "10/d", "-1/s", "x/min", "10/"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
