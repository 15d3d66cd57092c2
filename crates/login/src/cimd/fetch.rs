//! The SSRF-guarded HTTPS fetch of one metadata document: a client that only ever connects to
//! vetted addresses, never follows a redirect or a proxy, and reads a bounded body within one
//! deadline.
//!
//! The address check sits in the DNS resolver, so the connector receives only addresses that
//! passed it — what is checked is what is connected to, and a name that answers differently on
//! a second lookup (DNS rebinding) gains nothing. IP-literal hosts never reach a resolver
//! (hyper connects to them directly), so they are checked before the request is made.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mcpgate_config::MetadataFetch;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::address::forbidden_reason;
use super::{reason, CimdError};

/// A fetched document: its body, and the `Cache-Control` it came with.
pub struct Fetched {
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
}

/// The HTTP client for metadata documents, with the configured guards.
pub struct Fetcher {
    http: reqwest::Client,
    guard: bool,
    timeout: Duration,
    max_size: u64,
    /// Bounds the fetches in flight: each distinct `client_id` costs one, and anyone may send
    /// many distinct ones.
    permits: tokio::sync::Semaphore,
}

/// Most metadata documents fetched at once; more wait (within their deadline) for a slot.
const MAX_CONCURRENT_FETCHES: usize = 32;

impl Fetcher {
    pub fn new(config: &MetadataFetch) -> Result<Fetcher, String> {
        // The process has one crypto provider, ring (pingora's); reqwest is built without one
        // and uses the installed default. Idempotent, like the proxy's own installation.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let guard = !config.allow_private_networks;
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect on our behalf, past the address check.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { guard }))
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            // Merged with the system roots (rustls-platform-verifier, as every other reqwest
            // client of the gateway uses), not instead of them.
            builder = builder.tls_certs_merge(read_ca_file(path)?);
        }
        let http = builder
            .build()
            .map_err(|e| format!("metadata document HTTP client: {e}"))?;
        Ok(Fetcher {
            http,
            guard,
            timeout: config.timeout,
            max_size: config.max_size,
            permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        })
    }

    /// The body of `url` if it answers 200 within the deadline and the size cap.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, CimdError> {
        if self.guard {
            check_literal_host(url)?;
        }
        let timeout = self.timeout;
        let work = async {
            let _slot = self.permits.acquire().await.map_err(|_| CimdError {
                reason: reason::UNAVAILABLE,
                detail: "the fetcher is shutting down".into(),
            })?;
            self.fetch_unbounded(url).await
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(CimdError {
                    reason: reason::TIMEOUT,
                    detail: format!("no complete answer within {timeout:?}"),
                })
            })
    }

    async fn fetch_unbounded(&self, url: &Url) -> Result<Fetched, CimdError> {
        let mut resp = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        check_status(resp.status())?;
        let cache_control = cache_control(resp.headers());
        let cap = self.max_size;
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(too_large(cap));
        }
        // Read chunk by chunk and stop at the cap: a chunked body has no length to check first.
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| CimdError {
            reason: reason::UNAVAILABLE,
            detail: format!("reading the document: {}", cause_chain(&e)),
        })? {
            if (body.len() + chunk.len()) as u64 > cap {
                return Err(too_large(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            body,
            cache_control,
        })
    }
}

/// The CA certificates of a PEM bundle (at least one).
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

/// hyper skips the resolver for IP-literal hosts, so the resolver's guard never sees them.
fn check_literal_host(url: &Url) -> Result<(), CimdError> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        // The URL parser turns every numeric IPv4 spelling into `Host::Ipv4`; a domain that
        // still parses as an address would be connected to directly, so check it too.
        Some(Host::Domain(d)) => match d.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(()),
        },
        None => return Ok(()),
    };
    match forbidden_reason(ip) {
        None => Ok(()),
        Some(why) => Err(forbidden(why)),
    }
}

