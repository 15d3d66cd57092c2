//! Rate limits on the request path (phases 5a, 6a, 6b and 9a of docs/architecture.md): the client
//! address's unauthenticated budget looked at before any token work and charged by refused
//! credentials, the caller's rules after authentication, the method and tool rules once the body
//! is judged. Decisions come from `mcpgate-ratelimit`; this module builds the request's facts,
//! meters and logs each decision, and turns a refusal into its answer.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mcpgate_auth::Principal;
use mcpgate_mcp::answer::LocalAnswer;
use mcpgate_mcp::jsonrpc::Target;
use mcpgate_ratelimit::answer::{self as rate_answer, Call};
use mcpgate_ratelimit::headers::{policy_item, state_item};
use mcpgate_ratelimit::{client_ip, Event, Facts, Limiter, RuleState, Stage, Verdict};
use pingora::http::ResponseHeader;
use pingora::proxy::Session as HttpSession;
use pingora::{Error, ErrorType};

use super::ctx::RequestCtx;
use super::names;
use super::phases::{self, Phase, Stop};
use crate::metrics::METRICS;
use crate::snapshot::{CompiledAuth, CompiledRoute, Snapshot};

/// What the rate limits know about one request.
#[derive(Default)]
pub struct RateCtx {
    /// The address the client is counted by (see `mcpgate_ratelimit::client_ip`).
    pub ip: Option<IpAddr>,
    /// The rules that counted the request, for the `RateLimit` headers of its answer.
    pub states: Vec<RuleState>,
    /// The method and tool rules have been checked (a held body is judged once).
    pub call_checked: bool,
    /// A held body over its budget, answered from `fail_to_proxy`.
    pub refusal: Option<LocalAnswer>,
}

/// 5a. Before the token is looked at: an address already over its unauthenticated budget is
///     refused (429) without a signature check or an introspection call.
pub async fn check_unauthenticated(
    session: &HttpSession,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    route: &CompiledRoute,
) -> Phase {
    let Some(limiter) = snapshot.rate_limits.as_deref() else {
        return Ok(());
    };
    let forwarded = phases::header_str(session.req_header(), &names::X_FORWARDED_FOR);
    ctx.rate.ip = client_ip(phases::client_ip(session), ctx.peer_trusted, forwarded);
    let needs_token = matches!(route.auth, CompiledAuth::Required { .. });
    if !needs_token || !limiter.limits_unauthenticated() {
        return Ok(());
    }
    let verdict = limiter
        .check_unauthenticated(ctx.rate.ip, &mut meter(&route.name))
        .await;
    match verdict {
        Verdict::Pass(_) => Ok(()),
        refused => settle(refused, ctx, limiter),
    }
}

/// 6a. Missing or refused credentials (400, 401) charge the address's unauthenticated budget;
///     an identity provider that cannot be asked (503) is not the client's doing.
pub async fn charge_refused(
    ctx: &RequestCtx,
    snapshot: &Snapshot,
    route: &CompiledRoute,
    authenticated: &Phase<Option<Arc<Principal>>>,
) {
    let Some(limiter) = snapshot.rate_limits.as_deref() else {
        return;
    };
    let refused = matches!(authenticated, Err(Stop::Answer(a)) if matches!(a.status, 400 | 401));
    if refused && limiter.limits_unauthenticated() {
        limiter
            .charge_refused(ctx.rate.ip, &mut meter(&route.name))
            .await;
    }
}

/// 6b. The caller's rules (subject, client, issuer, address, route), before the session lookup,
///     the policy and the body.
pub async fn check_caller(
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    route: &CompiledRoute,
) -> Phase {
    check(Stage::Caller, ctx, snapshot, route).await
}

/// 9a. The method and tool rules, once a small body is judged (a held one: [`check_held_call`]).
pub async fn check_call(ctx: &mut RequestCtx, snapshot: &Snapshot, route: &CompiledRoute) -> Phase {
    if ctx.judged.is_none() || ctx.rate.call_checked {
        return Ok(());
    }
    ctx.rate.call_checked = true;
    check(Stage::Call, ctx, snapshot, route).await
}

