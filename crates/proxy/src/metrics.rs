//! Prometheus metrics, registered once per process in the default registry and served on the
//! admin listener. Label sets are bounded: route names come from configuration, reasons and
//! statuses from fixed lists.

use std::sync::LazyLock;

use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge, HistogramVec,
    IntCounterVec, IntGauge,
};

pub struct Metrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub gateway_errors: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub policy_denials: IntCounterVec,
    pub in_flight: IntGauge,
    pub sse_streams: IntGauge,
    pub buffered_body_bytes: IntGauge,
    pub rate_limit_decisions: IntCounterVec,
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
    rate_limit_decisions: register_int_counter_vec!(
        "mcpgate_rate_limit_decisions_total",
        "Rate-limit decisions, by rule and decision (allowed, limited, store_error_allowed, store_error_denied).",
        &["rule", "decision"]
    )
    .expect("register mcpgate_rate_limit_decisions_total"),
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
