//! Listeners: bind addresses, TLS certificate pairs, h2c and trusted proxies.

use std::net::SocketAddr;

use crate::error::key;
use crate::model::{CertificatePair, IpNet, Listener, ListenerTls};
use crate::raw::{RawListener, RawListenerTls, Str};
use crate::units;

use super::ctx::Ctx;

pub(super) fn listener(cx: &mut Ctx, path: &str, raw: &RawListener) -> Option<Listener> {
    let bind = bind(cx, &key(path, "bind"), &raw.bind);
    let tls_path = key(path, "tls");
    let tls = cx.optional(&raw.tls, |cx, t| tls(cx, &tls_path, t));
    let h2c = h2c(cx, &key(path, "h2c"), raw);
    let proxies_path = key(path, "trusted_proxies");
    let trusted_proxies = cx.optional(&raw.trusted_proxies, |cx, list| {
        cx.list(&proxies_path, list, |cx, p, s| {
            cx.parse(p, s, "trusted proxy", |v| {
                v.parse::<IpNet>().map_err(|e| format!(": {e}"))
            })
        })
    });
    Some(Listener {
        bind: bind?,
        tls: tls?,
        h2c: h2c?,
        trusted_proxies: trusted_proxies?.unwrap_or_default(),
    })
}

/// A required bind address (`ip:port`, `[v6]:port` or `localhost:port`).
pub(super) fn bind(cx: &mut Ctx, path: &str, raw: &Option<Str>) -> Option<SocketAddr> {
    let s = cx.required(path, raw)?;
    cx.parse(path, s, "socket address", |v| {
        units::parse_socket_addr(v)
            .ok_or_else(|| " (use e.g. 0.0.0.0:8443 or [::]:8443)".to_owned())
    })
}

/// True when both addresses cannot be bound at once: the same port, and the same address or
/// either one unspecified (`0.0.0.0` / `[::]` take the port on every address, and `[::]` is
/// dual-stack by default). Caught here, `check` refuses what `run` would fail to bind.
pub(super) fn binds_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Every later listener whose address clashes with an earlier, different one.
pub(super) fn check_overlaps(cx: &mut Ctx, listeners: &[Listener]) {
    for (j, later) in listeners.iter().enumerate() {
        let earlier = listeners[..j]
            .iter()
            .position(|l| l.bind != later.bind && binds_clash(l.bind, later.bind));
        if let Some(i) = earlier {
            let msg = format!(
                "{} overlaps listeners[{i}].bind {} (same port; an unspecified address takes every address)",
                later.bind, listeners[i].bind
            );
            cx.err(&format!("listeners[{j}].bind"), msg);
        }
    }
}

/// `h2c: true` (HTTP/2 with prior knowledge) is for plaintext listeners only.
fn h2c(cx: &mut Ctx, path: &str, raw: &RawListener) -> Option<bool> {
    let h2c = raw.h2c.unwrap_or(false);
    if h2c && raw.tls.is_some() {
        return cx.fail(
            path,
            "only for plaintext listeners: with `tls`, HTTP/2 is negotiated by ALPN already",
        );
    }
    Some(h2c)
}

/// `{cert, key}` (one pair) or `{certificates: [{cert, key}, ...]}`, not both.
fn tls(cx: &mut Ctx, path: &str, raw: &RawListenerTls) -> Option<ListenerTls> {
    let shorthand = raw.cert.is_some() || raw.key.is_some();
    let certificates = match (&raw.certificates, shorthand) {
        (Some(_), true) => {
            return cx.fail(path, "use either `cert`/`key` or `certificates`, not both");
        }
        (Some(_), false) => {
            let list_path = key(path, "certificates");
            cx.non_empty_list(&list_path, &raw.certificates, |cx, p, pair| {
                cert_pair(cx, p, ("cert", &pair.cert), ("key", &pair.key))
            })?
        }
        (None, true) => vec![cert_pair(cx, path, ("cert", &raw.cert), ("key", &raw.key))?],
        (None, false) => return cx.fail(path, "missing `cert` and `key` (or `certificates`)"),
    };
    Some(ListenerTls { certificates })
}

/// A certificate chain and its private key, given as `(key name, value)` under `path`;
/// both files must be readable.
pub(super) fn cert_pair(
    cx: &mut Ctx,
    path: &str,
    cert: (&str, &Option<Str>),
    private_key: (&str, &Option<Str>),
) -> Option<CertificatePair> {
    let mut file = |(name, value): (&str, &Option<Str>)| {
        let p = key(path, name);
        cx.required(&p, value).and_then(|s| cx.readable_file(&p, s))
    };
    let cert = file(cert);
    let private_key = file(private_key);
    Some(CertificatePair {
        cert: cert?,
        key: private_key?,
    })
}
