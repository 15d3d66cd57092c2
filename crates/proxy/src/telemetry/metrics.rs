//! The observability metrics beyond requests and errors: upstream latency, authentication
//! outcomes, token caches, introspection, JWKS freshness, MCP method classes and certificate
//! expiry. Labels are bounded: route and issuer names come from configuration, everything else
//! from fixed lists (docs/observability.md lists every series).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::Duration;

use mcpgate_auth::{AuthObserver, CallOutcome, TokenCache};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    register_histogram_vec, register_int_counter_vec, GaugeVec, HistogramVec, IntCounterVec, Opts,
};

use crate::snapshot::SharedSnapshot;
use crate::tls::SniResolver;

/// Latency buckets for calls to other services (upstreams, identity providers), in seconds.
const CALL_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct ObsMetrics {
    pub upstream_duration: HistogramVec,
    pub auth_decisions: IntCounterVec,
    pub mcp_requests: IntCounterVec,
    token_cache: IntCounterVec,
    introspections: IntCounterVec,
    introspection_duration: HistogramVec,
}

pub static OBS: LazyLock<ObsMetrics> = LazyLock::new(|| ObsMetrics {
    upstream_duration: register_histogram_vec!(
        "mcpgate_upstream_duration_seconds",
        "Time from sending a request upstream to the upstream's response header, by route.",
        &["route"],
        CALL_BUCKETS.to_vec()
    )
    .expect("register mcpgate_upstream_duration_seconds"),
    auth_decisions: register_int_counter_vec!(
        "mcpgate_auth_decisions_total",
        "Bearer-token decisions on authenticated routes, by route and reason (`ok` when accepted).",
        &["route", "reason"]
    )
    .expect("register mcpgate_auth_decisions_total"),
    mcp_requests: register_int_counter_vec!(
        "mcpgate_mcp_requests_total",
        "Requests by route, MCP method class and HTTP status.",
        &["route", "method", "status"]
    )
    .expect("register mcpgate_mcp_requests_total"),
    token_cache: register_int_counter_vec!(
        "mcpgate_token_cache_lookups_total",
        "Token-validation cache lookups, by cache (jwt, introspection) and result (hit, miss).",
        &["cache", "result"]
    )
    .expect("register mcpgate_token_cache_lookups_total"),
    introspections: register_int_counter_vec!(
        "mcpgate_introspection_requests_total",
        "Token introspection calls, by issuer and outcome (answered, failed, shed).",
        &["issuer", "outcome"]
    )
    .expect("register mcpgate_introspection_requests_total"),
    introspection_duration: register_histogram_vec!(
        "mcpgate_introspection_duration_seconds",
        "Token introspection call latency (including waiting for a call slot), by issuer.",
        &["issuer"],
        CALL_BUCKETS.to_vec()
    )
    .expect("register mcpgate_introspection_duration_seconds"),
});

/// Turns the auth crate's validation events into counters.
struct PrometheusAuth;

impl AuthObserver for PrometheusAuth {
    fn token_cache(&self, cache: TokenCache, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        OBS.token_cache
            .with_label_values(&[cache.label(), result])
            .inc();
    }

    fn introspection(&self, issuer: &str, outcome: CallOutcome, elapsed: Duration) {
        OBS.introspections
            .with_label_values(&[issuer, outcome.label()])
            .inc();
        if outcome != CallOutcome::Shed {
            OBS.introspection_duration
                .with_label_values(&[issuer])
                .observe(elapsed.as_secs_f64());
        }
    }
}

/// Register the collectors and the auth observer (once per process; a later call only swaps
/// in the snapshot whose validator the JWKS collector reads).
pub fn install(snapshot: &SharedSnapshot) {
    *lock(&JWKS_SOURCE) = Some(snapshot.clone());
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        LazyLock::force(&OBS);
        mcpgate_auth::set_observer(Box::new(PrometheusAuth));
        mcpgate_store::set_observer(Box::new(PrometheusRedis));
        let _ = prometheus::register(Box::new(JwksCollector::new()));
        let _ = prometheus::register(Box::new(CertExpiryCollector::new()));
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The configuration whose validator holds the JWKS state (always the current one: reloads
/// swap the snapshot behind it).
static JWKS_SOURCE: Mutex<Option<SharedSnapshot>> = Mutex::new(None);

/// JWKS fetches, failures and key age per issuer, read from the current validator at scrape
/// time. The validator's own counters restart when a reload rebuilds an issuer, so these
/// counters grow by what the validator counted since the last scrape.
struct JwksCollector {
    fetches: IntCounterVec,
    failures: IntCounterVec,
    age: GaugeVec,
    /// Last seen validator counts per issuer: (fetches, failures).
    seen: Mutex<HashMap<String, (u64, u64)>>,
}

impl JwksCollector {
    fn new() -> JwksCollector {
        let counter = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["issuer"]).expect("valid metric")
        };
        JwksCollector {
            fetches: counter(
                "mcpgate_jwks_fetches_total",
                "JWKS fetch attempts, by issuer.",
            ),
            failures: counter(
                "mcpgate_jwks_fetch_failures_total",
                "JWKS fetch attempts that left the keys unchanged (network, status, document), by issuer.",
            ),
            age: GaugeVec::new(
                Opts::new(
                    "mcpgate_jwks_keys_age_seconds",
                    "Seconds since the signing keys in use were fetched, by issuer (absent before the first fetch).",
                ),
                &["issuer"],
            )
            .expect("valid metric"),
            seen: Mutex::new(HashMap::new()),
        }
    }
}

