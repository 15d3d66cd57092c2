//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, as the MCP
//! 2026-07-28 authorization spec uses them): a `client_id` that is an https URL names a document
//! the client publishes about itself. This module owns turning such a `client_id` into checked
//! metadata: the URL rules, the SSRF-guarded fetch, the document checks and the cache.

pub mod address;
pub mod client_id;
pub mod document;
mod fetch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpgate_config::MetadataFetch;
use moka::Expiry;
use url::Url;

pub use address::{forbidden_reason, is_forbidden};
pub use client_id::parse_client_id;

/// The stable reasons a `client_id` or its document is refused (metrics, logs, error bodies).
pub mod reason {
    /// The `client_id` is not an https URL with a path in canonical form.
    pub const CLIENT_ID_INVALID: &str = "client_id_invalid";
    /// The host is, or resolves to, an address the fetch must not reach (SSRF guard).
    pub const FORBIDDEN_ADDRESS: &str = "client_metadata_forbidden_address";
    /// No document: DNS, connection or TLS failure, or a status other than 200 and 3xx.
    pub const UNAVAILABLE: &str = "client_metadata_unavailable";
    /// The server answered with a redirect, which is never followed.
    pub const REDIRECT: &str = "client_metadata_redirect";
    /// No complete answer within `fetch.timeout`.
    pub const TIMEOUT: &str = "client_metadata_timeout";
    /// The body exceeds `fetch.max_size`.
    pub const TOO_LARGE: &str = "client_metadata_too_large";
    /// The body is not one strict JSON object.
    pub const NOT_JSON: &str = "client_metadata_not_json";
    /// The document's `client_id` is not exactly the URL it was fetched from.
    pub const ID_MISMATCH: &str = "client_metadata_id_mismatch";
    /// A field of the document is missing, malformed or not acceptable.
    pub const INVALID: &str = "client_metadata_invalid";
}

/// A client's metadata document, fetched and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// Equal to the URL the document was fetched from, exactly.
    pub client_id: String,
    /// The verified host the document was served from (shown on the consent page): the
    /// `client_id` URL's host, without port (`[…]` around an IPv6 literal).
    pub host: String,
    /// Cleaned for display (no control or bidi characters, bounded); still HTML-escape it.
    pub client_name: Option<String>,
    /// An https URL, if given.
    pub client_uri: Option<String>,
    /// Non-empty; each acceptable per `mcpgate_config::redirect_uri_problem`. Match exactly.
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, and `refresh_token` if the client asked for it. RFC 7591's default
    /// (`["authorization_code"]`) when the document says nothing.
    pub grant_types: Vec<String>,
}

impl ClientMetadata {
    /// Whether the client registered for refresh tokens.
    pub fn allows_refresh(&self) -> bool {
        self.grant_types.iter().any(|g| g == "refresh_token")
    }
}

/// Why a client's metadata document was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct CimdError {
    /// Stable snake_case reason (see [`reason`]).
    pub reason: &'static str,
    pub detail: String,
}

/// Documents are cached per their `Cache-Control: max-age`, within these bounds. The floor keeps
/// one client from making us fetch on every request (`no-store`/`no-cache` also get the floor:
/// the document must at least hold still for one authorization round trip, and refetching more
/// often only makes the gateway a load generator); the ceiling bounds how long a client that
/// changed or withdrew its document is served from the old one.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Without `max-age`.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// A refusal is remembered this long, so a bad client cannot make us hammer its host (or a
/// victim host it names), yet a fixed document is picked up quickly.
const FAILURE_TTL: Duration = Duration::from_secs(10);
/// Memory bound of the cache, in approximate bytes of what entries hold.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// One cached outcome (a document or a refusal) and how long it holds.
struct Entry {
    outcome: Result<Arc<ClientMetadata>, CimdError>,
    ttl: Duration,
}

struct EntryExpiry;

impl Expiry<String, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Fetches client metadata documents under the configured guards, with a bounded cache.
pub struct MetadataFetcher {
    fetcher: fetch::Fetcher,
    cache: moka::future::Cache<String, Arc<Entry>>,
}

impl MetadataFetcher {
    /// Builds the HTTP client (reads `ca_file`); fails on an unreadable or empty CA bundle.
    pub fn new(config: &MetadataFetch) -> Result<MetadataFetcher, String> {
        let cache = moka::future::Cache::builder()
            .max_capacity(CACHE_BYTES)
            .weigher(|k: &String, v: &Arc<Entry>| entry_weight(k, v))
            .expire_after(EntryExpiry)
            .build();
        Ok(MetadataFetcher {
            fetcher: fetch::Fetcher::new(config)?,
            cache,
        })
    }

    /// The checked metadata of `client_id` (an https URL with a path), cached per HTTP caching.
    /// Concurrent calls for one `client_id` share one fetch; refusals are cached briefly too.
    pub async fn client(&self, client_id: &str) -> Result<Arc<ClientMetadata>, CimdError> {
        // Checked before the cache: malformed ids cost nothing and never occupy an entry.
        let url = parse_client_id(client_id)?;
        let entry = self.cache.get_with_by_ref(client_id, self.load(url)).await;
        entry.outcome.clone()
    }

