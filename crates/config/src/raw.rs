//! The serde input types: the YAML document exactly as written, before validation.
//!
//! Every struct denies unknown keys. Scalars that need checking (URLs, durations, sizes,
//! addresses) stay [`Str`] here; `validate` interpolates and parses them. Required keys are
//! `Option`s too, so that validation can report every missing key at once.

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A scalar as written in the document (YAML numbers and booleans keep their source text).
/// Its value is read only through `validate`'s context, which applies `${VAR}` interpolation.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct Str(pub(crate) String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub public_url: Option<Str>,
    pub listeners: Option<Vec<RawListener>>,
    pub admin: Option<RawAdmin>,
    pub routes: Option<Vec<RawRoute>>,
    pub issuers: Option<Vec<RawIssuer>>,
    pub limits: Option<RawLimits>,
    pub logging: Option<RawLogging>,
    pub shutdown: Option<RawShutdown>,
    pub sessions: Option<crate::sessions::RawSessions>,
    pub tracing: Option<crate::telemetry::RawTracing>,
    pub rate_limits: Option<crate::rate_limits::RawRateLimits>,
    pub login: Option<crate::login::RawLogin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    pub bind: Option<Str>,
    pub tls: Option<RawListenerTls>,
    pub h2c: Option<bool>,
    pub trusted_proxies: Option<Vec<Str>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListenerTls {
    pub cert: Option<Str>,
    pub key: Option<Str>,
    pub certificates: Option<Vec<RawCertPair>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertPair {
    pub cert: Option<Str>,
    pub key: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub bind: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub name: Option<Str>,
    pub path: Option<Str>,
    pub host: Option<Str>,
    pub upstream: Option<RawUpstream>,
    pub auth: Option<RawAuth>,
    pub tools: Option<Vec<RawRule>>,
    pub resources: Option<Vec<RawRule>>,
    pub prompts: Option<Vec<RawRule>>,
    pub origins: Option<Vec<Str>>,
    pub allow_batches: Option<bool>,
    pub identity_headers: Option<RawIdentityHeaders>,
    pub session_idle_timeout: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(rename = "match")]
    pub pattern: Option<Str>,
    pub scopes: Option<Vec<Str>>,
    pub groups: Option<Vec<Str>>,
    pub deny: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentityHeaders {
    pub subject: Option<Str>,
    pub email: Option<Str>,
    pub scopes: Option<Str>,
    pub client_id: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub url: Option<Str>,
    pub timeouts: Option<RawUpstreamTimeouts>,
    pub tls: Option<RawUpstreamTls>,
    pub headers: Option<BTreeMap<String, Str>>,
    pub headers_file: Option<BTreeMap<String, Str>>,
    pub strip_headers: Option<Vec<Str>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTimeouts {
    pub connect: Option<Str>,
    pub request: Option<Str>,
    pub stream_idle: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTls {
    pub ca_file: Option<Str>,
    pub client_cert: Option<Str>,
    pub client_key: Option<Str>,
    pub server_name: Option<Str>,
}

/// `auth: none` or `auth: { issuers: [...], resource: ... }`.
// Built once per configuration load; boxing would only add noise at every use.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum RawAuth {
    /// A scalar; validation checks that it says `none`.
    Scalar(Str),
    Issuers(RawAuthIssuers),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthIssuers {
    pub issuers: Option<Vec<Str>>,
    pub resource: Option<Str>,
    pub required_scopes: Option<Vec<Str>>,
    pub allowed_domains: Option<Vec<Str>>,
    pub require_email_verified: Option<bool>,
    pub allowed_groups: Option<Vec<Str>>,
    pub require_claims: Option<BTreeMap<String, Str>>,
    pub scope_hierarchy: Option<BTreeMap<String, Vec<Str>>>,
    pub scopes_supported: Option<Vec<Str>>,
    pub resource_name: Option<Str>,
    pub resource_documentation: Option<Str>,
}

impl<'de> Deserialize<'de> for RawAuth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AuthVisitor;
        impl<'de> Visitor<'de> for AuthVisitor {
            type Value = RawAuth;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`none` or a mapping with `issuers`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAuth, E> {
                Ok(RawAuth::Scalar(Str(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAuth, A::Error> {
                RawAuthIssuers::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawAuth::Issuers)
            }
        }
        deserializer.deserialize_any(AuthVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIssuer {
    pub name: Option<Str>,
    pub issuer: Option<Str>,
    pub discovery: Option<bool>,
    pub jwks_uri: Option<Str>,
    pub jwks_file: Option<Str>,
    pub algorithms: Option<Vec<Str>>,
    pub leeway: Option<Str>,
    pub required_claims: Option<Vec<Str>>,
    pub audiences: Option<Vec<Str>>,
    pub require_at_jwt: Option<bool>,
    pub claims: Option<RawClaimNames>,
    pub jwks_refresh: Option<RawJwksRefresh>,
    pub introspection: Option<RawIntrospection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaimNames {
    pub groups: Option<Str>,
    pub email: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwksRefresh {
    pub min_interval: Option<Str>,
    pub max_interval: Option<Str>,
    pub unknown_kid_cooldown: Option<Str>,
    pub stale_window: Option<Str>,
    pub timeout: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntrospection {
    pub endpoint: Option<Str>,
    pub client_id: Option<Str>,
    pub client_secret: Option<Str>,
    pub client_secret_file: Option<Str>,
    pub auth_method: Option<Str>,
    pub cache_ttl: Option<Str>,
    pub negative_cache_ttl: Option<Str>,
    pub timeout: Option<Str>,
    pub max_concurrent: Option<Str>,
    pub accept_missing_audience: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_request_body: Option<Str>,
    pub max_request_headers: Option<Str>,
    pub max_buffered_bodies: Option<Str>,
    pub max_buffered_per_connection: Option<Str>,
    pub client_read_timeout: Option<Str>,
    pub request_head_timeout: Option<Str>,
    pub client_write_timeout: Option<Str>,
    pub client_keepalive: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogging {
    pub format: Option<Str>,
    pub level: Option<Str>,
    pub access_log: Option<bool>,
    pub audit_file: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShutdown {
    pub grace_period: Option<Str>,
}
