//! Which request and response headers never cross the gateway.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1) and any header named in `Connection` end at the gateway.
//! Toward the upstream the client's credentials and client-asserted identity or forwarding
//! headers are dropped too: the upstream must only ever see what the gateway vouches for.

/// Hop-by-hop headers removed in both directions. Framing headers (`Transfer-Encoding`,
/// `Content-Length`) are left to the HTTP engine, which re-frames every message.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Request headers never forwarded upstream: the client's token and anything that would let a
/// client speak for the gateway.
pub const CLIENT_ONLY_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
];

/// Prefix of identity headers the gateway may inject; client-sent ones are always removed.
pub const IDENTITY_HEADER_PREFIX: &str = "x-mcp-";

/// Header names listed in `Connection` values (`Connection: keep-alive, X-Foo`), lower-cased.
pub fn connection_listed<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "close" && t != "keep-alive")
        .collect()
}

/// True when a request header must not reach the upstream. Case-insensitive, without allocating:
/// it runs for every header of every request.
pub fn strip_toward_upstream(name: &str) -> bool {
    let listed = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(name));
    listed(HOP_BY_HOP)
        || listed(CLIENT_ONLY_REQUEST_HEADERS)
        || name
            .get(..IDENTITY_HEADER_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(IDENTITY_HEADER_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_tokens_are_collected() {
        assert_eq!(
            connection_listed(["keep-alive, X-Secret", "Upgrade"]),
            vec!["x-secret".to_string(), "upgrade".to_string()]
        );
    }

    #[test]
    fn identity_prefix_is_matched_in_any_case_and_only_as_a_prefix() {
        assert!(strip_toward_upstream("X-MCP-Subject"));
        assert!(strip_toward_upstream("X-Mcp-Email"));
        assert!(!strip_toward_upstream("x-mc"));
        assert!(!strip_toward_upstream("mcp-x-mcp-"));
        assert!(!strip_toward_upstream("é-mcp-long-name"));
    }

    #[test]
    fn credentials_and_spoofable_headers_are_stripped() {
        for h in [
            "Authorization",
            "X-Forwarded-For",
            "x-mcp-subject",
            "Forwarded",
            "Upgrade",
            "TE",
        ] {
            assert!(strip_toward_upstream(h), "{h}");
        }
        for h in [
            "Mcp-Session-Id",
            "MCP-Protocol-Version",
            "Mcp-Method",
            "Mcp-Name",
            "Mcp-Param-Foo",
            "Last-Event-ID",
            "Accept",
        ] {
            assert!(!strip_toward_upstream(h), "{h}");
        }
    }
}