    async fn load(&self, url: Url) -> Arc<Entry> {
        let entry = match self.fetch_and_check(&url).await {
            Ok((meta, ttl)) => {
                tracing::debug!(client_id = %url, ttl = ?ttl, "client metadata document accepted");
                Entry {
                    outcome: Ok(Arc::new(meta)),
                    ttl,
                }
            }
            Err(e) => {
                tracing::info!(client_id = %url, reason = e.reason, detail = %e.detail,
                    "client metadata document refused");
                Entry {
                    outcome: Err(e),
                    ttl: FAILURE_TTL,
                }
            }
        };
        Arc::new(entry)
    }

    async fn fetch_and_check(&self, url: &Url) -> Result<(ClientMetadata, Duration), CimdError> {
        let fetched = self.fetcher.fetch(url).await?;
        let limits = mcpgate_json::Limits {
            max_depth: 16,
            max_bytes: fetched.body.len(),
        };
        // Strict parsing: a document with two `client_id` (or `redirect_uris`) keys is refused,
        // not read the way one parser happens to read it.
        let doc = mcpgate_json::parse_object(&fetched.body, limits).map_err(|e| CimdError {
            reason: reason::NOT_JSON,
            detail: e.to_string(),
        })?;
        let host = url.host_str().unwrap_or_default();
        let meta = document::check_document(&doc, url.as_str(), host)?;
        Ok((meta, cache_ttl(fetched.cache_control.as_deref())))
    }
}

impl std::fmt::Debug for MetadataFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataFetcher")
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// How long a document is kept, from its `Cache-Control` (RFC 9111 §5.2.2): `max-age` clamped to
/// [`MIN_TTL`, `MAX_TTL`]; `no-store`, `no-cache` or an unreadable `max-age` get the floor;
/// nothing said gets [`DEFAULT_TTL`].
fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let Some(value) = cache_control else {
        return DEFAULT_TTL;
    };
    let mut ttl = DEFAULT_TTL;
    for directive in value.split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return MIN_TTL;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            ttl = v
                .trim_matches('"')
                .parse::<u64>()
                .map_or(MIN_TTL, Duration::from_secs);
        }
    }
    ttl.clamp(MIN_TTL, MAX_TTL)
}

/// Approximate bytes an entry holds (the weigher's unit).
fn entry_weight(key: &str, entry: &Entry) -> u32 {
    let held = match &entry.outcome {
        Ok(m) => {
            m.client_id.len()
                + m.host.len()
                + m.client_name.as_ref().map_or(0, String::len)
                + m.client_uri.as_ref().map_or(0, String::len)
                + m.redirect_uris.iter().map(String::len).sum::<usize>()
                + m.grant_types.iter().map(String::len).sum::<usize>()
        }
        Err(e) => e.detail.len(),
    };
    u32::try_from(key.len() + held + 256).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_honoured_within_bounds() {
        let s = Duration::from_secs;
        assert_eq!(cache_ttl(None), DEFAULT_TTL);
        assert_eq!(cache_ttl(Some("public")), DEFAULT_TTL);
        assert_eq!(cache_ttl(Some("max-age=600")), s(600));
        assert_eq!(cache_ttl(Some("public, Max-Age=\"120\"")), s(120));
        assert_eq!(cache_ttl(Some("max-age=1")), MIN_TTL);
        assert_eq!(cache_ttl(Some("max-age=0")), MIN_TTL);
        assert_eq!(cache_ttl(Some("max-age=31536000")), MAX_TTL);
        assert_eq!(cache_ttl(Some("max-age=99999999999999999999999")), MIN_TTL);
        assert_eq!(cache_ttl(Some("max-age=-5")), MIN_TTL);
        assert_eq!(cache_ttl(Some("max-age=abc")), MIN_TTL);
    }

    #[test]
    fn no_store_gets_the_floor_not_zero() {
        assert_eq!(cache_ttl(Some("no-store")), MIN_TTL);
        assert_eq!(cache_ttl(Some("max-age=3600, no-cache")), MIN_TTL);
        assert_eq!(cache_ttl(Some("No-Store, max-age=3600")), MIN_TTL);
    }

    #[test]
    fn the_weight_of_an_entry_grows_with_what_it_holds() {
        let small = Entry {
            outcome: Err(CimdError {
                reason: reason::TIMEOUT,
                detail: "x".into(),
            }),
            ttl: FAILURE_TTL,
        };
        let big = Entry {
            outcome: Ok(Arc::new(ClientMetadata {
                client_id: "https://a.example/c".into(),
                host: "a.example".into(),
                client_name: None,
                client_uri: None,
                redirect_uris: vec!["https://a.example/cb".repeat(50)],
                grant_types: vec!["authorization_code".into()],
            })),
            ttl: DEFAULT_TTL,
        };
        assert!(entry_weight("k", &big) > entry_weight("k", &small) + 900);
    }
}
