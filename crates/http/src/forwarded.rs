//! `X-Forwarded-For/-Proto/-Host`: what the upstream is told about the original request.
//!
//! Client-sent `X-Forwarded-*` values are believed only when the direct peer is a configured
//! trusted proxy; otherwise they are replaced with what the gateway itself observed.

use std::net::IpAddr;

/// What the gateway knows about one incoming request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedInput<'a> {
    pub peer_ip: Option<IpAddr>,
    /// The direct peer is a trusted proxy.
    pub peer_trusted: bool,
    /// The connection arrived over TLS.
    pub tls: bool,
    pub host: Option<&'a str>,
    pub incoming_for: Option<&'a str>,
    pub incoming_proto: Option<&'a str>,
    pub incoming_host: Option<&'a str>,
}

/// The values to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub for_chain: Option<String>,
    pub proto: &'static str,
    pub host: Option<String>,
}

pub fn forwarded(input: ForwardedInput<'_>) -> Forwarded {
    let own_proto = if input.tls { "https" } else { "http" };
    let peer = input.peer_ip.map(peer_text);
    if !input.peer_trusted {
        return Forwarded {
            for_chain: peer,
            proto: own_proto,
            host: input.host.map(str::to_string),
        };
    }
    let for_chain = match (
        input.incoming_for.map(str::trim).filter(|s| !s.is_empty()),
        peer,
    ) {
        (Some(chain), Some(peer)) => Some(format!("{chain}, {peer}")),
        (Some(chain), None) => Some(chain.to_string()),
        (None, peer) => peer,
    };
    let proto = match input.incoming_proto.map(|p| p.trim().to_ascii_lowercase()) {
        Some(p) if p == "https" => "https",
        Some(p) if p == "http" => "http",
        _ => own_proto,
    };
    let host = input
        .incoming_host
        .filter(|h| !h.trim().is_empty())
        .or(input.host)
        .map(|h| h.trim().to_string());
    Forwarded {
        for_chain,
        proto,
        host,
    }
}

/// The peer address as `X-Forwarded-For` carries it. IPv4 octet by octet: `Ipv4Addr`'s `Display`
/// goes through the formatting machinery, about 1k instructions on every request (callgrind).
fn peer_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    let mut digits = itoa::Buffer::new();
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(digits.format(octet));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_writes_addresses_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.1.2.3",
            "192.168.100.255",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(peer_text(ip), ip.to_string());
        }
    }

    fn input<'a>(trusted: bool) -> ForwardedInput<'a> {
        ForwardedInput {
            peer_ip: Some("10.1.2.3".parse().unwrap()),
            peer_trusted: trusted,
            tls: false,
            host: Some("gw.example.com"),
            incoming_for: Some("6.6.6.6"),
            incoming_proto: Some("https"),
            incoming_host: Some("evil.example.com"),
        }
    }

    #[test]
    fn untrusted_peer_values_are_replaced() {
        let f = forwarded(input(false));
        assert_eq!(f.for_chain.as_deref(), Some("10.1.2.3"));
        assert_eq!(f.proto, "http");
        assert_eq!(f.host.as_deref(), Some("gw.example.com"));
    }

    #[test]
    fn trusted_peer_values_are_extended() {
        let f = forwarded(input(true));
        assert_eq!(f.for_chain.as_deref(), Some("6.6.6.6, 10.1.2.3"));
        assert_eq!(f.proto, "https");
        assert_eq!(f.host.as_deref(), Some("evil.example.com"));
    }

    #[test]
    fn trusted_peer_with_junk_proto_falls_back() {
        let mut i = input(true);
        i.incoming_proto = Some("gopher");
        i.tls = true;
        assert_eq!(forwarded(i).proto, "https");
    }
}
