//! Which IP addresses a metadata fetch may connect to: the SSRF classification. Pure, so that
//! every range is unit-tested; the resolver and the IP-literal check both call it.
//!
//! A `client_id` is attacker-chosen, so fetching it must never reach something only the gateway
//! can reach: loopback services, the private network, the cloud metadata endpoint
//! (169.254.169.254). Anything that is not plainly public unicast is refused; the ranges follow
//! the IANA special-purpose registries (RFC 6890 and its updates).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` must not be connected to, or `None` when it is a public unicast address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// True when a fetch must not connect to `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    forbidden_reason(ip).is_some()
}

/// IPv4 ranges that are not public unicast (IANA IPv4 special-purpose registry).
const V4_RANGES: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private (RFC 1918)"),
    (
        [100, 64, 0, 0],
        10,
        "shared address space (CGNAT, RFC 6598)",
    ),
    ([127, 0, 0, 0], 8, "loopback"),
    (
        [169, 254, 0, 0],
        16,
        "link-local (cloud metadata lives here)",
    ),
    ([172, 16, 0, 0], 12, "private (RFC 1918)"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments"),
    ([192, 0, 2, 0], 24, "documentation (TEST-NET-1)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast"),
    ([192, 168, 0, 0], 16, "private (RFC 1918)"),
    ([198, 18, 0, 0], 15, "benchmarking (RFC 2544)"),
    ([198, 51, 100, 0], 24, "documentation (TEST-NET-2)"),
    ([203, 0, 113, 0], 24, "documentation (TEST-NET-3)"),
    ([224, 0, 0, 0], 4, "multicast"),
    // 240/4 is reserved; its last address is the limited broadcast 255.255.255.255.
    ([240, 0, 0, 0], 4, "reserved or broadcast"),
];

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let addr = u32::from(ip);
    V4_RANGES.iter().find_map(|(net, len, why)| {
        let mask = u32::MAX << (32 - u32::from(*len));
        (addr & mask == u32::from_be_bytes(*net)).then_some(*why)
    })
}

/// IPv6 is judged by allow-list: only global unicast (2000::/3, RFC 4291 §2.4) minus its
/// special-purpose blocks may be reached. Everything else — `::`, `::1`, IPv4-compatible
/// `::a.b.c.d`, discard-only `100::/64`, ULA `fc00::/7`, link-local `fe80::/10`, site-local
/// `fec0::/10`, multicast `ff00::/8` — is refused outright. The two forms that carry an IPv4
/// address the host's stack or a NAT64 gateway will really connect to are judged by that address.
fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): the socket connects to a.b.c.d over IPv4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4).map(|_| "IPv4-mapped form of a forbidden IPv4 address");
    }
    // 64:ff9b::/96 (RFC 6052): a NAT64 gateway connects to the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return forbidden_v4(v4).map(|_| "NAT64 form of a forbidden IPv4 address");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if s[0] & 0xfe00 == 0xfc00 {
        return Some("unique local (fc00::/7)");
    }
    if s[0] & 0xffc0 == 0xfe80 {
        return Some("link-local (fe80::/10)");
    }
    if s[0] & 0xff00 == 0xff00 {
        return Some("multicast");
    }
    if s[0] & 0xe000 != 0x2000 {
        return Some("not global unicast (outside 2000::/3)");
    }
    // Special-purpose blocks inside 2000::/3.
    if s[0] == 0x2001 && s[1] & 0xfe00 == 0 {
        // 2001::/23: Teredo (2001::/32, tunnels to an embedded IPv4), benchmarking, ORCHID...
        return Some("IETF protocol assignments (2001::/23, includes Teredo)");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("documentation (2001:db8::/32)");
    }
    if s[0] == 0x2002 {
        // 6to4 (RFC 3056, deprecated by RFC 7526): relays to an embedded IPv4 address.
        return Some("6to4 (2002::/16)");
    }
    if s[0] == 0x3fff && s[1] & 0xf000 == 0 {
        return Some("documentation (3fff::/20)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> bool {
        is_forbidden(IpAddr::V4(s.parse().expect("test address")))
    }

    fn v6(s: &str) -> bool {
        is_forbidden(IpAddr::V6(s.parse().expect("test address")))
    }

    #[test]
    fn public_ipv4_is_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!v4(ip), "{ip} is public");
        }
    }

    #[test]
    fn non_public_ipv4_is_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(v4(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn the_cloud_metadata_address_says_why() {
        let why = forbidden_reason("169.254.169.254".parse().expect("ip"));
        assert_eq!(why, Some("link-local (cloud metadata lives here)"));
    }

    #[test]
    fn public_ipv6_is_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:81b::200e",
            "2001:200::1",
            "3ffe::1",
            "3000::1",
        ] {
            assert!(!v6(ip), "{ip} is public");
        }
    }

    #[test]
    fn non_public_ipv6_is_refused() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::2",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:10::1",
            "2002:7f00:1::1",
            "3fff::1",
            "3fff:fff::1",
            "64:ff9b:1::1",
            "4000::1",
            "5f00::1",
        ] {
            assert!(v6(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_judged_by_the_ipv4_address() {
        assert!(v6("::ffff:127.0.0.1"));
        assert!(v6("::ffff:169.254.169.254"));
        assert!(v6("::ffff:10.1.2.3"));
        assert!(v6("::ffff:0.0.0.0"));
        assert!(v6("::ffff:7f00:1"));
        assert!(!v6("::ffff:8.8.8.8"));
    }

    #[test]
    fn ipv4_compatible_addresses_are_refused_whatever_they_embed() {
        // Deprecated (RFC 4291 §2.5.5.1); no public host is reached this way.
        assert!(v6("::127.0.0.1"));
        assert!(v6("::169.254.169.254"));
        assert!(v6("::8.8.8.8"));
    }

    #[test]
    fn nat64_addresses_are_judged_by_the_ipv4_address() {
        assert!(v6("64:ff9b::127.0.0.1"));
        assert!(v6("64:ff9b::a9fe:a9fe"));
        assert!(v6("64:ff9b::192.168.0.1"));
        assert!(!v6("64:ff9b::8.8.8.8"));
    }
}
