//! The admin listener: `/healthz` (process up), `/readyz` (configuration loaded, listeners
//! accepting, identity providers' keys fetched, not draining), `/metrics` (Prometheus) and
//! `/status` (the state at a glance for a person, see `status`). It is never served on a public
//! listener.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::snapshot::{CompiledAuth, CompiledRoute, SharedSnapshot};
use crate::status::{CertificateRow, ConfigRow, IssuerRow, RouteRow, StatusView};

/// Readiness inputs shared with the rest of the process.
#[derive(Default)]
pub struct Readiness {
    pub listeners_bound: AtomicBool,
    pub draining: Arc<AtomicBool>,
    /// Latched once every issuer had its keys at start. A reload that adds an issuer whose IdP
    /// is down then costs only the routes trusting it (503 `keys_unavailable`), not the
    /// readiness of every replica that took the same ConfigMap at once.
    pub keys_fetched: AtomicBool,
}

pub struct AdminApp {
    pub readiness: Arc<Readiness>,
    pub snapshot: SharedSnapshot,
    pub started: SystemTime,
}

fn text(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

impl AdminApp {
    /// Why the gateway is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.readiness.draining.load(Ordering::Relaxed) {
            Some("draining")
        } else if !self.readiness.listeners_bound.load(Ordering::Relaxed) {
            Some("listeners not bound yet")
        } else if !self.readiness.keys_fetched.load(Ordering::Relaxed)
            && !self.snapshot.load().validator.is_ready()
        {
            Some("identity provider keys not fetched yet")
        } else {
            None
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/healthz" => text(200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => match self.not_ready_reason() {
                None => text(200, "text/plain", b"ready\n".to_vec()),
                Some(why) => text(
                    503,
                    "text/plain",
                    format!("not ready: {why}\n").into_bytes(),
                ),
            },
            "/metrics" => text(200, "text/plain; version=0.0.4", crate::metrics::render()),
            "/status" => status_page(&self.status_view()),
            _ => text(404, "text/plain", b"not found\n".to_vec()),
        }
    }
}

/// The page is self-contained: nothing may load from elsewhere, no script may run, no other site
/// may frame it.
fn status_page(view: &StatusView) -> Response<Vec<u8>> {
    let mut r = text(
        200,
        "text/html; charset=utf-8",
        crate::status::render(view).into_bytes(),
    );
    let csp = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";
    if let Ok(v) = http::HeaderValue::from_str(csp) {
        r.headers_mut().insert("content-security-policy", v);
    }
    r
}

impl AdminApp {
    fn status_view(&self) -> StatusView {
        let snapshot = self.snapshot.load();
        let now = SystemTime::now();
        let since = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        let config = crate::reload::config_status(self.started);
        StatusView {
            version: env!("CARGO_PKG_VERSION"),
            uptime: since(self.started),
            not_ready: self.not_ready_reason(),
            config: ConfigRow {
                version: config.hash.unwrap_or_else(|| "built in".into()),
                loaded_ago: since(config.loaded_at),
                last_reload: config.last_attempt.map(|(at, r)| (since(at), r)),
            },
            routes: snapshot.routes.iter().map(route_row).collect(),
            issuers: issuer_rows(&snapshot.validator),
            certificates: certificate_rows(now),
            refusals: crate::metrics::refusals_by_reason(),
        }
    }
}

fn route_row(r: &CompiledRoute) -> RouteRow {
    let location = match &r.host {
        Some(h) => format!("{h}{}", r.path),
        None => format!("{} (any host)", r.path),
    };
    let auth = match &r.auth {
        CompiledAuth::None => "none".to_string(),
        CompiledAuth::Required { trust, .. } => trust.issuers().join(", "),
    };
    RouteRow {
        name: r.name.clone(),
        location,
        upstream: format!("{}{}", r.upstream.origin, r.upstream.base_path),
        auth,
        rules: r.rule_count,
    }
}

fn issuer_rows(validator: &mcpgate_auth::TokenValidator) -> Vec<IssuerRow> {
    validator
        .issuer_status()
        .into_iter()
        .map(|i| IssuerRow {
            kind: match (i.jwks, i.introspection) {
                (true, true) => "JWKS, introspection",
                (true, false) => "JWKS",
                _ => "introspection",
            }
            .to_string(),
            keys: i.keys_age.map(|age| (i.key_count, age)),
            name: i.name,
            issuer: i.issuer,
            last_error: i.last_error,
        })
        .collect()
}

fn certificate_rows(now: SystemTime) -> Vec<CertificateRow> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    crate::telemetry::metrics::served_certificates()
        .into_iter()
        .map(|(listener, names, not_after)| CertificateRow {
            listener,
            names: names.join(", "),
            expires_in_secs: not_after - now,
        })
        .collect()
}
