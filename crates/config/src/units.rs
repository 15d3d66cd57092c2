//! Scalar syntaxes: durations, byte sizes, socket addresses and IP networks.
//!
//! Parsers never quote the input in their errors; callers add the value as written.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A humantime duration: `30s`, `5m`, `1h`, `500ms`, `1h 30m`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim()).ok()
}

/// A byte count: a plain integer, or an integer with a `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`
/// or `GiB` suffix (optionally separated by spaces).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// `ip:port` or `[ipv6]:port`; `localhost:port` means `127.0.0.1:port`.
pub(crate) fn parse_socket_addr(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(addr) = s.parse() {
        return Some(addr);
    }
    let (host, port) = s.rsplit_once(':')?;
    if !host.eq_ignore_ascii_case("localhost") {
        return None;
    }
    Some(SocketAddr::new(
        Ipv4Addr::LOCALHOST.into(),
        port.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10B"), Some(10));
        assert_eq!(parse_size("64KiB"), Some(65536));
        assert_eq!(parse_size("4MiB"), Some(4 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("2KB"), Some(2000));
        assert_eq!(parse_size("3MB"), Some(3_000_000));
        assert_eq!(parse_size("4 MiB"), Some(4 << 20));
        assert_eq!(parse_size("4mib"), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
        assert_eq!(parse_size("18446744073709551615GiB"), None);
    }

    #[test]
    fn socket_addrs() {
        assert_eq!(
            parse_socket_addr("0.0.0.0:8443"),
            Some("0.0.0.0:8443".parse().unwrap())
        );
        assert_eq!(
            parse_socket_addr("[::1]:80"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            parse_socket_addr("localhost:8080"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_socket_addr("LocalHost:1"),
            Some("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(parse_socket_addr("localhost"), None);
        assert_eq!(parse_socket_addr("localhost:99999"), None);
        assert_eq!(parse_socket_addr("example.com:80"), None);
        assert_eq!(parse_socket_addr("x"), None);
    }
}
