//! Routes: name, path, host, upstream (URL, timeouts, TLS, extra headers) and auth; plus the
//! route-level cross-checks (unique names, unique host+path, issuer references).

use std::collections::{BTreeMap, HashSet};

use url::Url;

use crate::error::{index, key};
use crate::model::{
    Route, RouteAuth, RouteAuthRequired, Secret, Upstream, UpstreamTimeouts, UpstreamTls,
};
use crate::raw::{RawAuth, RawRoute, RawUpstream, RawUpstreamTimeouts, RawUpstreamTls, Str};

use super::ctx::{Ctx, UrlRules, Zero};
use super::issuer::IssuerOut;
use super::{listener, names, policy};

/// One route's outcome: the route if valid, and what the cross-checks need even if not.
pub(super) struct RouteOut {
    pub route: Option<Route>,
    name: Option<String>,
    /// `(host, path)`, when both validated.
    location: Option<(Option<String>, String)>,
    /// `(key path, issuer name)` for each issuer the route lists.
    issuer_refs: Vec<(String, String)>,
}

pub(super) fn routes(
    cx: &mut Ctx,
    raw: &Option<Vec<RawRoute>>,
    public_url: Option<&Url>,
) -> Vec<RouteOut> {
    let mut outs = Vec::new();
    let _ = cx.non_empty_list("routes", raw, |cx, path, r| {
        outs.push(route(cx, path, r, public_url));
        Some(())
    });
    cx.unique(
        "route name",
        outs.iter()
            .enumerate()
            .filter_map(|(i, o)| Some((key(&index("routes", i), "name"), o.name.clone()?))),
    );
    cx.unique(
        "route for host and path",
        outs.iter().enumerate().filter_map(|(i, o)| {
            let (host, path) = o.location.as_ref()?;
            Some((key(&index("routes", i), "path"), location_text(host, path)))
        }),
    );
    outs
}

/// How a route's host and path read in an error: `tools.example.com/mcp`, or `/mcp` on any host.
fn location_text(host: &Option<String>, path: &str) -> String {
    match host {
        Some(h) => format!("{h}{path}"),
        None => format!("{path} (any host)"),
    }
}

/// Reports route auth issuers that no `issuers` entry defines.
pub(super) fn check_issuer_refs(cx: &mut Ctx, routes: &[RouteOut], issuers: &[IssuerOut]) {
    let Some(known) = issuers
        .iter()
        .map(|i| i.name.as_deref())
        .collect::<Option<HashSet<&str>>>()
    else {
        return; // an issuer name is itself invalid; don't pile on
    };
    for (path, name) in routes.iter().flat_map(|r| &r.issuer_refs) {
        if !known.contains(name.as_str()) {
            cx.err(path, format!("unknown issuer {name:?}"));
        }
    }
}

fn route(cx: &mut Ctx, path: &str, raw: &RawRoute, public_url: Option<&Url>) -> RouteOut {
    let name_path = key(path, "name");
    let name = cx
        .required(&name_path, &raw.name)
        .and_then(|s| cx.parse(&name_path, s, "name", names::identifier));
    let route_path = key(path, "path");
    let url_path = cx
        .required(&route_path, &raw.path)
        .and_then(|s| cx.parse(&route_path, s, "path", names::route_path));
    let host_path = key(path, "host");
    let host = cx.optional(&raw.host, |cx, s| {
        cx.parse(&host_path, s, "host", names::host_name)
    });
    let upstream_path = key(path, "upstream");
    let upstream = cx
        .required(&upstream_path, &raw.upstream)
        .and_then(|u| upstream(cx, &upstream_path, u));

    let mut issuer_refs = Vec::new();
    let auth_path = key(path, "auth");
    let auth = match &raw.auth {
        None => cx.fail(
            &auth_path,
            "missing; set `auth: none` to serve this route without authentication, or list issuers",
        ),
        Some(RawAuth::Scalar(s)) => cx.parse(&auth_path, s, "value", |v| match v {
            "none" => Ok(RouteAuth::None),
            _ => Err(" (expected `none` or a mapping with `issuers`)".to_owned()),
        }),
        Some(RawAuth::Issuers(a)) => {
            let list_path = key(&auth_path, "issuers");
            let issuers = cx.non_empty_list(&list_path, &a.issuers, |cx, p, s| {
                let name = cx.non_empty(p, s)?;
                issuer_refs.push((p.to_owned(), name.clone()));
                Some(name)
            });
            cx.unique("issuer", issuer_refs.iter().cloned());
            let resource_path = key(&auth_path, "resource");
            let resource = match &a.resource {
                Some(s) => cx.http_url(
                    &resource_path,
                    s,
                    UrlRules {
                        path: true,
                        query: false,
                    },
                ),
                None => default_resource(public_url, host.as_ref(), url_path.as_deref()),
            };
            let access = policy::access(cx, &auth_path, a);
            (|| {
                Some(RouteAuth::Required(RouteAuthRequired {
                    issuers: issuers?,
                    resource: resource?,
                    access: access?,
                }))
            })()
        }
    };

    let authenticated = matches!(raw.auth, Some(RawAuth::Issuers(_)));
    let mcp = policy::mcp_policy(cx, path, raw, authenticated);

    let location = match (&host, &url_path) {
        (Some(h), Some(p)) => Some((h.clone(), p.clone())),
        _ => None,
    };
    let route = (|| {
        Some(Route {
            name: name.clone()?,
            path: url_path?,
            host: host?,
            upstream: upstream?,
            auth: auth?,
            mcp: mcp?,
        })
    })();
    RouteOut {
        route,
        name,
        location,
        issuer_refs,
    }
}

