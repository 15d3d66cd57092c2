//! The configured rules compiled for the request path: which rules a request meets at which
//! stage, and the decision over all of them. A rule with methods or tools (or keyed by method or
//! tool) is checked once the JSON-RPC body is judged; every other rule right after
//! authentication. The first rule that refuses decides; rules checked before it have charged.

use std::net::IpAddr;
use std::sync::Arc;

use mcpgate_config::{OnStoreError, RateKey, RateLimits, RateRule, ToolsCallAnswer};
use mcpgate_mcp::glob::Glob;

use crate::gcra::{Decision, Limit};
use crate::key::{budget_key, Facts};
use crate::{Charge, Store, StoreFailure};

/// The name the unauthenticated budget goes by in headers, metrics and logs (configuration
/// keeps it free for this).
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// When in the request a rule is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// After authentication: who is calling, on which route.
    Caller,
    /// After the body is judged: which JSON-RPC method and tool.
    Call,
}

/// One compiled rule.
pub struct Rule {
    pub name: String,
    key: Vec<RateKey>,
    methods: Vec<String>,
    tools: Vec<Glob>,
    routes: Vec<String>,
    pub limit: Limit,
    stage: Stage,
}

impl Rule {
    fn compile(r: &RateRule) -> Rule {
        let per_call = !r.methods.is_empty()
            || !r.tools.is_empty()
            || r.key
                .iter()
                .any(|k| matches!(k, RateKey::Method | RateKey::Tool));
        Rule {
            name: r.name.clone(),
            key: r.key.clone(),
            methods: r.methods.clone(),
            tools: r.tools.iter().map(|t| Glob::new(t)).collect(),
            routes: r.routes.clone(),
            limit: Limit::from_budget(&r.budget),
            stage: if per_call { Stage::Call } else { Stage::Caller },
        }
    }

    /// The route, method and tool filters (the key facts are checked by [`budget_key`]).
    fn matches(&self, f: &Facts<'_>) -> bool {
        let route = self.routes.is_empty() || self.routes.iter().any(|r| r == f.route);
        let method = self.methods.is_empty()
            || f.method
                .is_some_and(|m| self.methods.iter().any(|x| x == m));
        let tool = self.tools.is_empty()
            || f.tool
                .is_some_and(|t| self.tools.iter().any(|g| g.matches(t)));
        route && method && tool
    }
}

/// What happened at one rule, for metrics and logs.
pub enum Event<'a> {
    Allowed,
    Limited,
    /// The store did not answer; `allowed` says what `on_store_error` made of it.
    StoreError {
        failure: &'a StoreFailure,
        allowed: bool,
    },
}

impl Event<'_> {
    /// The `decision` label of `mcpgate_rate_limit_decisions_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Event::Allowed => "allowed",
            Event::Limited => "limited",
            Event::StoreError { allowed: true, .. } => "store_error_allowed",
            Event::StoreError { allowed: false, .. } => "store_error_denied",
        }
    }
}

/// Told of every decision (metrics, logs); `Send` because requests move between threads.
pub type Observe<'o> = dyn FnMut(&str, Event<'_>) + Send + 'o;

/// A rule's state after a decision (for the `RateLimit` headers).
#[derive(Debug, Clone)]
pub struct RuleState {
    pub rule: String,
    pub limit: Limit,
    pub decision: Decision,
}

/// The decision over every rule that applies.
#[derive(Debug)]
pub enum Verdict {
    /// Go on; the states of the rules that counted the request.
    Pass(Vec<RuleState>),
    /// Over a budget.
    Limited(RuleState),
    /// The store failed and `on_store_error: deny`.
    StoreDenied { rule: String },
}

/// Every rate limit of one configuration, over one store.
pub struct Limiter {
    rules: Vec<Rule>,
    unauthenticated: Option<Rule>,
    store: Arc<dyn Store>,
    on_store_error: OnStoreError,
    pub tools_call_answer: ToolsCallAnswer,
}