/// The addresses of a name, all of them vetted: one forbidden address refuses the name. Taking
/// only the good ones would let a name that mixes a public and an internal address still be
/// used for probing, and the draft's advice is to refuse such a client outright.
pub(crate) fn vet_addresses(addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, ForbiddenAddress> {
    match addrs.iter().find_map(|a| forbidden_reason(a.ip())) {
        Some(why) => Err(ForbiddenAddress(why)),
        None => Ok(addrs),
    }
}

/// The resolver's refusal, found again in the error chain of the failed request.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves to a forbidden address: {0}")]
pub(crate) struct ForbiddenAddress(&'static str);

/// The system resolver, with the address check when the guard is on.
struct GuardedResolver {
    guard: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let guard = self.guard;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs = if guard { vet_addresses(addrs)? } else { addrs };
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// 200 only: a redirect is not followed (its target was never vetted as the client's identity),
/// and anything else is not the document.
fn check_status(status: reqwest::StatusCode) -> Result<(), CimdError> {
    if status == reqwest::StatusCode::OK {
        return Ok(());
    }
    if status.is_redirection() {
        return Err(CimdError {
            reason: reason::REDIRECT,
            detail: format!("the server answered {status}; redirects are not followed"),
        });
    }
    Err(CimdError {
        reason: reason::UNAVAILABLE,
        detail: format!("the server answered {status}, not 200"),
    })
}

fn cache_control(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Why the request failed; the resolver's refusal keeps its own reason.
fn send_error(e: &reqwest::Error) -> CimdError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(f) = err.downcast_ref::<ForbiddenAddress>() {
            return forbidden(f.0);
        }
        source = err.source();
    }
    CimdError {
        reason: reason::UNAVAILABLE,
        detail: cause_chain(e),
    }
}

/// reqwest's own message stops at "error sending request" and names the URL; the innermost
/// cause (`Connection refused`, `invalid peer certificate: …`) is what an operator needs.
fn cause_chain(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let kind = if e.is_connect() {
        "connect error"
    } else {
        "request failed"
    };
    format!("{kind}: {cause}")
}

fn forbidden(why: &str) -> CimdError {
    CimdError {
        reason: reason::FORBIDDEN_ADDRESS,
        detail: format!("the client's host is not a public address ({why})"),
    }
}

fn too_large(cap: u64) -> CimdError {
    CimdError {
        reason: reason::TOO_LARGE,
        detail: format!("the document is larger than {cap} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn a_name_with_one_forbidden_address_is_refused_whole() {
        // What a rebinding or split-horizon name looks like to the resolver.
        let mixed = vec![sa("93.184.216.34:0"), sa("127.0.0.1:0")];
        assert!(vet_addresses(mixed).is_err());
        let mixed = vec![sa("[2606:4700::1]:0"), sa("[::ffff:169.254.169.254]:0")];
        assert!(vet_addresses(mixed).is_err());
        let public = vec![sa("93.184.216.34:0"), sa("[2606:4700::1]:0")];
        assert_eq!(vet_addresses(public.clone()).ok(), Some(public));
    }

    #[test]
    fn literal_hosts_are_checked_before_any_connection() {
        let refused = |u: &str| {
            let url = Url::parse(u).expect("url");
            check_literal_host(&url).map_err(|e| e.reason)
        };
        assert_eq!(
            refused("https://169.254.169.254/latest/meta-data"),
            Err(reason::FORBIDDEN_ADDRESS)
        );
        assert_eq!(
            refused("https://0x7f.0.0.1/c"),
            Err(reason::FORBIDDEN_ADDRESS)
        );
        assert_eq!(
            refused("https://[::ffff:127.0.0.1]/c"),
            Err(reason::FORBIDDEN_ADDRESS)
        );
        assert_eq!(
            refused("https://[fd00::1]/c"),
            Err(reason::FORBIDDEN_ADDRESS)
        );
        assert_eq!(refused("https://93.184.216.34/c"), Ok(()));
        assert_eq!(refused("https://app.example.com/c"), Ok(()));
    }
}
