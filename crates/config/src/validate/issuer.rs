//! Issuers: identity, key source (discovery / JWKS URI / JWKS file), accepted algorithms,
//! claim rules, JWKS refresh policy and token introspection.

use std::time::Duration;

use crate::error::{index, key};
use crate::login::Login;
use crate::model::{
    Algorithm, ClaimNames, ClientAuthMethod, Introspection, Issuer, JwksRefresh, JwksSource,
};
use crate::raw::{RawClaimNames, RawIntrospection, RawIssuer, RawJwksRefresh, Str};

use super::ctx::{Ctx, UrlRules, Zero};
use super::names;

const DEFAULT_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const MAX_LEEWAY: Duration = Duration::from_secs(300);
const LOGIN_LEEWAY: Duration = Duration::from_secs(5);
/// More concurrent introspection calls than this is a typo, not a capacity plan.
const MAX_CONCURRENT_LIMIT: usize = 4096;
const URL_WITH_PATH: UrlRules = UrlRules {
    path: true,
    query: true,
};

/// One issuer's outcome: the issuer if valid, and its name for cross-checks even if not.
pub(super) struct IssuerOut {
    pub issuer: Option<Issuer>,
    pub name: Option<String>,
}

pub(super) fn issuers(cx: &mut Ctx, raw: &Option<Vec<RawIssuer>>) -> Vec<IssuerOut> {
    let outs: Vec<IssuerOut> = raw
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| issuer(cx, &index("issuers", i), r))
        .collect();
    cx.unique(
        "issuer name",
        outs.iter()
            .enumerate()
            .filter_map(|(i, o)| Some((key(&index("issuers", i), "name"), o.name.clone()?))),
    );
    outs
}

fn issuer(cx: &mut Ctx, path: &str, raw: &RawIssuer) -> IssuerOut {
    let p = |k: &str| key(path, k);
    let name = cx
        .required(&p("name"), &raw.name)
        .and_then(|s| cx.parse(&p("name"), s, "name", names::identifier));
    let issuer = cx.required_string(&p("issuer"), &raw.issuer);
    let introspection = cx.optional(&raw.introspection, |cx, i| {
        introspection(cx, &p("introspection"), i)
    });
    let jwks = jwks_source(
        cx,
        path,
        raw,
        issuer.as_deref(),
        raw.introspection.is_some(),
    );
    let algorithms = algorithms(cx, &p("algorithms"), &raw.algorithms);
    let leeway = cx
        .duration(&p("leeway"), &raw.leeway, DEFAULT_LEEWAY, Zero::Allowed)
        .and_then(|d| {
            if d > MAX_LEEWAY {
                cx.fail(&p("leeway"), "must be at most 5m")
            } else {
                Some(d)
            }
        });
    let required_claims = strings(cx, &p("required_claims"), &raw.required_claims, &["exp"]);
    let audiences = strings(cx, &p("audiences"), &raw.audiences, &[]);
    let claims = cx
        .optional(&raw.claims, |cx, c| claim_names(cx, &p("claims"), c))
        .map(Option::unwrap_or_default);
    let jwks_refresh = cx
        .optional(&raw.jwks_refresh, |cx, r| {
            jwks_refresh(cx, &p("jwks_refresh"), r)
        })
        .map(Option::unwrap_or_default);

    let valid = (|| {
        Some(Issuer {
            name: name.clone()?,
            issuer: issuer?,
            jwks: jwks?,
            algorithms: algorithms?,
            leeway: leeway?,
            required_claims: required_claims?,
            audiences: audiences?,
            require_at_jwt: raw.require_at_jwt.unwrap_or(false),
            claims: claims?,
            jwks_refresh: jwks_refresh?,
            introspection: introspection?,
        })
    })();
    IssuerOut {
        issuer: valid,
        name,
    }
}

