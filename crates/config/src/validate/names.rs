//! Syntax rules for names written in the configuration: identifiers, host names, route
//! paths and HTTP header names/values. Each returns the problem as a message suffix.

/// Route and issuer names: `[A-Za-z0-9_.-]+`.
pub(crate) fn identifier(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Ok(s.to_owned())
    } else {
        Err(" (use letters, digits, '_', '.' and '-')".to_owned())
    }
}

/// A bare DNS name or IPv4 address, lower-cased.
pub(crate) fn host_name(s: &str) -> Result<String, String> {
    let problem = if s.contains("://") {
        "must be a bare host name, without a scheme"
    } else if s.contains('/') {
        "must be a bare host name, without a path"
    } else if s.contains(':') {
        "must be a bare host name, without a port"
    } else if s.is_empty() || s.len() > 253 {
        "must be 1 to 253 characters long"
    } else if !s.split('.').all(is_dns_label) {
        "must be dot-separated labels of letters, digits and '-'"
    } else {
        return Ok(s.to_ascii_lowercase());
    };
    Err(format!(": {problem}"))
}

fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// A route path: absolute, canonical (no `.`/`..`/empty segments), no percent-encoding,
/// `;`, query or fragment. A trailing `/` is removed (except for `/` itself).
pub(crate) fn route_path(s: &str) -> Result<String, String> {
    let problem = if !s.starts_with('/') {
        "must start with '/'"
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain whitespace or control characters"
    } else if s.contains(['?', '#']) {
        "must not contain a query or fragment ('?', '#')"
    } else if s.contains('%') {
        "must not contain percent-encoding ('%')"
    } else if s.contains(';') {
        "must not contain ';'"
    } else if s.contains("//") {
        "must not contain empty segments ('//')"
    } else if s.split('/').any(|seg| seg == "." || seg == "..") {
        "must not contain '.' or '..' segments"
    } else if !s.chars().all(is_path_char) {
        "may contain only letters, digits, '/' and -._~!$&'()*+,=:@"
    } else if s.len() > 1 {
        return Ok(s.trim_end_matches('/').to_owned());
    } else {
        return Ok(s.to_owned());
    };
    Err(format!(": {problem}"))
}

/// RFC 3986 `pchar` (minus `%` and `;`) plus `/`.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-._~!$&'()*+,=:@".contains(c)
}

/// An HTTP header name (an RFC 9110 token), lower-cased.
pub(crate) fn header_name(s: &str) -> Result<String, String> {
    let token = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if !token {
        return Err(" (not a valid HTTP header name)".to_owned());
    }
    let lower = s.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(" (managed by the gateway; cannot be set here)".to_owned());
    }
    Ok(lower)
}

/// Headers that describe the connection or message framing; setting them would break proxying.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Whether `v` can be sent as an HTTP header value (visible ASCII, space, tab, obs-text).
pub(crate) fn is_header_value(v: &str) -> bool {
    v.bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_paths() {
        assert_eq!(route_path("/").unwrap(), "/");
        assert_eq!(route_path("/github/mcp/").unwrap(), "/github/mcp");
        assert_eq!(route_path("/a-b_c.d~e/x:y@z").unwrap(), "/a-b_c.d~e/x:y@z");
        for bad in [
            "", "x", "/a/../b", "/a/./b", "/..", "/a//b", "/a%2e", "/a;b", "/a?b", "/a#b", "/a b",
            "/a\tb", "/é", "/a\\b", "/a\"b",
        ] {
            assert!(route_path(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(route_path("/a/..b").is_ok());
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("MCP.Example.com").unwrap(), "mcp.example.com");
        assert_eq!(host_name("10.0.0.1").unwrap(), "10.0.0.1");
        assert!(host_name("https://x").unwrap_err().contains("scheme"));
        assert!(host_name("x/y").unwrap_err().contains("path"));
        assert!(host_name("x:80").unwrap_err().contains("port"));
        assert!(host_name("a..b").is_err());
        assert!(host_name("-a.b").is_err());
        assert!(host_name("").is_err());
    }

    #[test]
    fn header_names_and_values() {
        assert_eq!(header_name("X-Api-Key").unwrap(), "x-api-key");
        assert!(header_name("X Api").is_err());
        assert!(header_name("X:Api").is_err());
        assert!(header_name("").is_err());
        assert!(header_name("Host").is_err());
        assert!(header_name("Transfer-Encoding").is_err());
        assert!(is_header_value("Bearer abc.def"));
        assert!(!is_header_value("a\r\nInjected: 1"));
        assert!(!is_header_value("a\0"));
    }

    #[test]
    fn identifiers() {
        assert!(identifier("git-hub_1.x").is_ok());
        assert!(identifier("").is_err());
        assert!(identifier("a b").is_err());
        assert!(identifier("a/b").is_err());
    }
}
