//! Raw → model for `rate_limits`: the store URL, the rates, each rule's key facts and filters,
//! and the route names rules refer to.

use std::time::Duration;

use crate::error::key;
use crate::rate_limits::{
    parse_rate, Budget, OnStoreError, OneOrMany, RateKey, RateLimits, RateRule, RateStore,
    RawBudget, RawRateLimits, RawRateRule, ToolsCallAnswer,
};
use crate::raw::Str;

use super::ctx::{Ctx, Zero};

/// A decision waits this long for the store unless `store_timeout` says otherwise.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(100);
/// The one method `tools` globs can match.
const TOOLS_CALL: &str = "tools/call";

pub(super) fn rate_limits(
    cx: &mut Ctx,
    raw: &RawRateLimits,
    route_names: &[String],
) -> Option<RateLimits> {
    let p = |k: &str| key("rate_limits", k);
    let store = store(cx, &p("store"), &raw.store);
    let store_timeout = cx.duration(
        &p("store_timeout"),
        &raw.store_timeout,
        DEFAULT_STORE_TIMEOUT,
        Zero::Rejected,
    );
    let on_store_error = cx.choice(
        &p("on_store_error"),
        &raw.on_store_error,
        OnStoreError::Deny,
        &[("allow", OnStoreError::Allow), ("deny", OnStoreError::Deny)],
    );
    let tools_call_answer = cx.choice(
        &p("tools_call_answer"),
        &raw.tools_call_answer,
        // Measured with the official Python SDK (tests/e2e/ratelimit.rs): 1.x tears the whole
        // session down on a 429, 2.x raises it to the host; both hand a tool error to the model.
        ToolsCallAnswer::ToolError,
        &[
            ("http_429", ToolsCallAnswer::Http429),
            ("tool_error", ToolsCallAnswer::ToolError),
        ],
    );
    let unauthenticated = cx.optional(&raw.unauthenticated, |cx, b| {
        budget(cx, &p("unauthenticated"), b)
    });
    let rules = match &raw.rules {
        None => Some(Vec::new()),
        Some(rules) => cx.list(&p("rules"), rules, |cx, path, r| {
            rule(cx, path, r, route_names)
        }),
    };
    if let Some(rules) = &rules {
        cx.unique(
            "rate limit rule name",
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("rate_limits.rules[{i}].name"), r.name.clone())),
        );
    }
    Some(RateLimits {
        store: store?,
        store_timeout: store_timeout?,
        on_store_error: on_store_error?,
        tools_call_answer: tools_call_answer?,
        unauthenticated: unauthenticated?,
        rules: rules?,
    })
}

/// `memory` (default) or a `redis://` / `rediss://` URL with a host.
fn store(cx: &mut Ctx, path: &str, value: &Option<Str>) -> Option<RateStore> {
    let Some(s) = value else {
        return Some(RateStore::Memory);
    };
    cx.parse(path, s, "store", |v| {
        let v = v.trim();
        if v == "memory" {
            return Ok(RateStore::Memory);
        }
        let url = url::Url::parse(v).map_err(|e| format!(": {e}"))?;
        match url.scheme() {
            "redis" | "rediss" if url.host_str().is_some_and(|h| !h.is_empty()) => {
                Ok(RateStore::Redis(v.to_owned()))
            }
            _ => Err(" (expected memory, redis://host:port/db or rediss://…)".to_owned()),
        }
    })
}

fn budget(cx: &mut Ctx, path: &str, raw: &RawBudget) -> Option<Budget> {
    let rate_path = key(path, "rate");
    let rate = cx
        .required(&rate_path, &raw.rate)
        .and_then(|s| cx.parse(&rate_path, s, "rate", parse_rate));
    let burst_path = key(path, "burst");
    let burst = match &raw.burst {
        None => rate.map(|(count, _)| count),
        Some(s) => cx.parse(&burst_path, s, "burst", |v| match v.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(" (a whole number ≥ 1)".to_owned()),
        }),
    };
    let (count, per) = rate?;
    Some(Budget {
        count,
        per,
        burst: burst?,
    })
}

fn rule(cx: &mut Ctx, path: &str, raw: &RawRateRule, route_names: &[String]) -> Option<RateRule> {
    let name = cx
        .required_string(&key(path, "name"), &raw.name)
        .and_then(|n| rule_name(cx, &key(path, "name"), n));
    let keys = rule_key(cx, &key(path, "key"), &raw.key);
    let methods = strings(cx, &key(path, "methods"), &raw.methods);
    let tools = strings(cx, &key(path, "tools"), &raw.tools);
    let routes = strings(cx, &key(path, "routes"), &raw.routes);
    if let Some(routes) = &routes {
        for (i, r) in routes.iter().enumerate() {
            if !route_names.contains(r) {
                cx.err(
                    &format!("{path}.routes[{i}]"),
                    format!("no route named {r:?}"),
                );
            }
        }
    }
    let methods = methods.and_then(|m| tools_imply_call(cx, path, m, tools.as_deref()));
    let budget = budget(
        cx,
        path,
        &RawBudget {
            rate: raw.rate.clone(),
            burst: raw.burst.clone(),
        },
    );
    Some(RateRule {
        name: name?,
        key: keys?,
        methods: methods?,
        tools: tools?,
        routes: routes?,
        budget: budget?,
    })
}

