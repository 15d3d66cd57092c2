//! Which settings a running gateway can take over on a reload, and which are fixed for the
//! life of the process (sockets, the log subscriber, the shutdown sequence).

use crate::model::Config;

/// The keys whose change between `old` and `new` only a restart can apply; empty when `new` can
/// replace `old` live. A reload that changes any of them is refused as a whole: the gateway
/// always runs exactly one configuration document, never half of one.
pub fn restart_required(old: &Config, new: &Config) -> Vec<&'static str> {
    let fixed: [(&'static str, bool); 10] = [
        // Bound sockets, their TLS certificate sets and h2c are built once by pingora.
        ("listeners", old.listeners != new.listeners),
        ("admin", old.admin != new.admin),
        // The tracing subscriber is installed once per process.
        ("logging.format", old.logging.format != new.logging.format),
        ("logging.level", old.logging.level != new.logging.level),
        // Budgets live in one store for the life of the process (rules and rates change live).
        ("rate_limits.store", rate_store(old) != rate_store(new)),
        // The audit file is opened once, and the span exporter is started once.
        (
            "logging.audit_file",
            old.logging.audit_file != new.logging.audit_file,
        ),
        ("tracing", old.tracing != new.tracing),
        // Session bindings (memory, sealing keys, Redis) outlive snapshots: a reload must not
        // orphan every open session. Keys rotate by a rolling restart (the ring opens old ids).
        ("sessions", old.sessions != new.sessions),
        // The front door (its keys, IdP client and store) is built once; its pending logins,
        // codes and refresh families live in that store.
        ("login", old.login != new.login),
        // The signal handler holds the grace period it was started with.
        (
            "shutdown.grace_period",
            old.shutdown.grace_period != new.shutdown.grace_period,
        ),
    ];
    fixed
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
}

/// Where budgets are kept and how long a decision may wait on it; `None` without rate limits
/// (adding or removing the section changes the store too).
fn rate_store(c: &Config) -> Option<(&crate::RateStore, std::time::Duration)> {
    c.rate_limits.as_ref().map(|r| (&r.store, r.store_timeout))
}
