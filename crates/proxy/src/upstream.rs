//! Upstreams compiled from configuration: where to connect, with which timeouts and TLS, which
//! headers to add, and the asynchronously resolved addresses (pingora's own `HttpPeer::new`
//! resolves with blocking DNS and panics on failure, so names are resolved here, off the request
//! path, and re-resolved in the background so changing Kubernetes service IPs are followed).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};
use mcpgate_config::{Upstream, UpstreamTimeouts};
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};

/// How often upstream host names are re-resolved.
pub const RERESOLVE_INTERVAL: Duration = Duration::from_secs(30);
/// Pooled upstream connections idle longer than this are dropped (below common keep-alives).
const POOL_IDLE: Duration = Duration::from_secs(30);

pub struct CompiledUpstream {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `host[:port]` as sent in the upstream `Host` header.
    pub authority: String,
    /// The same, ready to send.
    pub authority_header: HeaderValue,
    /// The upstream URL's path (the route path is replaced by it).
    pub base_path: String,
    /// `scheme://authority`, to recognise absolute URLs pointing at the upstream.
    pub origin: String,
    pub sni: String,
    pub timeouts: UpstreamTimeouts,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `upstream.strip_headers`: more request headers never forwarded.
    pub strip_headers: Vec<HeaderName>,
    ca: Option<Arc<[WrappedX509]>>,
    client_cert: Option<Arc<CertKey>>,
    /// Separates connection pools by trust settings: pingora's reuse key ignores the CA, so
    /// without this a connection verified under one route's CA could serve another route.
    pool_group: u64,
    addrs: ArcSwap<Vec<SocketAddr>>,
    next: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("header {0:?}: {1}")]
    Header(String, String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

impl CompiledUpstream {
    pub fn compile(up: &Upstream) -> Result<CompiledUpstream, UpstreamError> {
        let tls = up.url.scheme() == "https";
        let host = up.url.host_str().unwrap_or_default().to_string();
        let port = up
            .url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let authority = match up.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let authority_header = HeaderValue::from_str(&authority)
            .map_err(|_| UpstreamError::Header("host".into(), "not a valid header value".into()))?;
        let headers = configured_headers(up)?;
        let strip_headers = up
            .strip_headers
            .iter()
            .map(|n| {
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|e| UpstreamError::Header(n.clone(), e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let ca = up.tls.ca_file.as_deref().map(load_ca).transpose()?;
        let client_cert = load_client_cert(up)?;
        // A literal IP needs no DNS.
        let initial = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map(|ip| vec![SocketAddr::new(ip, port)])
            .unwrap_or_default();
        let pool_group = pool_group(ca.as_deref(), up);
        Ok(CompiledUpstream {
            pool_group,
            tls,
            sni: up.tls.server_name.clone().unwrap_or_else(|| host.clone()),
            origin: format!("{}://{}", up.url.scheme(), authority),
            host,
            port,
            authority,
            authority_header,
            base_path: up.url.path().to_string(),
            timeouts: up.timeouts,
            headers,
            strip_headers,
            ca,
            client_cert,
            addrs: ArcSwap::from_pointee(initial),
            next: AtomicUsize::new(0),
        })
    }

    /// True when the host is a name that needs resolving.
    pub fn needs_dns(&self) -> bool {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_err()
    }

    /// Resolve the host name now; on failure the last good addresses stay in use.
    pub async fn resolve(&self) -> Result<usize, std::io::Error> {
        if !self.needs_dns() {
            return Ok(self.addrs.load().len());
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .collect();
        if found.is_empty() {
            return Err(std::io::Error::other("no addresses"));
        }
        let n = found.len();
        self.addrs.store(Arc::new(found));
        Ok(n)
    }

    /// Take over the addresses `old` resolved for the same host and port (a reload compiles
    /// fresh upstreams; without this each would answer 502 until the next re-resolution).
    pub fn adopt_addresses(&self, old: &CompiledUpstream) {
        if self.needs_dns() && self.host == old.host && self.port == old.port {
            self.addrs.store(old.addrs.load_full());
        }
    }

    /// True once the host has at least one address (an IP literal always has).
    pub fn has_addresses(&self) -> bool {
        !self.addrs.load().is_empty()
    }

    /// The next address, round-robin; `None` while the name has never resolved.
    pub fn pick_addr(&self) -> Option<SocketAddr> {
        let addrs = self.addrs.load();
        if addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % addrs.len();
        Some(addrs[i])
    }

    /// A pingora peer for one request; `streaming` selects the stream idle timeout.
    pub fn peer(&self, addr: SocketAddr, streaming: bool) -> HttpPeer {
        let mut peer = HttpPeer::new(addr, self.tls, self.sni.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(self.timeouts.connect);
        o.total_connection_timeout = Some(self.timeouts.connect + self.timeouts.connect);
        o.read_timeout = Some(if streaming {
            self.timeouts.stream_idle
        } else {
            self.timeouts.request
        });
        o.write_timeout = Some(self.timeouts.request);
        o.idle_timeout = Some(POOL_IDLE);
        o.verify_cert = true;
        o.verify_hostname = true;
        if let Some(ca) = &self.ca {
            o.ca = Some(ca.clone());
        }
        peer.client_cert_key = self.client_cert.clone();
        peer.group_key = self.pool_group;
        peer
    }
}

/// `upstream.headers`, parsed once (the upstream's own credential, for instance).
fn configured_headers(up: &Upstream) -> Result<Vec<(HeaderName, HeaderValue)>, UpstreamError> {
    up.headers
        .iter()
        .map(|(name, value)| {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| UpstreamError::Header(name.clone(), e.to_string()))?;
            let v = HeaderValue::from_str(value.expose()).map_err(|_| {
                UpstreamError::Header(name.clone(), "value is not a valid header value".into())
            })?;
            Ok((n, v))
        })
        .collect()
}

/// The client certificate for mutual TLS toward the upstream, when configured.
fn load_client_cert(up: &Upstream) -> Result<Option<Arc<CertKey>>, UpstreamError> {
    let Some(pair) = &up.tls.client_cert else {
        return Ok(None);
    };
    let cert = crate::tls::load_cert_key(&pair.cert, &pair.key).map_err(|message| {
        UpstreamError::File {
            path: pair.cert.display().to_string(),
            message,
        }
    })?;
    Ok(Some(Arc::new(cert)))
}

/// A stable key for the upstream's trust settings (CA certificates and client certificate files).
fn pool_group(ca: Option<&[WrappedX509]>, up: &Upstream) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for cert in ca.unwrap_or_default() {
        h.update(cert.borrow_raw_cert());
    }
    if let Some(pair) = &up.tls.client_cert {
        h.update(pair.cert.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(pair.key.as_os_str().as_encoded_bytes());
    }
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

fn load_ca(path: &std::path::Path) -> Result<Arc<[WrappedX509]>, UpstreamError> {
    let err = |message: String| UpstreamError::File {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let ders: Vec<Vec<u8>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("invalid PEM: {e}")))?
        .into_iter()
        .map(|c| c.to_vec())
        .collect();
    if ders.is_empty() {
        return Err(err("no certificate in CA bundle".into()));
    }
    for der in &ders {
        crate::tls::check_x509(der).map_err(err)?;
    }
    Ok(ders
        .into_iter()
        .map(|d| WrappedX509::new(d, parse_x509))
        .collect::<Vec<_>>()
        .into())
}

#[cfg(test)]
mod tests {
    use super::CompiledUpstream;
    use mcpgate_config::Upstream;
    use std::net::SocketAddr;
    use std::sync::Arc;

    fn upstream(url: &str) -> CompiledUpstream {
        CompiledUpstream::compile(&Upstream {
            url: url.parse().unwrap(),
            timeouts: Default::default(),
            tls: Default::default(),
            headers: Default::default(),
            strip_headers: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_reloaded_upstream_takes_over_the_addresses_of_the_same_host() {
        let old = upstream("http://mcp.internal:8080/mcp");
        let addr: SocketAddr = "10.0.0.7:8080".parse().unwrap();
        old.addrs.store(Arc::new(vec![addr]));

        let same = upstream("http://mcp.internal:8080/other");
        assert!(
            !same.has_addresses(),
            "a fresh name has none until resolved"
        );
        same.adopt_addresses(&old);
        assert_eq!(same.pick_addr(), Some(addr));

        let other_port = upstream("http://mcp.internal:9090/mcp");
        other_port.adopt_addresses(&old);
        assert!(!other_port.has_addresses());
        assert!(upstream("http://127.0.0.1:1/mcp").has_addresses());
    }
}
