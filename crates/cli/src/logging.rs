//! Structured logging setup: `tracing` to stdout, text or JSON, filter from the config
//! (`RUST_LOG` overrides it).

use std::io::IsTerminal;

use mcpgate_config::{LogFormat, Logging};
use tracing_subscriber::EnvFilter;

pub fn init(cfg: &Logging) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        // Colour only for a terminal: a file or pipe gets plain text, not escape codes.
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match cfg.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
