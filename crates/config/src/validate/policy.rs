//! Route policy: the caller requirements under `routes[].auth` (scopes, email domains, groups,
//! claims, scope hierarchy, metadata extras) and the route's MCP rules (`tools`, `resources`,
//! `prompts`, `origins`, `allow_batches`, `identity_headers`, `session_idle_timeout`).

use std::collections::BTreeMap;

use crate::error::key;
use crate::model::{Access, IdentityHeaders, McpPolicy, McpRule};
use crate::raw::{RawAuthIssuers, RawIdentityHeaders, RawRoute, RawRule, Str};

use super::ctx::{Ctx, UrlRules, Zero};
use super::issuer::strings;
use super::names;

/// RFC 6749 §3.3 scope-token: `%x21 / %x23-5B / %x5D-7E`.
fn scope_token(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(" (a scope is printable ASCII without spaces, quotes or backslashes)".to_owned())
    }
}

fn scopes(cx: &mut Ctx, path: &str, raw: &Option<Vec<Str>>) -> Option<Vec<String>> {
    match raw {
        None => Some(Vec::new()),
        Some(list) => cx.list(path, list, |cx, p, s| cx.parse(p, s, "scope", scope_token)),
    }
}

fn domain(s: &str) -> Result<String, String> {
    if s.contains('@') {
        return Err(" (a domain, without the user part)".to_owned());
    }
    names::host_name(s)
}

/// `routes[].auth` beyond `issuers` and `resource`.
pub(super) fn access(cx: &mut Ctx, path: &str, raw: &RawAuthIssuers) -> Option<Access> {
    let required_scopes = scopes(cx, &key(path, "required_scopes"), &raw.required_scopes);
    let domains_path = key(path, "allowed_domains");
    let allowed_domains = match &raw.allowed_domains {
        None => Some(Vec::new()),
        Some(list) => cx.list(&domains_path, list, |cx, p, s| {
            cx.parse(p, s, "domain", domain)
        }),
    };
    let allowed_groups = strings(cx, &key(path, "allowed_groups"), &raw.allowed_groups, &[]);
    let claims_path = key(path, "require_claims");
    let mut require_claims = Some(BTreeMap::new());
    for (name, value) in raw.require_claims.iter().flatten() {
        let v = cx.non_empty(&key(&claims_path, name), value);
        match (v, require_claims.as_mut()) {
            (Some(v), Some(map)) => {
                map.insert(name.clone(), v);
            }
            _ => require_claims = None,
        }
    }
    let hierarchy_path = key(path, "scope_hierarchy");
    let mut scope_hierarchy = Some(BTreeMap::new());
    for (scope, implied) in raw.scope_hierarchy.iter().flatten() {
        let p = key(&hierarchy_path, scope);
        let name = cx.parse(&p, &Str(scope.clone()), "scope", scope_token);
        let implied = scopes(cx, &p, &Some(implied.clone()));
        match (name, implied, scope_hierarchy.as_mut()) {
            (Some(n), Some(i), Some(map)) => {
                map.insert(n, i);
            }
            _ => scope_hierarchy = None,
        }
    }
    let scopes_supported = match &raw.scopes_supported {
        None => Some(None),
        Some(_) => scopes(cx, &key(path, "scopes_supported"), &raw.scopes_supported).map(Some),
    };
    let resource_name = cx.optional(&raw.resource_name, |cx, s| {
        cx.non_empty(&key(path, "resource_name"), s)
    });
    let doc_path = key(path, "resource_documentation");
    let resource_documentation = cx.optional(&raw.resource_documentation, |cx, s| {
        cx.http_url(
            &doc_path,
            s,
            UrlRules {
                path: true,
                query: true,
            },
        )
    });
    let domains = allowed_domains?;
    Some(Access {
        required_scopes: required_scopes?,
        require_email_verified: raw.require_email_verified.unwrap_or(true),
        allowed_domains: domains,
        allowed_groups: allowed_groups?,
        require_claims: require_claims?,
        scope_hierarchy: scope_hierarchy?,
        scopes_supported: scopes_supported?,
        resource_name: resource_name?,
        resource_documentation: resource_documentation?,
    })
}

