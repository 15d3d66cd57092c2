//! The `mcpgate` command: `run`, `check` and `demo`.

mod demo;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the request path allocates many small, short-lived buffers
/// across threads, where glibc's arenas showed up at ~10% of CPU in profiles (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes (also in the README and `--help`).
pub mod exit {
    /// Served and shut down cleanly, or the configuration is valid.
    pub const OK: u8 = 0;
    /// The gateway could not start (a listener could not bind, TLS material unusable, …).
    pub const START_FAILED: u8 = 1;
    /// The configuration is invalid (every problem is listed on stderr), or bad command-line usage.
    pub const INVALID_CONFIG: u8 = 2;
}

#[derive(Parser)]
#[command(
    name = "mcpgate",
    version,
    about = "A security gateway for MCP servers: OAuth token validation, MCP-aware policy, and a fast streaming proxy.",
    after_help = "Exit codes: 0 success · 1 failed to start · 2 invalid configuration or usage.\nDocs: docs/configuration.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a configuration file.
    Run {
        /// Path to the YAML configuration.
        #[arg(short, long, env = "MCPGATE_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file and exit: 0 when valid, 2 with every error listed.
    Check {
        /// Path to the YAML configuration.
        #[arg(short, long, env = "MCPGATE_CONFIG")]
        config: PathBuf,
    },
    /// Start a self-contained demo on loopback: the gateway, a sample MCP server and a local token issuer.
    Demo {
        /// Port of the gateway's MCP listener.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Port of the admin listener (/healthz, /readyz, /metrics).
        #[arg(long, default_value_t = 9090)]
        admin_port: u16,
    },
}

fn load(path: &std::path::Path) -> Result<mcpgate_config::Config, ExitCode> {
    mcpgate_config::load_file(path).map_err(|errors| invalid(path, &errors))
}

fn invalid(path: &std::path::Path, errors: &mcpgate_config::ConfigErrors) -> ExitCode {
    eprintln!("{}: invalid configuration:", path.display());
    for e in &errors.0 {
        eprintln!("  {e}");
    }
    ExitCode::from(exit::INVALID_CONFIG)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Err(e) = mcpgate_proxy::preflight(&cfg) {
                eprintln!("{}: invalid configuration:\n  {e}", config.display());
                return ExitCode::from(exit::INVALID_CONFIG);
            }
            println!(
                "{}: configuration is valid ({} listener(s), {} route(s), {} issuer(s))",
                config.display(),
                cfg.listeners.len(),
                cfg.routes.len(),
                cfg.issuers.len()
            );
            ExitCode::from(exit::OK)
        }
        Command::Run { config } => {
            // The digest of exactly the bytes loaded, so a change made during start-up is still
            // seen by the reload poll.
            let (cfg, digest) = match mcpgate_proxy::reload::load(&config) {
                Ok(loaded) => loaded,
                Err(errors) => return invalid(&config, &errors),
            };
            if let Err(e) = logging::init(&cfg.logging) {
                eprintln!("{e}");
                return ExitCode::from(exit::START_FAILED);
            }
            let source = mcpgate_proxy::ConfigSource {
                path: config,
                digest,
            };
            serve(&cfg, Some(source))
        }
        Command::Demo { port, admin_port } => demo::run(port, admin_port),
    }
}

/// Build and run the gateway until shutdown; with a `source`, reload it on SIGHUP and on change.
pub fn serve(
    cfg: &mcpgate_config::Config,
    source: Option<mcpgate_proxy::ConfigSource>,
) -> ExitCode {
    // pingora binds these itself (and retries a busy address for 30 s before panicking its
    // thread), so a busy one is found here first; the admin listener is bound by `build`.
    for l in &cfg.listeners {
        if let Err(e) = std::net::TcpListener::bind(l.bind) {
            eprintln!("cannot listen on {}: {e}", l.bind);
            return ExitCode::from(exit::START_FAILED);
        }
    }
    match mcpgate_proxy::GatewayServer::build(cfg, source) {
        Ok(gw) => {
            tracing::info!(
                listeners = ?cfg.listeners.iter().map(|l| l.bind.to_string()).collect::<Vec<_>>(),
                routes = cfg.routes.len(),
                "mcpgate starting"
            );
            gw.run();
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("mcpgate cannot start: {e}");
            ExitCode::from(exit::START_FAILED)
        }
    }
}
