//! Prometheus metrics, registered once per process in the default registry and served on the
//! admin listener. Label sets are bounded: route names come from configuration, reasons and
//! statuses from fixed lists.

use std::sync::{LazyLock, OnceLock};

use prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
};

use crate::telemetry::metrics::OBS;

pub struct Metrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub gateway_errors: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub policy_denials: IntCounterVec,
    pub in_flight: IntGauge,
    pub sse_streams: IntGauge,
    pub buffered_body_bytes: IntGauge,
    pub config_reloads: IntCounterVec,
    pub config_last_success: IntGauge,
    pub config_hash: IntGauge,
    pub rate_limit_decisions: IntCounterVec,
    pub sessions_started: IntCounterVec,
    pub login_events: IntCounterVec,
    pub lean_requests: IntCounter,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    Metrics {
    requests: register_int_counter_vec!(
        "mcpgate_requests_total",
        "Requests handled, by route and HTTP status.",
        &["route", "status"]
    )
    .expect("register mcpgate_requests_total"),
    duration: register_histogram_vec!(
        "mcpgate_request_duration_seconds",
        "Time from request start to the end of the response, by route.",
        &["route"],
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0]
    )
    .expect("register mcpgate_request_duration_seconds"),
    gateway_errors: register_int_counter_vec!(
        "mcpgate_gateway_errors_total",
        "Requests the gateway answered itself with an error, by route and reason.",
        &["route", "reason"]
    )
    .expect("register mcpgate_gateway_errors_total"),
    auth_failures: register_int_counter_vec!(
        "mcpgate_auth_failures_total",
        "Rejected access tokens, by route and reason.",
        &["route", "reason"]
    )
    .expect("register mcpgate_auth_failures_total"),
    policy_denials: register_int_counter_vec!(
        "mcpgate_policy_denials_total",
        "Requests refused by route policy (scopes, domains, groups, tool/resource/prompt rules), by route and reason.",
        &["route", "reason"]
    )
    .expect("register mcpgate_policy_denials_total"),
    in_flight: register_int_gauge!("mcpgate_requests_in_flight", "Requests in progress.")
        .expect("register mcpgate_requests_in_flight"),
    sse_streams: register_int_gauge!("mcpgate_sse_streams_open", "SSE answers being streamed.")
        .expect("register mcpgate_sse_streams_open"),
    buffered_body_bytes: register_int_gauge!(
        "mcpgate_buffered_body_bytes",
        "Request-body bytes held for judging (bounded by limits.max_buffered_bodies)."
    )
    .expect("register mcpgate_buffered_body_bytes"),
    config_reloads: register_int_counter_vec!(
        "mcpgate_config_reloads_total",
        "Configuration reloads, by result (success, invalid, restart_required).",
        &["result"]
    )
    .expect("register mcpgate_config_reloads_total"),
    config_last_success: register_int_gauge!(
        "mcpgate_config_last_reload_success_timestamp_seconds",
        "When the running configuration was loaded (start or last successful reload), Unix seconds."
    )
    .expect("register mcpgate_config_last_reload_success_timestamp_seconds"),
    config_hash: register_int_gauge!(
        "mcpgate_config_hash",
        "First 48 bits of the SHA-256 of the running configuration file: equal across replicas running the same document."
    )
    .expect("register mcpgate_config_hash"),
    rate_limit_decisions: register_int_counter_vec!(
        "mcpgate_rate_limit_decisions_total",
        "Rate-limit decisions, by rule and decision (allowed, limited, store_error_allowed, store_error_denied).",
        &["rule", "decision"]
    )
    .expect("register mcpgate_rate_limit_decisions_total"),
    sessions_started: register_int_counter_vec!(
        "mcpgate_sessions_started_total",
        "MCP sessions the gateway sealed or bound for their caller, by route (refused ones count as gateway errors, reason session_not_found).",
        &["route"]
    )
    .expect("register mcpgate_sessions_started_total"),
    login_events: register_int_counter_vec!(
        "mcpgate_login_events_total",
        "What the login front door did: login_started, code_issued, token_issued, token_refreshed, client_registered, token_revoked.",
        &["event"]
    )
    .expect("register mcpgate_login_events_total"),
    lean_requests: register_int_counter!(
        "mcpgate_lean_path_requests_total",
        "Requests forwarded on the lean path (small judged POSTs); the rest take pingora's general loop."
    )
    .expect("register mcpgate_lean_path_requests_total"),
}
});

/// Render the default registry in the text exposition format.
pub fn render() -> Vec<u8> {
    use prometheus::Encoder;
    LazyLock::force(&METRICS);
    let mut out = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut out);
    out
}

/// Refusals since start by reason, summed over routes, largest first: every counter whose
/// samples carry a `reason` (gateway errors, auth failures, policy denials, rate limits).
pub fn refusals_by_reason() -> Vec<(String, u64)> {
    const REFUSALS: [&str; 3] = [
        "mcpgate_gateway_errors_total",
        "mcpgate_auth_failures_total",
        "mcpgate_policy_denials_total",
    ];
    let mut by_reason: std::collections::BTreeMap<String, u64> = Default::default();
    for family in prometheus::gather()
        .iter()
        .filter(|f| REFUSALS.contains(&f.name()))
    {
        for m in family.get_metric() {
            let reason = m.get_label().iter().find(|l| l.name() == "reason");
            if let Some(reason) = reason {
                *by_reason.entry(reason.value().to_string()).or_default() +=
                    m.get_counter().value() as u64;
            }
        }
    }
    let mut rows: Vec<(String, u64)> = by_reason.into_iter().filter(|(_, n)| *n > 0).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows
}

/// One route's series whose labels are the route alone (or the route and a fixed value), found
/// once per configuration instead of by `with_label_values` on every request (a hash of the
/// labels and a map lookup under a lock each). Resolved on first use, so a route no request
/// reached exports no series, as before.
#[derive(Default)]
pub struct RouteSeries {
    duration: OnceLock<Histogram>,
    upstream_duration: OnceLock<Histogram>,
    auth_ok: OnceLock<IntCounter>,
}

impl RouteSeries {
    /// `mcpgate_request_duration_seconds{route}`.
    pub fn duration(&self, route: &str) -> &Histogram {
        self.duration
            .get_or_init(|| METRICS.duration.with_label_values(&[route]))
    }

    /// `mcpgate_upstream_duration_seconds{route}`.
    pub fn upstream_duration(&self, route: &str) -> &Histogram {
        self.upstream_duration
            .get_or_init(|| OBS.upstream_duration.with_label_values(&[route]))
    }

    /// `mcpgate_auth_decisions_total{route, reason="ok"}`: an accepted token.
    pub fn auth_ok(&self, route: &str) -> &IntCounter {
        self.auth_ok
            .get_or_init(|| OBS.auth_decisions.with_label_values(&[route, "ok"]))
    }
}