fn rules(
    cx: &mut Ctx,
    path: &str,
    raw: &Option<Vec<RawRule>>,
    authenticated: bool,
) -> Option<Vec<McpRule>> {
    let Some(list) = raw else {
        return Some(Vec::new());
    };
    cx.list(path, list, |cx, p, r| {
        let pattern = cx.required_string(&key(p, "match"), &r.pattern);
        let scopes = scopes(cx, &key(p, "scopes"), &r.scopes);
        let groups = strings(cx, &key(p, "groups"), &r.groups, &[]);
        let (scopes, groups, pattern) = (scopes?, groups?, pattern?);
        if !authenticated && (!scopes.is_empty() || !groups.is_empty()) {
            return cx.fail(p, "scopes and groups need an authenticated route (`auth` with issuers); on `auth: none` only `deny` applies");
        }
        Some(McpRule {
            pattern,
            scopes,
            groups,
            deny: r.deny.unwrap_or(false),
        })
    })
}

/// `scheme://host[:port]`, lower-case, as browsers send it in `Origin`.
fn origin(cx: &mut Ctx, path: &str, s: &Str) -> Option<String> {
    let url = cx.http_url(
        path,
        s,
        UrlRules {
            path: false,
            query: false,
        },
    )?;
    Some(url.origin().ascii_serialization())
}

fn identity_headers(cx: &mut Ctx, path: &str, raw: &RawIdentityHeaders) -> Option<IdentityHeaders> {
    let named = [&raw.subject, &raw.email, &raw.scopes, &raw.client_id];
    if named.iter().all(|n| n.is_none()) {
        return Some(IdentityHeaders::all_default());
    }
    let mut name = |k: &str, v: &Option<Str>| -> Option<Option<String>> {
        let Some(s) = v else { return Some(None) };
        let p = key(path, k);
        let n = cx.parse(&p, s, "header name", names::header_name)?;
        if matches!(
            n.as_str(),
            "authorization" | "cookie" | "proxy-authorization"
        ) {
            return cx.fail(&p, "must not be a credential header");
        }
        Some(Some(n))
    };
    let subject = name("subject", &raw.subject);
    let email = name("email", &raw.email);
    let scopes = name("scopes", &raw.scopes);
    let client_id = name("client_id", &raw.client_id);
    Some(IdentityHeaders {
        subject: subject?,
        email: email?,
        scopes: scopes?,
        client_id: client_id?,
    })
}

/// A route's MCP rules.
pub(super) fn mcp_policy(
    cx: &mut Ctx,
    path: &str,
    raw: &RawRoute,
    authenticated: bool,
) -> Option<McpPolicy> {
    let tools = rules(cx, &key(path, "tools"), &raw.tools, authenticated);
    let resources = rules(cx, &key(path, "resources"), &raw.resources, authenticated);
    let prompts = rules(cx, &key(path, "prompts"), &raw.prompts, authenticated);
    let origins_path = key(path, "origins");
    let origins = match &raw.origins {
        None => Some(Vec::new()),
        Some(list) => cx.list(&origins_path, list, |cx, p, s| origin(cx, p, s)),
    };
    let ih_path = key(path, "identity_headers");
    let identity = cx.optional(&raw.identity_headers, |cx, r| {
        identity_headers(cx, &ih_path, r)
    });
    if identity.as_ref().is_some_and(Option::is_some) && !authenticated {
        cx.err(
            &ih_path,
            "needs an authenticated route (`auth` with issuers)",
        );
    }
    let idle = cx.duration(
        &key(path, "session_idle_timeout"),
        &raw.session_idle_timeout,
        McpPolicy::default().session_idle_timeout,
        Zero::Rejected,
    );
    Some(McpPolicy {
        tools: tools?,
        resources: resources?,
        prompts: prompts?,
        origins: origins?,
        allow_batches: raw.allow_batches.unwrap_or(false),
        identity_headers: identity?,
        session_idle_timeout: idle?,
    })
}