/// Rule names appear in metrics labels and, quoted, in the `RateLimit` headers: plain tokens
/// only, and not the name the unauthenticated budget goes by.
fn rule_name(cx: &mut Ctx, path: &str, name: String) -> Option<String> {
    let token = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !token || name.len() > 64 {
        return cx.fail(path, "use up to 64 letters, digits, '_', '-' or '.'");
    }
    if name == "unauthenticated" {
        return cx.fail(
            path,
            "\"unauthenticated\" names the rate_limits.unauthenticated budget",
        );
    }
    Some(name)
}

/// A rule with `tools` counts `tools/call` only: `methods` may be left out, but may not name
/// anything else (it would never match).
fn tools_imply_call(
    cx: &mut Ctx,
    path: &str,
    methods: Vec<String>,
    tools: Option<&[String]>,
) -> Option<Vec<String>> {
    if tools.is_none_or(<[String]>::is_empty) {
        return Some(methods);
    }
    if methods.is_empty() {
        return Some(vec![TOOLS_CALL.to_owned()]);
    }
    if methods.iter().any(|m| m != TOOLS_CALL) {
        return cx.fail(
            &key(path, "methods"),
            "a rule with tools counts tools/call only; list no other method",
        );
    }
    Some(methods)
}

fn rule_key(cx: &mut Ctx, path: &str, raw: &Option<OneOrMany>) -> Option<Vec<RateKey>> {
    let raw = cx.required(path, raw)?;
    let items: Vec<(String, &Str)> = match raw {
        OneOrMany::One(s) => vec![(path.to_owned(), s)],
        OneOrMany::Many(v) => v
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("{path}[{i}]"), s))
            .collect(),
    };
    if items.is_empty() {
        return cx.fail(
            path,
            "must name at least one of: subject, client_id, ip, route, issuer, method, tool",
        );
    }
    let mut keys = Vec::with_capacity(items.len());
    for (item_path, s) in items {
        let k = cx.choice(&item_path, &Some(s.clone()), RateKey::Ip, &RateKey::ALL)?;
        if keys.contains(&k) {
            return cx.fail(&item_path, format!("{} is listed twice", k.name()));
        }
        keys.push(k);
    }
    Some(keys)
}

fn strings(cx: &mut Ctx, path: &str, raw: &Option<Vec<Str>>) -> Option<Vec<String>> {
    match raw {
        None => Some(Vec::new()),
        Some(items) => cx.list(path, items, |cx, p, s| cx.non_empty(p, s)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::rate_limits::{RateKey, RateStore};

    const BASE: &str = "public_url: https://gw.example.com\nlisteners: [{bind: 127.0.0.1:8080}]\nroutes:\n  - name: r\n    path: /mcp\n    upstream: {url: http://127.0.0.1:9000/mcp}\n    auth: none\n";

    fn parse(extra: &str) -> Result<crate::Config, String> {
        crate::parse_str(&format!("{BASE}{extra}"), Path::new("."), &|_| None).map_err(|e| {
            e.0.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn a_full_section_validates_with_defaults() {
        let c = parse(
            "rate_limits:\n  unauthenticated: {rate: 60/min, burst: 20}\n  rules:\n    - {name: per-user, key: subject, rate: 600/min, burst: 100}\n    - {name: deletes, key: [subject, tool], tools: [\"delete_*\"], rate: 60/min}\n",
        )
        .unwrap();
        let rl = c.rate_limits.unwrap();
        assert_eq!(rl.store, RateStore::Memory);
        assert_eq!(rl.rules[1].key, [RateKey::Subject, RateKey::Tool]);
        assert_eq!(rl.rules[1].methods, ["tools/call"]);
        assert_eq!(rl.rules[1].budget.burst, 60);
        assert_eq!(rl.unauthenticated.unwrap().burst, 20);
    }

    #[test]
    fn mistakes_are_reported_with_their_key_path() {
        let e = parse(
            "rate_limits:\n  store: http://x\n  on_store_error: maybe\n  rules:\n    - {name: \"a b\", key: [subject, subject], rate: 0/s}\n    - {name: t, key: who, methods: [tools/list], tools: [x], routes: [nope], rate: 1/s, burst: 0}\n",
        )
        .unwrap_err();
        for path in [
            "rate_limits.store:",
            "rate_limits.on_store_error:",
            "rate_limits.rules[0].name:",
            "rate_limits.rules[0].key[1]:",
            "rate_limits.rules[0].rate:",
            "rate_limits.rules[1].key:",
            "rate_limits.rules[1].methods:",
            "rate_limits.rules[1].routes[0]:",
            "rate_limits.rules[1].burst:",
        ] {
            assert!(e.contains(path), "{path} missing in:\n{e}");
        }
    }

    #[test]
    fn redis_urls_are_accepted() {
        let c = parse("rate_limits:\n  store: rediss://cache:6380/0\n").unwrap();
        assert_eq!(
            c.rate_limits.unwrap().store,
            RateStore::Redis("rediss://cache:6380/0".into())
        );
    }
}