/// With a `login:` section, routes may trust what the front door signs as issuer `login`: its
/// own keys (in memory), `at+jwt` only (RFC 9068), no leeway beyond the default. The name is
/// reserved so that no configured issuer can pose as the front door.
pub(super) fn add_login_issuer(cx: &mut Ctx, issuers: &mut Vec<IssuerOut>, login: &Login) {
    let name = Login::ISSUER_NAME;
    if let Some(i) = issuers.iter().position(|o| o.name.as_deref() == Some(name)) {
        let path = key(&index("issuers", i), "name");
        cx.err(
            &path,
            "`login` is reserved for the login front door's own tokens",
        );
        return;
    }
    let mut algorithms: Vec<Algorithm> = login.signing_keys.iter().map(|k| k.alg).collect();
    algorithms.dedup();
    let issuer = Issuer {
        name: name.to_owned(),
        issuer: login.issuer.clone(),
        jwks: Some(JwksSource::Inline(login.jwks_json())),
        algorithms,
        // mcpgate signs and checks these on synchronised clocks: the default 30 s of skew would
        // only lengthen a disabled user's access past `access_ttl` (interop scenario 18).
        leeway: LOGIN_LEEWAY,
        required_claims: vec!["exp".into(), "sub".into()],
        audiences: Vec::new(),
        require_at_jwt: true,
        claims: ClaimNames::default(),
        jwks_refresh: Default::default(),
        introspection: None,
    };
    issuers.push(IssuerOut {
        issuer: Some(issuer),
        name: Some(name.to_owned()),
    });
}

/// Exactly one of `discovery: true`, `jwks_uri`, `jwks_file`; or none with introspection.
fn jwks_source(
    cx: &mut Ctx,
    path: &str,
    raw: &RawIssuer,
    issuer: Option<&str>,
    has_introspection: bool,
) -> Option<Option<JwksSource>> {
    let discovery = raw.discovery == Some(true);
    let set = [discovery, raw.jwks_uri.is_some(), raw.jwks_file.is_some()];
    match set.iter().filter(|s| **s).count() {
        0 if has_introspection => Some(None),
        0 => cx.fail(
            path,
            "no signing keys: set one of `discovery: true`, `jwks_uri` or `jwks_file` \
             (or configure `introspection`)",
        ),
        1 => {
            let source = if discovery {
                // Discovery fetches `<issuer>/.well-known/...`, so the issuer must be a URL.
                let is_url = url::Url::parse(issuer?)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                if !is_url {
                    let p = key(path, "issuer");
                    return cx.fail(&p, "must be an http(s) URL when `discovery: true` is set");
                }
                JwksSource::Discovery
            } else if let Some(s) = &raw.jwks_uri {
                JwksSource::Uri(cx.http_url(&key(path, "jwks_uri"), s, URL_WITH_PATH)?)
            } else {
                let s = raw.jwks_file.as_ref()?;
                JwksSource::File(cx.readable_file(&key(path, "jwks_file"), s)?)
            };
            Some(Some(source))
        }
        _ => cx.fail(
            path,
            "set only one of `discovery: true`, `jwks_uri` and `jwks_file`",
        ),
    }
}

fn algorithms(cx: &mut Ctx, path: &str, raw: &Option<Vec<Str>>) -> Option<Vec<Algorithm>> {
    let Some(list) = raw else {
        return Some(DEFAULT_ALGORITHMS.to_vec());
    };
    if list.is_empty() {
        return cx.fail(path, "must list at least one algorithm");
    }
    let mut algs = cx.list(path, list, |cx, p, s| {
        cx.parse(p, s, "algorithm", algorithm)
    })?;
    let mut seen = Vec::new();
    algs.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    Some(algs)
}

fn algorithm(s: &str) -> Result<Algorithm, String> {
    if let Some(a) = Algorithm::parse(s) {
        return Ok(a);
    }
    let lower = s.to_ascii_lowercase();
    if lower == "none" || lower.starts_with("hs") {
        Err(": HMAC/none algorithms are never accepted".to_owned())
    } else {
        Err(
            " (expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
                .to_owned(),
        )
    }
}

/// An optional list of non-empty strings (default when absent).
pub(super) fn strings(
    cx: &mut Ctx,
    path: &str,
    raw: &Option<Vec<Str>>,
    default: &[&str],
) -> Option<Vec<String>> {
    match raw {
        None => Some(default.iter().map(|s| s.to_string()).collect()),
        Some(list) => cx.list(path, list, |cx, p, s| cx.non_empty(p, s)),
    }
}

