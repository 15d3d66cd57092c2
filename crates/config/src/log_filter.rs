//! The `logging.level` check: a `tracing` filter the gateway can install, refused here so that
//! `mcpgate check` rejects what `run` would otherwise silently turn into "log nothing".

use tracing_subscriber::EnvFilter;

/// Level words a bare directive may be (as `tracing`'s `LevelFilter` parses them).
const LEVELS: [&str; 12] = [
    "off", "error", "warn", "info", "debug", "trace", "0", "1", "2", "3", "4", "5",
];

/// Why `level` is not an acceptable filter, or `None` when it is.
///
/// `EnvFilter` reads a bare word that is not a level as a *target* enabled at every level, so
/// `debugg` silences everything but a target of that name. A bare directive must therefore be a
/// level; a target needs its level spelled out (`mcpgate=debug`).
pub fn filter_problem(level: &str) -> Option<String> {
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains('=');
        if bare && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive)) {
            return Some(format!(
                "{directive:?} is not a level (off, error, warn, info, debug, trace); \
                 a target needs one too, e.g. \"{directive}=debug\""
            ));
        }
    }
    EnvFilter::try_new(level)
        .err()
        .map(|e| format!("not a valid filter ({e}); e.g. \"info\" or \"mcpgate=debug,info\""))
}

#[cfg(test)]
mod tests {
    use super::filter_problem;

    #[test]
    fn levels_and_target_directives_pass() {
        for ok in [
            "info",
            "DEBUG",
            "warn,mcpgate=debug",
            "mcpgate::audit=info, off",
            "trace",
        ] {
            assert_eq!(filter_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn misspelt_levels_and_bare_targets_are_refused() {
        for bad in ["debugg", "info,warnn", "mcpgate", "mcpgate=debugg", "=info"] {
            assert!(filter_problem(bad).is_some(), "{bad} passed");
        }
    }
}