/// How much a counter grew since `last`; a smaller value means it restarted from zero.
fn growth(now: u64, last: u64) -> u64 {
    if now >= last {
        now - last
    } else {
        now
    }
}

impl Collector for JwksCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.fetches.desc();
        d.extend(self.failures.desc());
        d.extend(self.age.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.age.reset();
        let stats = lock(&JWKS_SOURCE)
            .as_ref()
            .map(|s| s.load().validator.jwks_stats())
            .unwrap_or_default();
        let mut seen = lock(&self.seen);
        for s in stats {
            let issuer = [s.issuer.as_str()];
            let last = seen.insert(s.issuer.clone(), (s.fetches, s.failures));
            let (f0, e0) = last.unwrap_or_default();
            self.fetches
                .with_label_values(&issuer)
                .inc_by(growth(s.fetches, f0));
            self.failures
                .with_label_values(&issuer)
                .inc_by(growth(s.failures, e0));
            if let Some(age) = s.keys_age {
                self.age.with_label_values(&issuer).set(age.as_secs_f64());
            }
        }
        let mut out = self.fetches.collect();
        out.extend(self.failures.collect());
        out.extend(self.age.collect());
        out
    }
}

/// Listeners' SNI resolvers, whose loaded certificates the expiry collector reads.
static CERTIFICATES: Mutex<Vec<(String, Arc<SniResolver>)>> = Mutex::new(Vec::new());

/// Report the expiry of the certificates `resolver` serves on `listener` (reloaded ones too).
pub fn watch_certificates(listener: std::net::SocketAddr, resolver: &Arc<SniResolver>) {
    lock(&CERTIFICATES).push((listener.to_string(), resolver.clone()));
}

/// Every served certificate as (listener, DNS names, `notAfter` Unix seconds), for the status page.
pub fn served_certificates() -> Vec<(String, Vec<String>, i64)> {
    lock(&CERTIFICATES)
        .iter()
        .flat_map(|(listener, resolver)| {
            resolver
                .served()
                .into_iter()
                .map(|(names, not_after)| (listener.clone(), names, not_after))
        })
        .collect()
}

/// `mcpgate_certificate_expiry_seconds{listener,cert}`: each served certificate's `notAfter`.
struct CertExpiryCollector {
    expiry: GaugeVec,
}

impl CertExpiryCollector {
    fn new() -> CertExpiryCollector {
        let opts = Opts::new(
            "mcpgate_certificate_expiry_seconds",
            "Expiry (notAfter) of each served certificate as a Unix timestamp, by listener and certificate file.",
        );
        CertExpiryCollector {
            expiry: GaugeVec::new(opts, &["listener", "cert"]).expect("valid metric"),
        }
    }
}

impl Collector for CertExpiryCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.expiry.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.expiry.reset();
        for (listener, resolver) in lock(&CERTIFICATES).iter() {
            for (cert, not_after) in resolver.expiries() {
                self.expiry
                    .with_label_values(&[listener.as_str(), cert.as_str()])
                    .set(not_after as f64);
            }
        }
        self.expiry.collect()
    }
}

/// `mcpgate_redis_duration_seconds{purpose}` and `mcpgate_redis_errors_total{purpose,reason}`:
/// every Redis round trip of the session store and the rate limiter.
struct PrometheusRedis;

static REDIS: LazyLock<(HistogramVec, IntCounterVec)> = LazyLock::new(|| {
    (
        prometheus::register_histogram_vec!(
            "mcpgate_redis_duration_seconds",
            "Redis round trips, by purpose (sessions, rate_limits).",
            &["purpose"],
            vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0]
        )
        .expect("register mcpgate_redis_duration_seconds"),
        prometheus::register_int_counter_vec!(
            "mcpgate_redis_errors_total",
            "Redis round trips that failed, by purpose and reason (store_timeout, store_error).",
            &["purpose", "reason"]
        )
        .expect("register mcpgate_redis_errors_total"),
    )
});

impl mcpgate_store::StoreObserver for PrometheusRedis {
    fn redis_call(
        &self,
        purpose: &'static str,
        elapsed: Duration,
        error: Option<&mcpgate_store::StoreError>,
    ) {
        let (duration, errors) = &*REDIS;
        duration
            .with_label_values(&[purpose])
            .observe(elapsed.as_secs_f64());
        if let Some(e) = error {
            errors.with_label_values(&[purpose, e.reason()]).inc();
        }
    }
}
