//! IP networks in CIDR form (`listeners[].trusted_proxies`): the type and its one parser.

use std::net::IpAddr;

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `::1/128`); a bare IP is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => self.contains(IpAddr::V6(v4.to_ipv6_mapped())),
            // A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`.
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => self.contains(IpAddr::V4(v4)),
                None => false,
            },
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare IP (a /32 or /128); the prefix is range-checked.
    fn from_str(s: &str) -> Result<Self, String> {
        parse_ip_net(s)
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare IP (a /32 or /128).
fn parse_ip_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "expected an IP address or CIDR range such as 10.0.0.0/8".to_owned())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("prefix length must be 0..={max}")),
        },
    };
    Ok(IpNet { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_nets_parse() {
        let net = parse_ip_net("10.0.0.0/8").unwrap();
        assert_eq!(
            net,
            IpNet {
                addr: "10.0.0.0".parse().unwrap(),
                prefix: 8
            }
        );
        assert_eq!(parse_ip_net("127.0.0.1").unwrap().prefix, 32);
        assert_eq!(parse_ip_net("::1").unwrap().prefix, 128);
        assert_eq!(parse_ip_net("2001:db8::/32").unwrap().prefix, 32);
        assert_eq!(parse_ip_net("0.0.0.0/0").unwrap().prefix, 0);
        assert!(parse_ip_net("10.0.0.0/33").is_err());
        assert!(parse_ip_net("::/129").is_err());
        assert!(parse_ip_net("10.0.0.0/+8").is_err());
        assert!(parse_ip_net("10.0.0.0/").is_err());
        assert!(parse_ip_net("10.0.0/8").is_err());
        assert!(parse_ip_net("example.com").is_err());
    }

    #[test]
    fn ip_nets_contain() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let v4 = parse_ip_net("10.0.0.0/8").unwrap();
        assert!(v4.contains(ip("10.1.2.3")));
        assert!(!v4.contains(ip("11.0.0.1")));
        assert!(v4.contains(ip("::ffff:10.1.2.3")), "v4-mapped v6 peer");
        assert!(!v4.contains(ip("::1")));
        let host = parse_ip_net("127.0.0.1").unwrap();
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));
        let all = parse_ip_net("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let v6 = parse_ip_net("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let mapped = parse_ip_net("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains(ip("10.9.9.9")));
        let all6 = parse_ip_net("::/0").unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
    }
}
