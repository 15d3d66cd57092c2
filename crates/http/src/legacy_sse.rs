//! Legacy HTTP+SSE (MCP 2024-11-05): the first event of `GET …/sse` is `endpoint`, naming the URL
//! the client must POST its messages to. Behind the gateway that URL must be the gateway's own
//! path for the route, never the upstream's; this module computes the rewrite.

use crate::routing::upstream_path;

/// How an upstream path maps back to the gateway for one route.
#[derive(Debug, Clone)]
pub struct EndpointMapping {
    /// The route's path on the gateway (`/github/mcp`).
    pub route_path: String,
    /// The upstream URL's path (`/mcp`, or `/`).
    pub upstream_base: String,
    /// `scheme://host[:port]` of the upstream, to recognise absolute endpoint URLs.
    pub upstream_origin: String,
}

impl EndpointMapping {
    /// The gateway-relative endpoint for the upstream's `endpoint` event data, or `None` when it
    /// points outside what this route proxies (then it cannot be reached through the gateway).
    ///
    /// `request_upstream_path` is the upstream path of the SSE request itself, used to resolve a
    /// relative reference like `messages?sessionId=…`.
    pub fn rewrite(&self, data: &str, request_upstream_path: &str) -> Option<String> {
        let data = data.trim();
        let target = if let Some(rest) = data.strip_prefix(&self.upstream_origin) {
            if !(rest.starts_with('/') || rest.is_empty()) {
                return None;
            }
            rest.to_string()
        } else if data.starts_with('/') && !data.starts_with("//") {
            data.to_string()
        } else if data.contains("://") || data.starts_with("//") {
            return None;
        } else {
            // Relative reference: resolve against the SSE request's directory.
            let dir = request_upstream_path
                .rsplit_once('/')
                .map_or("", |(d, _)| d);
            format!("{dir}/{data}")
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target.as_str(), None),
        };
        let normalized = crate::path::normalize_path(path).ok()?.path;
        let base = self.upstream_base.trim_end_matches('/');
        let remainder = if base.is_empty() {
            normalized.as_str()
        } else {
            let rest = normalized.strip_prefix(base)?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            rest
        };
        let route = if self.route_path == "/" {
            ""
        } else {
            self.route_path.as_str()
        };
        // The normalised path is decoded: re-encode it, or a decoded `?`, space or non-ASCII
        // byte would send the client somewhere else (or nowhere) through the gateway.
        let mut out = crate::path::encode_path(&upstream_path(route, remainder));
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(route: &str, base: &str) -> EndpointMapping {
        EndpointMapping {
            route_path: route.into(),
            upstream_base: base.into(),
            upstream_origin: "http://127.0.0.1:3001".into(),
        }
    }

    #[test]
    fn root_upstream_under_a_route_prefix() {
        let m = mapping("/legacy", "/");
        assert_eq!(
            m.rewrite("/messages?sessionId=abc", "/sse").unwrap(),
            "/legacy/messages?sessionId=abc"
        );
    }

    #[test]
    fn upstream_base_is_replaced_by_route_path() {
        let m = mapping("/github/mcp", "/mcp");
        assert_eq!(
            m.rewrite("/mcp/messages?sessionId=1", "/mcp/sse").unwrap(),
            "/github/mcp/messages?sessionId=1"
        );
    }

    #[test]
    fn absolute_upstream_url_becomes_gateway_relative() {
        let m = mapping("/legacy", "/");
        assert_eq!(
            m.rewrite("http://127.0.0.1:3001/messages?sessionId=1", "/sse")
                .unwrap(),
            "/legacy/messages?sessionId=1"
        );
    }

    #[test]
    fn relative_reference_is_resolved_against_the_sse_path() {
        let m = mapping("/legacy", "/");
        assert_eq!(
            m.rewrite("messages?sessionId=1", "/sse").unwrap(),
            "/legacy/messages?sessionId=1"
        );
        let m = mapping("/g", "/mcp");
        assert_eq!(
            m.rewrite("messages?s=1", "/mcp/sse").unwrap(),
            "/g/messages?s=1"
        );
    }

    #[test]
    fn endpoints_outside_the_route_or_elsewhere_are_not_mapped() {
        let m = mapping("/g", "/mcp");
        assert_eq!(m.rewrite("/other/messages", "/mcp/sse"), None);
        assert_eq!(m.rewrite("/mcpx/messages", "/mcp/sse"), None);
        assert_eq!(
            m.rewrite("https://evil.example.com/messages", "/mcp/sse"),
            None
        );
        assert_eq!(m.rewrite("//evil.example.com/messages", "/mcp/sse"), None);
        assert_eq!(m.rewrite("/mcp/../admin", "/mcp/sse"), None);
    }

    #[test]
    fn rewritten_endpoint_is_percent_encoded() {
        // Found by fuzz/ legacy_endpoint: `%3F` came back decoded, so the gateway read
        // `/g/a?b?s=1` as path `/g/a`; `%20` came back as a space the gateway refuses.
        let m = mapping("/g", "/mcp");
        assert_eq!(
            m.rewrite("/mcp/a%3Fb?s=1", "/mcp/sse").unwrap(),
            "/g/a%3Fb?s=1"
        );
        assert_eq!(m.rewrite("/mcp/a%20b", "/mcp/sse").unwrap(), "/g/a%20b");
        assert_eq!(
            m.rewrite("/mcp/caf\u{e9}", "/mcp/sse").unwrap(),
            "/g/caf%C3%A9"
        );
    }

    #[test]
    fn root_route() {
        let m = mapping("/", "/");
        assert_eq!(m.rewrite("/messages?x=1", "/sse").unwrap(), "/messages?x=1");
    }
}
