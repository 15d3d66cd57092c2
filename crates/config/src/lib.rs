//! mcpgate configuration: YAML in, a validated [`Config`] out, or every error with its key path.
//!
//! Loading runs in two stages. The document is first deserialized into private "raw" types
//! that mirror the YAML schema and reject unknown keys (`raw`); a structural problem stops
//! there with its key path. Validation then interpolates `${VAR}` references, parses every
//! value and checks cross-references, collecting all problems at once (`validate`).

mod error;
mod interpolate;
mod ipnet;
mod live;
mod log_filter;
mod login;
pub mod model;
mod rate_limits;
mod raw;
mod sessions;
mod telemetry;
mod units;
mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use live::restart_required;
pub use log_filter::filter_problem as log_filter_problem;
pub use login::{
    redirect_uri_problem, Clients, Grant, Login, LoginPolicy, LoginStore, MetadataFetch,
    RegisteredClient, SigningKey, UpstreamIdp,
};
pub use model::*;
pub use rate_limits::{
    Budget, OnStoreError, RateKey, RateLimits, RateRule, RateStore, ToolsCallAnswer,
};
pub use sessions::{SessionKey, Sessions};
pub use telemetry::Tracing;

/// Loads and validates the configuration file at `path`. Relative paths inside it resolve
/// against its directory; `${VAR}` references read the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::one(
            "",
            format!("cannot read {:?}: {e}", path.display().to_string()),
        )
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse_str(&text, base_dir, &env_lookup)
}

/// Parses and validates a configuration document. Relative paths resolve against `base_dir`;
/// `env` resolves `${VAR}` references.
pub fn parse_str(
    yaml: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let raw = deserialize(yaml)?;
    validate::validate(&raw, base_dir, env)
}

/// Looks a variable up in the process environment (unset or non-UTF-8 → `None`).
pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn deserialize(yaml: &str) -> Result<raw::RawConfig, ConfigErrors> {
    // Check the document's shape first, so that an empty or non-mapping document gets a
    // clear message rather than serde's "invalid type".
    let value: yaml_serde::Value = yaml_serde::from_str(yaml).map_err(|e| {
        // yaml_serde prefixes the key path, if any: `routes[0]: duplicate entry ...`.
        let text = e.to_string();
        match text.split_once(": ") {
            Some((path, rest)) if !path.is_empty() && !path.contains(char::is_whitespace) => {
                ConfigErrors::one(path, format!("invalid YAML: {rest}"))
            }
            _ => ConfigErrors::one("", format!("invalid YAML: {text}")),
        }
    })?;
    match value {
        yaml_serde::Value::Mapping(_) => {}
        yaml_serde::Value::Null => {
            return Err(ConfigErrors::one("", "the configuration document is empty"));
        }
        _ => {
            return Err(ConfigErrors::one(
                "",
                "the configuration document must be a mapping of keys (public_url, listeners, routes, ...)",
            ));
        }
    }
    serde_path_to_error::deserialize(yaml_serde::Deserializer::from_str(yaml))
        .map_err(|e| ConfigErrors(vec![error::structural(e)]))
}
