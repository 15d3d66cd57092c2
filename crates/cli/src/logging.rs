//! Structured logging setup: `tracing` to stdout, text or JSON, filter from the config
//! (`RUST_LOG` overrides it); audit lines (`mcpgate::audit`) optionally to their own JSON-lines
//! file instead.

use std::fs::OpenOptions;
use std::sync::Mutex;

use mcpgate_config::{LogFormat, Logging};
use tracing::Metadata;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"))
    });
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
    // Audit lines go to the file alone when there is one (written once, not twice); there they
    // are not subject to the level filter, so `level: warn` cannot silence the trail.
    let main = match cfg.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .boxed(),
    }
    .with_filter(filter)
    .with_filter(filter_fn(move |m| !(separate_audit && is_audit(m))));
    let audit = audit_file.map(|file| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(Mutex::new(file))
            .with_filter(filter_fn(is_audit))
    });
    let _ = tracing_subscriber::registry()
        .with(main)
        .with(audit)
        .try_init();
    Ok(())
}