/// 9a for a held body, judged in `request_body_filter`: a refusal is kept for `fail_to_proxy`.
pub async fn check_held_call(ctx: &mut RequestCtx) -> pingora::Result<()> {
    let snapshot = ctx.snapshot.clone();
    let Some((snapshot, index)) = snapshot.as_deref().zip(ctx.route_index) else {
        return Ok(());
    };
    let Some(route) = snapshot.routes.get(index) else {
        return Ok(());
    };
    match check_call(ctx, snapshot, route).await {
        Ok(()) => Ok(()),
        Err(Stop::Answer(a)) => {
            let status = a.status;
            ctx.rate.refusal = Some(*a);
            Err(Error::new(ErrorType::HTTPStatus(status)))
        }
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// The `RateLimit-Policy` and `RateLimit` headers of every rule that counted the request.
pub fn add_headers(resp: &mut ResponseHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    let states = &ctx.rate.states;
    if states.is_empty() {
        return Ok(());
    }
    let policies: Vec<String> = states
        .iter()
        .map(|s| policy_item(&s.rule, s.limit))
        .collect();
    let now: Vec<String> = states
        .iter()
        .map(|s| state_item(&s.rule, &s.decision))
        .collect();
    resp.insert_header("ratelimit-policy", policies.join(", "))?;
    resp.insert_header("ratelimit", now.join(", "))?;
    Ok(())
}

async fn check(
    stage: Stage,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    route: &CompiledRoute,
) -> Phase {
    let Some(limiter) = snapshot
        .rate_limits
        .as_deref()
        .filter(|l| l.has_stage(stage))
    else {
        return Ok(());
    };
    let verdict = limiter
        .check(stage, &facts(ctx, &route.name), &mut meter(&route.name))
        .await;
    settle(verdict, ctx, limiter)
}

/// Go on (keeping the rules' states for the headers), or stop with the refusal.
fn settle(verdict: Verdict, ctx: &mut RequestCtx, limiter: &Limiter) -> Phase {
    match verdict {
        Verdict::Pass(states) => {
            ctx.rate.states.extend(states);
            Ok(())
        }
        Verdict::Limited(state) => {
            Err(rate_answer::limited(&state, call(ctx), limiter.tools_call_answer).into())
        }
        Verdict::StoreDenied { .. } => Err(rate_answer::store_unavailable(call(ctx)).into()),
    }
}

/// The request's facts as far as they are known (a rule needing one that is not is skipped).
fn facts<'a>(ctx: &'a RequestCtx, route: &'a str) -> Facts<'a> {
    let p = ctx.principal.as_deref();
    let judged = ctx.judged.as_ref();
    Facts {
        subject: p.and_then(|p| Some((p.issuer_name.as_str(), p.subject.as_deref()?))),
        client_id: p.and_then(|p| p.client_id.as_deref()),
        ip: ctx.rate.ip,
        route,
        issuer: p.map(|p| p.issuer_name.as_str()),
        method: judged.and_then(|j| j.method.as_deref()),
        tool: judged.and_then(|j| match &j.target {
            Some(Target::Tool(name)) => Some(name.as_str()),
            _ => None,
        }),
    }
}

/// The refused request as far as it was read (its id once the body is judged).
fn call(ctx: &RequestCtx) -> Call {
    ctx.judged.as_ref().map_or_else(Call::default, |j| Call {
        id: j.id.clone(),
        method: j.method.clone(),
        target: j.target.clone(),
    })
}

/// The second (since the epoch) of the last store warning logged.
static LAST_STORE_WARNING: AtomicU64 = AtomicU64::new(0);

/// Count each decision; log a store that did not answer — at most one line a second, since
/// during an outage every request would log one (the counter has them all).
fn meter(route: &str) -> impl FnMut(&str, Event<'_>) + '_ {
    move |rule, event| {
        METRICS
            .rate_limit_decisions
            .with_label_values(&[rule, event.label()])
            .inc();
        if let Event::StoreError { failure, allowed } = event {
            if !first_this_second() {
                return;
            }
            tracing::warn!(
                route,
                rule,
                reason = failure.reason,
                error = %failure,
                allowed,
                "rate-limit store did not answer; on_store_error decides"
            );
        }
    }
}

fn first_this_second() -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_STORE_WARNING.load(Ordering::Relaxed);
    now > last
        && LAST_STORE_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}