impl Limiter {
    pub fn new(config: &RateLimits, store: Arc<dyn Store>) -> Limiter {
        let unauthenticated = config.unauthenticated.as_ref().map(|b| Rule {
            name: UNAUTHENTICATED.to_owned(),
            key: vec![RateKey::Ip],
            methods: Vec::new(),
            tools: Vec::new(),
            routes: Vec::new(),
            limit: Limit::from_budget(b),
            stage: Stage::Caller,
        });
        Limiter {
            rules: config.rules.iter().map(Rule::compile).collect(),
            unauthenticated,
            store,
            on_store_error: config.on_store_error,
            tools_call_answer: config.tools_call_answer,
        }
    }

    /// Whether any rule is checked at `stage` (saves building facts when none is).
    pub fn has_stage(&self, stage: Stage) -> bool {
        self.rules.iter().any(|r| r.stage == stage)
    }

    pub fn limits_unauthenticated(&self) -> bool {
        self.unauthenticated.is_some()
    }

    /// Charge every rule of `stage` that applies to the request.
    pub async fn check(
        &self,
        stage: Stage,
        facts: &Facts<'_>,
        observe: &mut Observe<'_>,
    ) -> Verdict {
        let rules = self
            .rules
            .iter()
            .filter(|r| r.stage == stage && r.matches(facts));
        self.decide(rules, facts, Charge::Consume, observe).await
    }

