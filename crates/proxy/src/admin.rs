//! The admin listener: `/healthz` (process up), `/readyz` (configuration loaded, listeners
//! accepting, identity providers' keys fetched, not draining) and `/metrics` (Prometheus).
//! It is never served on a public listener.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::snapshot::SharedSnapshot;

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
            _ => text(404, "text/plain", b"not found\n".to_vec()),
        }
    }
}
