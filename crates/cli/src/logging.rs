//! Structured logging setup: `tracing` to stdout, text or JSON, filter from the config
//! (`RUST_LOG` overrides it when it is a filter the config would accept).

use std::io::IsTerminal;

use mcpgate_config::{LogFormat, Logging};
use tracing_subscriber::EnvFilter;

pub fn init(cfg: &Logging) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(cfg))
        .with_writer(std::io::stdout)
        // Colour only for a terminal: a file or pipe gets plain text, not escape codes.
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match cfg.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
