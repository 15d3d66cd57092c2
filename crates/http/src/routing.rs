//! Route matching by virtual host and normalised path, and the upstream path mapping.
//!
//! A route owns its exact path and every sub-path below it (`/github/mcp` owns `/github/mcp/sse`,
//! never `/github/mcpx`). Host-bound routes win over host-less ones, then the longest path wins.

/// One routable entry: the route's index in the configuration, its host and path.
#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    host: Option<String>,
    path: String,
}

/// Which route a request hit, and the part of the path below the route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub index: usize,
    /// Empty for the exact route path, else starts with `/`.
    pub remainder: &'a str,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    entries: Vec<Entry>,
}

impl RouteTable {
    /// Build from `(host, path)` pairs in configuration order; paths must already be normalised
    /// (no trailing slash except `/`), hosts lower-case.
    pub fn new<'a>(routes: impl IntoIterator<Item = (Option<&'a str>, &'a str)>) -> RouteTable {
        let mut entries: Vec<Entry> = routes
            .into_iter()
            .enumerate()
            .map(|(index, (host, path))| Entry {
                index,
                host: host.map(str::to_ascii_lowercase),
                path: path.to_string(),
            })
            .collect();
        // Host-bound first, then longest path first: the first hit is the best hit.
        entries.sort_by(|a, b| {
            b.host
                .is_some()
                .cmp(&a.host.is_some())
                .then(b.path.len().cmp(&a.path.len()))
        });
        RouteTable { entries }
    }

    /// Find the route for a request. `host` is the raw Host/authority value (port and case ignored).
    pub fn find<'p>(&self, host: Option<&str>, path: &'p str) -> Option<RouteMatch<'p>> {
        let host = host.map(normalize_host);
        self.entries.iter().find_map(|e| {
            if let Some(want) = &e.host {
                if host.as_deref() != Some(want.as_str()) {
                    return None;
                }
            }
            let remainder = path_remainder(&e.path, path)?;
            Some(RouteMatch {
                index: e.index,
                remainder,
            })
        })
    }
}

/// `Some(rest)` when `path` is `route_path` or below it.
fn path_remainder<'p>(route_path: &str, path: &'p str) -> Option<&'p str> {
    if route_path == "/" {
        return Some(if path == "/" { "" } else { path });
    }
    let rest = path.strip_prefix(route_path)?;
    match rest {
        // `/github/mcp/` is the route's own endpoint, like `/github/mcp`.
        "" | "/" => Some(""),
        r if r.starts_with('/') => Some(r),
        _ => None,
    }
}

/// Lower-case a Host value and drop its port and any trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep the brackets' content.
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// The upstream path for a request: the upstream URL's path with the route remainder appended.
pub fn upstream_path(upstream_base: &str, remainder: &str) -> String {
    let base = upstream_base.trim_end_matches('/');
    let joined = format!("{base}{remainder}");
    if joined.is_empty() {
        "/".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new([
            (None, "/github/mcp"),
            (None, "/github"),
            (Some("mcp.example.com"), "/github/mcp"),
            (None, "/files/mcp"),
        ])
    }

    #[test]
    fn exact_and_sub_paths_match() {
        let t = table();
        assert_eq!(t.find(None, "/github/mcp").unwrap().index, 0);
        let m = t.find(None, "/github/mcp/sse").unwrap();
        assert_eq!((m.index, m.remainder), (0, "/sse"));
        assert_eq!(t.find(None, "/files/mcp").unwrap().remainder, "");
        // A trailing slash on the route's own path is ignored; below it, kept.
        assert_eq!(t.find(None, "/files/mcp/").unwrap().remainder, "");
        assert_eq!(
            t.find(None, "/github/mcp/messages/").unwrap().remainder,
            "/messages/"
        );
    }

    #[test]
    fn prefix_without_slash_boundary_does_not_match() {
        let t = table();
        assert_eq!(t.find(None, "/github/mcpx").unwrap().index, 1);
        assert!(t.find(None, "/files/mcpx").is_none());
        assert!(t.find(None, "/nothing").is_none());
    }

    #[test]
    fn host_bound_route_wins_and_ignores_port_and_case() {
        let t = table();
        assert_eq!(
            t.find(Some("MCP.example.com:8443"), "/github/mcp")
                .unwrap()
                .index,
            2
        );
        assert_eq!(
            t.find(Some("mcp.example.com."), "/github/mcp")
                .unwrap()
                .index,
            2
        );
        assert_eq!(
            t.find(Some("other.example.com"), "/github/mcp")
                .unwrap()
                .index,
            0
        );
    }

    #[test]
    fn root_route_catches_everything() {
        let t = RouteTable::new([(None, "/"), (None, "/a")]);
        assert_eq!(t.find(None, "/a/b").unwrap().index, 1);
        let m = t.find(None, "/zzz").unwrap();
        assert_eq!((m.index, m.remainder), (0, "/zzz"));
        assert_eq!(t.find(None, "/").unwrap().remainder, "");
    }

    #[test]
    fn host_normalisation() {
        assert_eq!(normalize_host("Example.COM:80"), "example.com");
        assert_eq!(normalize_host("[::1]:8080"), "::1");
        assert_eq!(normalize_host("example.com."), "example.com");
    }

    #[test]
    fn upstream_path_replaces_route_path() {
        assert_eq!(upstream_path("/mcp", ""), "/mcp");
        assert_eq!(upstream_path("/mcp", "/sse"), "/mcp/sse");
        assert_eq!(upstream_path("/", "/sse"), "/sse");
        assert_eq!(upstream_path("", ""), "/");
        assert_eq!(upstream_path("/mcp/", "/messages"), "/mcp/messages");
    }
}
