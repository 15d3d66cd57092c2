//! Structured logging setup: `tracing` to stdout, text or JSON, filter from the config
//! (`RUST_LOG` overrides it when it is a filter the config would accept); audit lines
//! (`mcpgate::audit`) optionally to their own JSON-lines file instead.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use mcpgate_config::{LogFormat, Logging};
use tracing::Metadata;
use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The `tracing` target of audit lines (`mcpgate_mcp::audit`).
const AUDIT_TARGET: &str = "mcpgate::audit";

fn is_audit(meta: &Metadata<'_>) -> bool {
    meta.target() == AUDIT_TARGET
}

/// Install the process's subscriber. Fails only when the audit file cannot be opened.
pub fn init(cfg: &Logging) -> Result<(), String> {
    let audit_file = match &cfg.audit_file {
        None => None,
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open logging.audit_file {}: {e}", path.display()))?,
        ),
    };
    let separate_audit = audit_file.is_some();
    // Colour only for a terminal: a file or pipe gets plain text, not escape codes.
    let ansi = std::io::stdout().is_terminal();
    // Audit lines go to the file alone when there is one (written once, not twice); there they
    // are not subject to the level filter, so `level: warn` cannot silence the trail.
    // The layers' level hints become the `log` crate's max level (`try_init` below): pingora logs
    // through `log`, and without a hint every one of its `debug!`s per request is turned into a
    // `tracing` event only to be filtered out — about 14.7k of the 188.5k instructions callgrind
    // counted per proxied request (tests/bench/callgrind.py). A filter that only removes lines
    // (`filter_fn`) has no hint of its own, so each one is given the level it can pass at most.
    let level = filter(cfg);
    let hint = level.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let main = match cfg.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stdout)
            .boxed(),
    }
    .with_filter(level)
    .with_filter(filter_fn(move |m| !(separate_audit && is_audit(m))).with_max_level_hint(hint));
    // Every audit line is an `info!`.
    let audit = audit_file.map(|file| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(Mutex::new(file))
            .with_filter(filter_fn(is_audit).with_max_level_hint(LevelFilter::INFO))
    });
    let _ = tracing_subscriber::registry()
        .with(main)
        .with(audit)
        .try_init();
    Ok(())
}

/// `RUST_LOG` if set and sound, else `logging.level` (validated with the configuration). A
/// misspelt `RUST_LOG=debugg` would otherwise silence every line, the audit trail included.
fn filter(cfg: &Logging) -> EnvFilter {
    let level = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => match mcpgate_config::log_filter_problem(&env) {
            None => env,
            Some(why) => {
                eprintln!(
                    "RUST_LOG ignored, using logging.level {:?}: {why}",
                    cfg.level
                );
                cfg.level.clone()
            }
        },
        _ => cfg.level.clone(),
    };
    EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"))
}