    /// Before any token work: is this client address already over its unauthenticated budget?
    /// Looks without charging; only refused credentials charge (see [`Limiter::charge_refused`]),
    /// so callers with good tokens never spend it.
    pub async fn check_unauthenticated(
        &self,
        ip: Option<IpAddr>,
        observe: &mut Observe<'_>,
    ) -> Verdict {
        let facts = Facts {
            ip,
            ..Facts::default()
        };
        // Only refusals and store errors are metered here: every request of an authenticated
        // route looks, and counting those as "allowed" would say nothing.
        let mut refusals_only = |rule: &str, e: Event<'_>| {
            if !matches!(e, Event::Allowed) {
                observe(rule, e);
            }
        };
        self.decide(
            self.unauthenticated.iter(),
            &facts,
            Charge::Peek,
            &mut refusals_only,
        )
        .await
    }

    /// Credentials were missing or refused: charge the client address's unauthenticated budget.
    pub async fn charge_refused(&self, ip: Option<IpAddr>, observe: &mut Observe<'_>) {
        let facts = Facts {
            ip,
            ..Facts::default()
        };
        let _ = self
            .decide(
                self.unauthenticated.iter(),
                &facts,
                Charge::Consume,
                observe,
            )
            .await;
    }

    async fn decide<'r>(
        &self,
        rules: impl Iterator<Item = &'r Rule>,
        facts: &Facts<'_>,
        charge: Charge,
        observe: &mut Observe<'_>,
    ) -> Verdict {
        let mut passed = Vec::new();
        for rule in rules {
            let Some(key) = budget_key(&rule.name, &rule.key, facts) else {
                continue;
            };
            match self.store.check(&key, rule.limit, charge).await {
                Ok(decision) => {
                    let state = RuleState {
                        rule: rule.name.clone(),
                        limit: rule.limit,
                        decision,
                    };
                    if !decision.allowed {
                        observe(&rule.name, Event::Limited);
                        return Verdict::Limited(state);
                    }
                    observe(&rule.name, Event::Allowed);
                    passed.push(state);
                }
                Err(failure) => {
                    let allowed = self.on_store_error == OnStoreError::Allow;
                    observe(
                        &rule.name,
                        Event::StoreError {
                            failure: &failure,
                            allowed,
                        },
                    );
                    if !allowed {
                        return Verdict::StoreDenied {
                            rule: rule.name.clone(),
                        };
                    }
                }
            }
        }
        Verdict::Pass(passed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use mcpgate_config::{Budget, RateStore};

    use super::*;
    use crate::{BudgetKey, MemoryStore};

    fn rule(
        name: &str,
        key: Vec<RateKey>,
        methods: &[&str],
        tools: &[&str],
        burst: u32,
    ) -> RateRule {
        RateRule {
            name: name.into(),
            key,
            methods: methods.iter().map(|s| s.to_string()).collect(),
            tools: tools.iter().map(|s| s.to_string()).collect(),
            routes: Vec::new(),
            budget: Budget {
                count: 1,
                per: Duration::from_secs(3600),
                burst,
            },
        }
    }

    fn config(rules: Vec<RateRule>, on_store_error: OnStoreError) -> RateLimits {
        RateLimits {
            store: RateStore::Memory,
            store_timeout: Duration::from_millis(100),
            on_store_error,
            tools_call_answer: ToolsCallAnswer::Http429,
            unauthenticated: Some(Budget {
                count: 1,
                per: Duration::from_secs(3600),
                burst: 2,
            }),
            rules,
        }
    }

    fn alice<'a>(tool: Option<&'a str>) -> Facts<'a> {
        Facts {
            subject: Some(("corp", "alice")),
            route: "r",
            method: tool.map(|_| "tools/call"),
            tool,
            ..Facts::default()
        }
    }

    async fn allowed(l: &Limiter, stage: Stage, f: &Facts<'_>) -> bool {
        matches!(l.check(stage, f, &mut |_, _| {}).await, Verdict::Pass(_))
    }

    #[tokio::test]
    async fn tool_rules_count_only_matching_tool_calls() {
        let rules = vec![rule(
            "deletes",
            vec![RateKey::Subject],
            &["tools/call"],
            &["delete_*"],
            1,
        )];
        let l = Limiter::new(
            &config(rules, OnStoreError::Deny),
            Arc::new(MemoryStore::new(100)),
        );
        assert!(l.has_stage(Stage::Call) && !l.has_stage(Stage::Caller));
        for _ in 0..3 {
            assert!(allowed(&l, Stage::Call, &alice(Some("echo"))).await);
        }
        assert!(allowed(&l, Stage::Call, &alice(Some("delete_repo"))).await);
        assert!(!allowed(&l, Stage::Call, &alice(Some("delete_user"))).await);
    }

    #[tokio::test]
    async fn a_refusal_names_its_rule_and_meters_it() {
        let rules = vec![rule("per-user", vec![RateKey::Subject], &[], &[], 1)];
        let l = Limiter::new(
            &config(rules, OnStoreError::Deny),
            Arc::new(MemoryStore::new(100)),
        );
        let mut seen = Vec::new();
        for _ in 0..2 {
            l.check(Stage::Caller, &alice(None), &mut |r, e| {
                seen.push((r.to_owned(), e.label()))
            })
            .await;
        }
        assert_eq!(
            seen,
            [
                ("per-user".into(), "allowed"),
                ("per-user".into(), "limited")
            ]
        );
    }

    #[tokio::test]
    async fn only_refused_credentials_spend_the_unauthenticated_budget() {
        let l = Limiter::new(
            &config(vec![], OnStoreError::Deny),
            Arc::new(MemoryStore::new(100)),
        );
        let ip = Some("192.0.2.1".parse().unwrap());
        let over = |v: Verdict| matches!(v, Verdict::Limited(_));
        for _ in 0..10 {
            assert!(!over(l.check_unauthenticated(ip, &mut |_, _| {}).await));
        }
        l.charge_refused(ip, &mut |_, _| {}).await;
        l.charge_refused(ip, &mut |_, _| {}).await;
        assert!(over(l.check_unauthenticated(ip, &mut |_, _| {}).await));
        let other = Some("192.0.2.2".parse().unwrap());
        assert!(!over(l.check_unauthenticated(other, &mut |_, _| {}).await));
    }

    struct Down;

    #[async_trait]
    impl Store for Down {
        async fn check(
            &self,
            _: &BudgetKey,
            _: Limit,
            _: Charge,
        ) -> Result<Decision, StoreFailure> {
            Err(StoreFailure {
                reason: "store_timeout",
                message: "down".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_failed_store_follows_on_store_error() {
        let rules = || vec![rule("per-user", vec![RateKey::Subject], &[], &[], 1)];
        let deny = Limiter::new(&config(rules(), OnStoreError::Deny), Arc::new(Down));
        let mut labels = Vec::new();
        let v = deny
            .check(Stage::Caller, &alice(None), &mut |_, e| {
                labels.push(e.label())
            })
            .await;
        assert!(matches!(v, Verdict::StoreDenied { .. }));
        let allow = Limiter::new(&config(rules(), OnStoreError::Allow), Arc::new(Down));
        let v = allow
            .check(Stage::Caller, &alice(None), &mut |_, e| {
                labels.push(e.label())
            })
            .await;
        assert!(matches!(v, Verdict::Pass(_)));
        assert_eq!(labels, ["store_error_denied", "store_error_allowed"]);
    }
}
