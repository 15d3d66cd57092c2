//! Raw → model: the top-level document, listeners, admin, limits, logging, shutdown, and the
//! cross-checks between sections. Routes and issuers have their own modules.

mod ctx;
mod issuer;
mod listener;
mod names;
mod policy;
mod rate_limits;
mod route;
mod telemetry;

use std::path::Path;
use std::time::Duration;

use url::Url;

use crate::error::{key, ConfigErrors};
use crate::model::{Admin, Config, Limits, LogFormat, Logging, Shutdown};
use crate::raw::{RawConfig, RawLimits, RawLogging, RawShutdown, Str};

pub(crate) use ctx::Env;
pub(crate) use ctx::UrlRules;
pub(crate) use ctx::{Ctx, Zero};

pub(crate) fn validate(
    raw: &RawConfig,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx::new(base_dir, env);
    let public_url = cx
        .required("public_url", &raw.public_url)
        .and_then(|s| public_url(&mut cx, s));
    let listeners = cx.non_empty_list("listeners", &raw.listeners, listener::listener);
    if let Some(listeners) = &listeners {
        cx.unique(
            "listener bind address",
            listeners
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("listeners[{i}].bind"), l.bind)),
        );
        listener::check_overlaps(&mut cx, listeners);
    }
    let admin = cx.optional(&raw.admin, |cx, a| {
        let bind = listener::bind(cx, "admin.bind", &a.bind)?;
        let clash = listeners
            .iter()
            .flatten()
            .position(|l| listener::binds_clash(l.bind, bind));
        if let Some(i) = clash {
            let other = listeners.iter().flatten().nth(i).map(|l| l.bind);
            let what = if other == Some(bind) {
                "is also"
            } else {
                "overlaps"
            };
            return cx.fail("admin.bind", format!("{bind} {what} listeners[{i}].bind"));
        }
        Some(Admin { bind })
    });
    let routes = route::routes(&mut cx, &raw.routes, public_url.as_ref());
    let mut issuers = issuer::issuers(&mut cx, &raw.issuers);
    let login = cx.optional(&raw.login, |cx, l| {
        crate::login::login(cx, l, public_url.as_ref())
    });
    if let Some(Some(login)) = &login {
        issuer::add_login_issuer(&mut cx, &mut issuers, login);
    }
    route::check_issuer_refs(&mut cx, &routes, &issuers);
    let limits = cx
        .optional(&raw.limits, limits)
        .map(Option::unwrap_or_default);
    let logging = cx
        .optional(&raw.logging, logging)
        .map(Option::unwrap_or_default);
    let shutdown = cx
        .optional(&raw.shutdown, shutdown)
        .map(Option::unwrap_or_default);
    let sessions = cx
        .optional(&raw.sessions, crate::sessions::sessions)
        .map(Option::unwrap_or_default);
    let tracing = cx.optional(&raw.tracing, telemetry::tracing);
    let route_names: Vec<String> = routes
        .iter()
        .flat_map(|r| &r.route)
        .map(|r| r.name.clone())
        .collect();
    let rate_limits = cx.optional(&raw.rate_limits, |cx, r| {
        rate_limits::rate_limits(cx, r, &route_names)
    });

    if !cx.errors.is_empty() {
        return Err(ConfigErrors(cx.errors));
    }
    let config = (|| {
        Some(Config {
            public_url: public_url?,
            listeners: listeners?,
            admin: admin?,
            routes: routes.into_iter().map(|r| r.route).collect::<Option<_>>()?,
            issuers: issuers
                .into_iter()
                .map(|i| i.issuer)
                .collect::<Option<_>>()?,
            limits: limits?,
            logging: logging?,
            shutdown: shutdown?,
            sessions: sessions?,
            tracing: tracing?,
            rate_limits: rate_limits?,
            login: login?,
        })
    })();
    // Every failed check reports an error, so this is unreachable; fail closed regardless.
    config
        .ok_or_else(|| ConfigErrors::one("", "internal error: validation failed without a reason"))
}

