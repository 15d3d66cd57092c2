//! Scalar syntaxes: durations, byte sizes and socket addresses.
//!
//! Parsers never quote the input in their errors; callers add the value as written.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The duration units the configuration reference documents, and nothing else. humantime also
/// reads `M` (months), `y`, `w`, `us`, `min`, `days`…, so `10M` — meant as ten minutes — silently
/// became ten months (issue 12, class 18). Units are case-sensitive.
pub(crate) const DURATION_UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// A duration: one or more `<integer><unit>` terms with a unit from [`DURATION_UNITS`],
/// optionally separated by spaces: `30s`, `5m`, `1h`, `500ms`, `1d`, `1h 30m`. A bare number,
/// a fraction, a sign or any other unit is refused rather than guessed at.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let (term, tail) = duration_term(rest)?;
        millis = millis.checked_add(term)?;
        rest = tail.trim_start();
    }
    Some(Duration::from_millis(millis))
}

/// One `<integer><unit>` term at the start of `s` in milliseconds, and what follows it.
fn duration_term(s: &str) -> Option<(u64, &str)> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, rest) = s.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let unit_end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    let (unit, tail) = rest.split_at(unit_end);
    let (_, millis) = DURATION_UNITS.iter().find(|(name, _)| *name == unit)?;
    Some((number.checked_mul(*millis)?, tail))
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
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 10m "), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn only_documented_duration_units_are_read() {
        // humantime read each of these as something (`10M` was ten months).
        for s in [
            "10M", "1y", "2w", "5min", "3days", "1sec", "10us", "10ns", "1H", "30S", "5MS",
            "1hour", "2mins",
        ] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
        for s in [
            "1.5h",
            "-5s",
            "+5s",
            "5 s",
            "s",
            "5s x",
            "5s,10s",
            "1h 30",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
        assert_eq!(parse_duration("18446744073709551615d"), None, "overflow");
        assert_eq!(
            parse_duration("18446744073709551615ms 1ms"),
            None,
            "overflow"
        );
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
