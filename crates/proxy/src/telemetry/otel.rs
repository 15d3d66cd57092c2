//! The OpenTelemetry pipeline: one tracer per process exporting spans over OTLP/HTTP
//! (protobuf). The SDK's batch processor runs on its own thread with reqwest's blocking client,
//! so export never borrows a pingora runtime nor blocks a request.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use mcpgate_config::Tracing;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// Export gives up on a collector after this long (spans are dropped, requests never wait).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

struct Pipeline {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    #[error("cannot build the OTLP HTTP client: {0}")]
    Client(String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// Start exporting spans as `config` says (once per process; the section is read at start-up).
pub fn init(config: Option<&Tracing>) -> Result<(), TracingError> {
    let Some(config) = config else {
        return Ok(());
    };
    if PIPELINE.get().is_some() {
        return Ok(());
    }
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(EXPORT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| TracingError::Client(e.to_string()))?;
    let headers: HashMap<String, String> = config
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(config.traces_url.as_str())
        .with_timeout(EXPORT_TIMEOUT)
        .with_headers(headers)
        .build()
        .map_err(|e| TracingError::Exporter(e.to_string()))?;
    // Parent-based: a caller's sampled `traceparent` is honoured, new traces use the ratio.
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("mcpgate");
    let _ = PIPELINE.set(Pipeline { provider, tracer });
    Ok(())
}

/// The process's tracer, when tracing is configured.
pub fn tracer() -> Option<&'static SdkTracer> {
    PIPELINE.get().map(|p| &p.tracer)
}

/// Export what is still queued (at shutdown, after the drain).
pub fn shutdown() {
    if let Some(p) = PIPELINE.get() {
        let _ = p.provider.shutdown();
    }
}
