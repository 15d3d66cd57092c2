//! Route matching by virtual host and normalised path, and the upstream path mapping.
//!
//! A route owns its exact path and every sub-path below it (`/github/mcp` owns `/github/mcp/sse`,
//! never `/github/mcpx`). Host-bound routes win over host-less ones, then the longest path wins.

use std::collections::HashMap;

/// A route's match: its index in the configuration and the path below the route's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub index: usize,
    pub remainder: &'a str,
}

/// Routes by host and path. A lookup tries the request path's own prefixes (at `/` boundaries,
/// longest first) in hash maps: its cost grows with the path's depth, never with the number of
/// routes (measured flat from 1 to 10,000 routes, docs/benchmarks.md "How cost grows").
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Lower-case host → path → route index, for host-bound routes.
    by_host: HashMap<String, HashMap<String, usize>>,
    /// Path → route index, for routes without a host.
    any_host: HashMap<String, usize>,
}

impl RouteTable {
    /// Builds the table; of two routes with the same host and path, the first listed wins.
    pub fn new<'a>(routes: impl IntoIterator<Item = (Option<&'a str>, &'a str)>) -> RouteTable {
        let mut table = RouteTable::default();
        for (index, (host, path)) in routes.into_iter().enumerate() {
            let paths = match host {
                Some(h) => table.by_host.entry(h.to_ascii_lowercase()).or_default(),
                None => &mut table.any_host,
            };
            paths.entry(path.to_string()).or_insert(index);
        }
        table
    }

    /// The route for a request: host-bound routes of its host first, then routes without a
    /// host; within each, the longest route path that owns the request path.
    pub fn find<'p>(&self, host: Option<&str>, path: &'p str) -> Option<RouteMatch<'p>> {
        let bound = match host {
            Some(h) if !self.by_host.is_empty() => self.by_host.get(&normalize_host(h)),
            _ => None,
        };
        bound
            .and_then(|paths| longest(paths, path))
            .or_else(|| longest(&self.any_host, path))
    }
}

/// The longest of `paths` owning `path`: the path itself, then each prefix before a `/`.
fn longest<'p>(paths: &HashMap<String, usize>, path: &'p str) -> Option<RouteMatch<'p>> {
    if paths.is_empty() {
        return None;
    }
    let prefixes = path
        .rmatch_indices('/')
        .map(|(i, _)| if i == 0 { "/" } else { &path[..i] });
    std::iter::once(path).chain(prefixes).find_map(|prefix| {
        let index = *paths.get(prefix)?;
        let remainder = path_remainder(prefix, path)?;
        Some(RouteMatch { index, remainder })
    })
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

    /// The matching rule as the table used to run it: every route, host-bound first, then the
    /// longest path, the first hit wins.
    fn reference<'p>(
        routes: &[(Option<&str>, &str)],
        host: Option<&str>,
        path: &'p str,
    ) -> Option<RouteMatch<'p>> {
        let mut order: Vec<usize> = (0..routes.len()).collect();
        order.sort_by(|&a, &b| {
            let (ha, pa) = routes[a];
            let (hb, pb) = routes[b];
            hb.is_some()
                .cmp(&ha.is_some())
                .then(pb.len().cmp(&pa.len()))
        });
        let host = host.map(normalize_host);
        order.into_iter().find_map(|i| {
            let (want, route_path) = routes[i];
            if want.is_some_and(|w| host.as_deref() != Some(w)) {
                return None;
            }
            let remainder = path_remainder(route_path, path)?;
            Some(RouteMatch {
                index: i,
                remainder,
            })
        })
    }

    #[test]
    fn lookup_by_prefix_agrees_with_trying_every_route() {
        let routes = [
            (None, "/a"),
            (None, "/a/b"),
            (Some("h.example"), "/a"),
            (None, "/a/b"),
            (Some("h.example"), "/a/b/c"),
            (None, "/ab"),
            (Some("other.example"), "/"),
            (None, "/x/y/z"),
            (Some("h.example"), "/a"),
        ];
        let with_root: Vec<_> = routes.iter().copied().chain([(None, "/")]).collect();
        let paths = [
            "/", "/a", "/a/", "/ab", "/abc", "/a/b", "/a/b/", "/a/bc", "/a/b/c", "/a/b/c/d", "/x",
            "/x/y", "/x/y/z/", "/x/y/zz", "/zzz",
        ];
        let hosts = [
            None,
            Some("h.example"),
            Some("H.Example:8443"),
            Some("other.example."),
            Some("nope"),
        ];
        for table_routes in [&routes[..], &with_root[..]] {
            let t = RouteTable::new(table_routes.iter().copied());
            for host in hosts {
                for path in paths {
                    let want = reference(table_routes, host, path);
                    assert_eq!(t.find(host, path), want, "{host:?} {path}");
                }
            }
        }
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
