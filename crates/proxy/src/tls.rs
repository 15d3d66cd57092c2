//! TLS termination material: PEM loading with clear errors (pingora's own loader panics), the
//! SNI certificate resolver, and hot reload of certificate files (on SIGHUP and when the files
//! change) without dropping a connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use mcpgate_config::CertificatePair;
use pingora::utils::tls::CertKey;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// One loaded certificate chain with the DNS names it serves.
#[derive(Debug)]
struct LoadedCert {
    names: Vec<String>,
    key: Arc<CertifiedKey>,
    /// The leaf's `notAfter` (Unix seconds) and its file, for the expiry metric.
    not_after: i64,
    file: String,
}

/// Parse a DER certificate, returning its error as text.
pub fn check_x509(der: &[u8]) -> Result<(), String> {
    x509_parser::parse_x509_certificate(der)
        .map(|_| ())
        .map_err(|e| format!("invalid certificate: {e}"))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    for c in &certs {
        check_x509(c).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(certs)
}

fn read_pem_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no private key found", path.display()))
}

/// A certificate's `notAfter` in Unix seconds (0 if it cannot be parsed, which loading refuses).
fn not_after(der: &[u8]) -> i64 {
    x509_parser::parse_x509_certificate(der).map_or(0, |(_, c)| c.validity().not_after.timestamp())
}

/// DNS names (SAN, else CN) of a leaf certificate, lower-cased.
fn cert_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    names
}

fn load_pair(pair: &CertificatePair) -> Result<LoadedCert, String> {
    let certs = read_pem_certs(&pair.cert)?;
    let key = read_pem_key(&pair.key)?;
    let signing = any_supported_type(&key)
        .map_err(|e| format!("{}: unsupported private key: {e}", pair.key.display()))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "{} does not match {}: {e}",
            pair.key.display(),
            pair.cert.display()
        )
    })?;
    let names = cert_names(&certified.cert[0]);
    Ok(LoadedCert {
        names,
        not_after: not_after(&certified.cert[0]),
        file: pair.cert.display().to_string(),
        key: Arc::new(certified),
    })
}

/// Load a cert/key pair for pingora's upstream client (mTLS toward the upstream).
pub fn load_cert_key(cert: &Path, key: &Path) -> Result<CertKey, String> {
    let certs = read_pem_certs(cert)?;
    let key = read_pem_key(key)?;
    Ok(CertKey::new(
        certs.into_iter().map(|c| c.to_vec()).collect(),
        key.secret_der().to_vec(),
    ))
}

/// Validate every pair now (for `mcpgate check` and start-up), with messages naming the files.
pub fn validate_pairs(pairs: &[CertificatePair]) -> Result<(), String> {
    pairs.iter().try_for_each(|p| load_pair(p).map(|_| ()))
}

fn name_matches(pattern: &str, server_name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => server_name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == server_name,
    }
}

/// SNI resolver over a swappable certificate set; the first certificate is the default.
#[derive(Debug)]
pub struct SniResolver {
    pairs: Vec<CertificatePair>,
    certs: ArcSwap<Vec<LoadedCert>>,
}

impl SniResolver {
    pub fn load(pairs: &[CertificatePair]) -> Result<Arc<SniResolver>, String> {
        let certs = pairs.iter().map(load_pair).collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(SniResolver {
            pairs: pairs.to_vec(),
            certs: ArcSwap::from_pointee(certs),
        }))
    }

    /// Re-read every file; on any error the current certificates stay in service.
    pub fn reload(&self) -> Result<(), String> {
        let certs = self
            .pairs
            .iter()
            .map(load_pair)
            .collect::<Result<Vec<_>, _>>()?;
        self.certs.store(Arc::new(certs));
        Ok(())
    }

    /// Each served certificate's DNS names and `notAfter` (Unix seconds), for the status page.
    pub fn served(&self) -> Vec<(Vec<String>, i64)> {
        self.certs
            .load()
            .iter()
            .map(|c| (c.names.clone(), c.not_after))
            .collect()
    }

    /// Each served certificate's file and `notAfter` (Unix seconds), as currently loaded.
    pub fn expiries(&self) -> Vec<(String, i64)> {
        self.certs
            .load()
            .iter()
            .map(|c| (c.file.clone(), c.not_after))
            .collect()
    }

    fn files(&self) -> Vec<PathBuf> {
        self.pairs
            .iter()
            .flat_map(|p| [p.cert.clone(), p.key.clone()])
            .collect()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.load();
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            if let Some(c) = certs
                .iter()
                .find(|c| c.names.iter().any(|n| name_matches(n, &name)))
            {
                return Some(c.key.clone());
            }
        }
        certs.first().map(|c| c.key.clone())
    }
}

/// A fingerprint of the files' metadata, to notice replacements (including symlink swaps).
fn files_stamp(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| m.modified().ok().map(|t| (t, m.len())))
        })
        .collect()
}

/// Watch the resolvers' files and reload on change or SIGHUP, until the process ends.
pub async fn watch_and_reload(resolvers: Vec<Arc<SniResolver>>, poll: Duration) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut stamps: Vec<_> = resolvers.iter().map(|r| files_stamp(&r.files())).collect();
    loop {
        let by_signal = tokio::select! {
            _ = tokio::time::sleep(poll) => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        for (r, stamp) in resolvers.iter().zip(stamps.iter_mut()) {
            let now = files_stamp(&r.files());
            if by_signal || now != *stamp {
                *stamp = now;
                match r.reload() {
                    Ok(()) => tracing::info!(signal = by_signal, "TLS certificates reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate reload failed; keeping the current certificates")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching() {
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(name_matches("mcp.example.com", "mcp.example.com"));
    }

    fn write_self_signed(dir: &Path, stem: &str, names: &[&str]) -> CertificatePair {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        let pair = CertificatePair {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        pair
    }

    #[test]
    fn missing_and_garbage_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let pair = CertificatePair {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        };
        assert!(validate_pairs(std::slice::from_ref(&pair))
            .unwrap_err()
            .contains("cannot read"));
        std::fs::write(&pair.cert, "garbage").unwrap();
        std::fs::write(&pair.key, "garbage").unwrap();
        assert!(validate_pairs(&[pair])
            .unwrap_err()
            .contains("no certificate"));
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_self_signed(dir.path(), "a", &["a.test"]);
        let b = write_self_signed(dir.path(), "b", &["b.test"]);
        let crossed = CertificatePair {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        assert!(validate_pairs(&[crossed])
            .unwrap_err()
            .contains("does not match"));
        assert!(validate_pairs(&[a, b]).is_ok());
    }

    #[test]
    fn names_come_from_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_self_signed(dir.path(), "a", &["A.test", "*.wild.test"]);
        let loaded = load_pair(&a).unwrap();
        assert_eq!(
            loaded.names,
            vec!["a.test".to_string(), "*.wild.test".to_string()]
        );
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn expiry_is_the_certificates_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["e.test".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let cert = params.self_signed(&key).unwrap();
        let pair = CertificatePair {
            cert: dir.path().join("e.pem"),
            key: dir.path().join("e.key"),
        };
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        let resolver = SniResolver::load(std::slice::from_ref(&pair)).unwrap();
        // 2031-05-17T00:00:00Z
        assert_eq!(
            resolver.expiries(),
            vec![(pair.cert.display().to_string(), 1_936_742_400)]
        );
    }
}