fn claim_names(cx: &mut Ctx, path: &str, raw: &RawClaimNames) -> Option<ClaimNames> {
    let d = ClaimNames::default();
    let mut name = |k: &str, v: &Option<Str>, default: String| match v {
        None => Some(default),
        Some(s) => cx.non_empty(&key(path, k), s),
    };
    let groups = name("groups", &raw.groups, d.groups);
    let email = name("email", &raw.email, d.email);
    Some(ClaimNames {
        groups: groups?,
        email: email?,
    })
}

fn jwks_refresh(cx: &mut Ctx, path: &str, raw: &RawJwksRefresh) -> Option<JwksRefresh> {
    let d = JwksRefresh::default();
    let mut interval =
        |k: &str, v: &Option<Str>, default| cx.duration(&key(path, k), v, default, Zero::Rejected);
    let min_interval = interval("min_interval", &raw.min_interval, d.min_interval);
    let max_interval = interval("max_interval", &raw.max_interval, d.max_interval);
    let unknown_kid_cooldown = interval(
        "unknown_kid_cooldown",
        &raw.unknown_kid_cooldown,
        d.unknown_kid_cooldown,
    );
    let stale_window = interval("stale_window", &raw.stale_window, d.stale_window);
    let timeout = interval("timeout", &raw.timeout, d.timeout);
    let (min_interval, max_interval) = (min_interval?, max_interval?);
    if min_interval > max_interval {
        return cx.fail(
            &key(path, "min_interval"),
            "must not be greater than max_interval",
        );
    }
    Some(JwksRefresh {
        min_interval,
        max_interval,
        unknown_kid_cooldown: unknown_kid_cooldown?,
        stale_window: stale_window?,
        timeout: timeout?,
    })
}

fn introspection(cx: &mut Ctx, path: &str, raw: &RawIntrospection) -> Option<Introspection> {
    let p = |k: &str| key(path, k);
    let endpoint = cx
        .required(&p("endpoint"), &raw.endpoint)
        .and_then(|s| cx.http_url(&p("endpoint"), s, URL_WITH_PATH));
    let client_id = cx.required_string(&p("client_id"), &raw.client_id);
    let client_secret = match (&raw.client_secret, &raw.client_secret_file) {
        (Some(s), None) => cx
            .non_empty(&p("client_secret"), s)
            .map(crate::model::Secret::new),
        (None, Some(f)) => cx.file_secret(&p("client_secret_file"), f),
        (Some(_), Some(_)) => cx.fail(
            path,
            "set either `client_secret` or `client_secret_file`, not both",
        ),
        (None, None) => cx.fail(
            &p("client_secret"),
            "missing required key (or set `client_secret_file`)",
        ),
    };
    let auth_method = cx.choice(
        &p("auth_method"),
        &raw.auth_method,
        ClientAuthMethod::ClientSecretBasic,
        &[
            ("client_secret_basic", ClientAuthMethod::ClientSecretBasic),
            ("client_secret_post", ClientAuthMethod::ClientSecretPost),
        ],
    );
    let mut ttl = |k: &str, v: &Option<Str>, secs| {
        cx.duration(&p(k), v, Duration::from_secs(secs), Zero::Rejected)
    };
    let cache_ttl = ttl("cache_ttl", &raw.cache_ttl, 300);
    let negative_cache_ttl = ttl("negative_cache_ttl", &raw.negative_cache_ttl, 10);
    let timeout = ttl("timeout", &raw.timeout, 5);
    let max_concurrent = max_concurrent(cx, &p("max_concurrent"), &raw.max_concurrent);
    Some(Introspection {
        endpoint: endpoint?,
        client_id: client_id?,
        client_secret: client_secret?,
        auth_method: auth_method?,
        cache_ttl: cache_ttl?,
        negative_cache_ttl: negative_cache_ttl?,
        timeout: timeout?,
        max_concurrent: max_concurrent?,
        accept_missing_audience: raw.accept_missing_audience.unwrap_or(false),
    })
}

/// A whole number of concurrent introspection calls, 1 to [`MAX_CONCURRENT_LIMIT`].
fn max_concurrent(cx: &mut Ctx, path: &str, raw: &Option<Str>) -> Option<usize> {
    let Some(s) = raw else {
        return Some(Introspection::DEFAULT_MAX_CONCURRENT);
    };
    cx.parse(path, s, "count", |v| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_CONCURRENT_LIMIT).contains(n))
            .ok_or_else(|| format!(" (a whole number from 1 to {MAX_CONCURRENT_LIMIT})"))
    })
}