/// `public_url` with the route's host (if any) and path; `None` if those are invalid
/// (already reported).
fn default_resource(
    public_url: Option<&Url>,
    host: Option<&Option<String>>,
    path: Option<&str>,
) -> Option<Url> {
    let mut url = public_url?.clone();
    if let Some(h) = host?.as_deref() {
        url.set_host(Some(h)).ok()?;
    }
    url.set_path(path?);
    Some(url)
}

fn upstream(cx: &mut Ctx, path: &str, raw: &RawUpstream) -> Option<Upstream> {
    let url_path = key(path, "url");
    let url = cx.required(&url_path, &raw.url).and_then(|s| {
        cx.http_url(
            &url_path,
            s,
            UrlRules {
                path: true,
                query: false,
            },
        )
    });
    let timeouts = cx
        .optional(&raw.timeouts, |cx, t| {
            timeouts(cx, &key(path, "timeouts"), t)
        })
        .map(Option::unwrap_or_default);
    let tls_path = key(path, "tls");
    let tls = cx
        .optional(&raw.tls, |cx, t| {
            let https = url.as_ref().is_none_or(|u| u.scheme() == "https");
            if !https {
                return cx.fail(&tls_path, "only allowed with an https upstream URL");
            }
            upstream_tls(cx, &tls_path, t)
        })
        .map(Option::unwrap_or_default);
    let headers = headers(cx, path, raw);
    let strip_path = key(path, "strip_headers");
    let strip_headers = cx
        .optional(&raw.strip_headers, |cx, list| {
            cx.list(&strip_path, list, |cx, p, s| {
                cx.parse(p, s, "header name", names::header_name)
            })
        })
        .map(Option::unwrap_or_default);
    Some(Upstream {
        url: url?,
        timeouts: timeouts?,
        tls: tls?,
        headers: headers?,
        strip_headers: strip_headers?,
    })
}

fn timeouts(cx: &mut Ctx, path: &str, raw: &RawUpstreamTimeouts) -> Option<UpstreamTimeouts> {
    let d = UpstreamTimeouts::default();
    let mut timeout = |name: &str, v: &Option<Str>, default| {
        cx.duration(&key(path, name), v, default, Zero::Rejected)
    };
    let connect = timeout("connect", &raw.connect, d.connect);
    let request = timeout("request", &raw.request, d.request);
    let stream_idle = timeout("stream_idle", &raw.stream_idle, d.stream_idle);
    Some(UpstreamTimeouts {
        connect: connect?,
        request: request?,
        stream_idle: stream_idle?,
    })
}

fn upstream_tls(cx: &mut Ctx, path: &str, raw: &RawUpstreamTls) -> Option<UpstreamTls> {
    let ca_path = key(path, "ca_file");
    let ca_file = cx.optional(&raw.ca_file, |cx, s| cx.readable_file(&ca_path, s));
    let client_cert = match (&raw.client_cert, &raw.client_key) {
        (None, None) => Some(None),
        (Some(_), Some(_)) => {
            let cert = ("client_cert", &raw.client_cert);
            listener::cert_pair(cx, path, cert, ("client_key", &raw.client_key)).map(Some)
        }
        _ => cx.fail(path, "set both `client_cert` and `client_key`, or neither"),
    };
    let sni_path = key(path, "server_name");
    let server_name = cx.optional(&raw.server_name, |cx, s| {
        cx.parse(&sni_path, s, "server name", names::host_name)
    });
    Some(UpstreamTls {
        ca_file: ca_file?,
        client_cert: client_cert?,
        server_name: server_name?,
    })
}

/// `headers` (values interpolated) and `headers_file` (values read from files), merged;
/// names are lower-cased and must not repeat across the two.
fn headers(cx: &mut Ctx, path: &str, raw: &RawUpstream) -> Option<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    let mut seen = Vec::new();
    let mut ok = true;
    let sources = [
        ("headers", &raw.headers),
        ("headers_file", &raw.headers_file),
    ];
    for (section, map) in sources {
        let section_path = key(path, section);
        for (name, value) in map.iter().flatten() {
            let p = key(&section_path, name);
            let name = match names::header_name(name) {
                Ok(n) => Some(n),
                Err(why) => cx.fail(&p, format!("invalid header name {name:?}{why}")),
            };
            let value = if section == "headers" {
                header_value(cx, &p, value)
            } else {
                cx.file_secret(&p, value)
                    .and_then(|v| check_header_value(cx, &p, v))
            };
            match (name, value) {
                (Some(n), Some(v)) => {
                    seen.push((p, n.clone()));
                    out.insert(n, v);
                }
                _ => ok = false,
            }
        }
    }
    let errors_before = cx.errors.len();
    cx.unique("header", seen);
    (ok && cx.errors.len() == errors_before).then_some(out)
}

fn header_value(cx: &mut Ctx, path: &str, s: &Str) -> Option<Secret> {
    let v = cx.string(path, s)?;
    check_header_value(cx, path, Secret::new(v))
}

fn check_header_value(cx: &mut Ctx, path: &str, v: Secret) -> Option<Secret> {
    if names::is_header_value(v.expose()) {
        Some(v)
    } else {
        cx.fail(
            path,
            "value contains characters not allowed in an HTTP header (e.g. a newline)",
        )
    }
}