/// `public_url`: an http(s) origin (scheme, host, optional port), lower-cased by `Url`.
fn public_url(cx: &mut Ctx, s: &Str) -> Option<Url> {
    let rules = UrlRules {
        path: false,
        query: false,
    };
    // Accept (and drop) a trailing slash on a bare origin; `Url` always keeps path `/`.
    cx.http_url("public_url", s, rules)
}

/// One whole body must fit in a connection's share, and a connection's share in the total:
/// otherwise a legitimate request could never be served.
fn buffer_caps(
    cx: &mut Ctx,
    body: Option<u64>,
    per_connection: Option<u64>,
    total: Option<u64>,
) -> Option<(u64, u64)> {
    let (body, per_connection, total) = (body?, per_connection?, total?);
    if per_connection < body {
        return cx.fail(
            "limits.max_buffered_per_connection",
            "must be at least limits.max_request_body",
        );
    }
    if total < per_connection {
        return cx.fail(
            "limits.max_buffered_bodies",
            "must be at least limits.max_buffered_per_connection",
        );
    }
    Some((per_connection, total))
}

fn limits(cx: &mut Ctx, raw: &RawLimits) -> Option<Limits> {
    let d = Limits::default();
    let p = |k: &str| key("limits", k);
    let max_request_body = cx.size(
        &p("max_request_body"),
        &raw.max_request_body,
        d.max_request_body,
    );
    let max_request_headers = cx
        .size(
            &p("max_request_headers"),
            &raw.max_request_headers,
            d.max_request_headers as u64,
        )
        .and_then(|n| match usize::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => cx.fail(&p("max_request_headers"), "too large"),
        });
    let buffered = cx.size(
        &p("max_buffered_bodies"),
        &raw.max_buffered_bodies,
        d.max_buffered_bodies,
    );
    let per_connection = cx.size(
        &p("max_buffered_per_connection"),
        &raw.max_buffered_per_connection,
        d.max_buffered_per_connection,
    );
    let buffers = buffer_caps(cx, max_request_body, per_connection, buffered);
    let mut timeout = |k: &str, v: &Option<Str>, default: Duration| {
        cx.duration(&p(k), v, default, Zero::Rejected)
    };
    let client_read_timeout = timeout(
        "client_read_timeout",
        &raw.client_read_timeout,
        d.client_read_timeout,
    );
    let request_head_timeout = timeout(
        "request_head_timeout",
        &raw.request_head_timeout,
        d.request_head_timeout,
    );
    let client_write_timeout = timeout(
        "client_write_timeout",
        &raw.client_write_timeout,
        d.client_write_timeout,
    );
    let client_keepalive = timeout(
        "client_keepalive",
        &raw.client_keepalive,
        d.client_keepalive,
    );
    Some(Limits {
        max_request_body: max_request_body?,
        max_request_headers: max_request_headers?,
        max_buffered_bodies: buffers?.1,
        max_buffered_per_connection: buffers?.0,
        client_read_timeout: client_read_timeout?,
        request_head_timeout: request_head_timeout?,
        client_write_timeout: client_write_timeout?,
        client_keepalive: client_keepalive?,
    })
}

fn logging(cx: &mut Ctx, raw: &RawLogging) -> Option<Logging> {
    let d = Logging::default();
    let format = cx.choice(
        "logging.format",
        &raw.format,
        d.format,
        &[("text", LogFormat::Text), ("json", LogFormat::Json)],
    );
    let level = match &raw.level {
        None => Some(d.level),
        Some(s) => cx.non_empty("logging.level", s).and_then(|level| {
            match crate::log_filter::filter_problem(&level) {
                None => Some(level),
                Some(why) => cx.fail("logging.level", why),
            }
        }),
    };
    let audit_file = cx.optional(&raw.audit_file, |cx, s| {
        cx.file_path("logging.audit_file", s)
    });
    Some(Logging {
        format: format?,
        level: level?,
        access_log: raw.access_log.unwrap_or(d.access_log),
        audit_file: audit_file?,
    })
}

fn shutdown(cx: &mut Ctx, raw: &RawShutdown) -> Option<Shutdown> {
    let grace_period = cx.duration(
        "shutdown.grace_period",
        &raw.grace_period,
        Shutdown::default().grace_period,
        Zero::Allowed,
    )?;
    Some(Shutdown { grace_period })
}
