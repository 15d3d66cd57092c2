//! The `tracing:` section: where OpenTelemetry spans go (OTLP over HTTP), as written and as
//! validated. Absent means no spans are made and nothing is exported.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use crate::model::Secret;
use crate::raw::Str;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTracing {
    pub otlp_endpoint: Option<Str>,
    pub service_name: Option<Str>,
    pub sample_ratio: Option<Str>,
    pub headers: Option<BTreeMap<String, Str>>,
}

/// OTLP/HTTP trace export (protobuf), on when the `tracing:` section is present.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// Where spans are POSTed: the configured endpoint with `/v1/traces` appended, as the OTLP
    /// specification does for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub traces_url: Url,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Share of new traces (no sampled parent) that are recorded, 0.0–1.0. A caller's
    /// `traceparent` decides for its own trace (parent-based sampling).
    pub sample_ratio: f64,
    /// Extra request headers for the collector (API keys): secrets, never logged.
    pub headers: Vec<(String, Secret)>,
}

/// `service.name` when none is configured.
pub const DEFAULT_SERVICE_NAME: &str = "mcpgate";
