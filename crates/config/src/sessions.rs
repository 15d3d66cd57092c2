//! The `sessions` section: where the gateway keeps who owns which MCP session — in this process's
//! memory, sealed into the session id itself (a key ring), or in Redis — as written, validated
//! and modelled.

use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::Deserialize;

use crate::error::key;
use crate::model::Secret;
use crate::raw::Str;
use crate::validate::{Ctx, Zero};

/// The `sessions` key as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSessions {
    pub mode: Option<Str>,
    pub keys: Option<Vec<Str>>,
    pub keys_file: Option<Str>,
    pub max_age: Option<Str>,
    pub redis: Option<Str>,
}

/// Where session bindings live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Sessions {
    /// This process's memory: one instance only; lost on restart.
    #[default]
    Memory,
    /// Sealed into the id the client sees (AES-256-GCM); any replica with the ring opens it.
    Sealed {
        /// At least one; the first seals, all open.
        keys: Vec<SessionKey>,
        /// A sealed id older than this is refused.
        max_age: Duration,
    },
    /// A Redis shared by the replicas (the URL may carry a password).
    Redis { url: Secret },
}

/// A 256-bit session sealing key. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key's bytes; call only where it is handed to the cipher.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(***)")
    }
}

/// A day: long enough for a working session, short enough that a leaked id dies.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

const PATH: &str = "sessions";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Memory,
    Sealed,
    Redis,
}

pub(crate) fn sessions(cx: &mut Ctx, raw: &RawSessions) -> Option<Sessions> {
    let p = |k: &str| key(PATH, k);
    let has_keys = raw.keys.is_some() || raw.keys_file.is_some();
    // Without `mode`, what is configured says which: keys seal, a Redis URL stores.
    let implied = match (has_keys, raw.redis.is_some()) {
        (true, true) if raw.mode.is_none() => {
            return cx.fail(PATH, "set `mode`: both keys and `redis` are given")
        }
        (true, _) => Mode::Sealed,
        (false, true) => Mode::Redis,
        (false, false) => Mode::Memory,
    };
    let mode = cx.choice(
        &p("mode"),
        &raw.mode,
        implied,
        &[
            ("memory", Mode::Memory),
            ("sealed", Mode::Sealed),
            ("redis", Mode::Redis),
        ],
    )?;
    unused_for(cx, mode, raw)?;
    match mode {
        Mode::Memory => Some(Sessions::Memory),
        Mode::Sealed => {
            let keys = ring(cx, raw);
            let max_age = cx.duration(&p("max_age"), &raw.max_age, DEFAULT_MAX_AGE, Zero::Rejected);
            Some(Sessions::Sealed {
                keys: keys?,
                max_age: max_age?,
            })
        }
        Mode::Redis => {
            let s = cx.required(&p("redis"), &raw.redis)?;
            redis_url(cx, &p("redis"), s).map(|url| Sessions::Redis { url })
        }
    }
}

/// A key that the chosen mode would silently ignore is an error: no dead configuration.
fn unused_for(cx: &mut Ctx, mode: Mode, raw: &RawSessions) -> Option<()> {
    let sealed_only = [
        ("keys", raw.keys.is_some()),
        ("keys_file", raw.keys_file.is_some()),
        ("max_age", raw.max_age.is_some()),
    ];
    let mut ok = true;
    for (name, set) in sealed_only {
        if set && mode != Mode::Sealed {
            cx.err(&key(PATH, name), "only used with `mode: sealed`");
            ok = false;
        }
    }
    if raw.redis.is_some() && mode != Mode::Redis {
        cx.err(&key(PATH, "redis"), "only used with `mode: redis`");
        ok = false;
    }
    ok.then_some(())
}

/// The key ring from `keys` or `keys_file` (exactly one of them, at least one key).
fn ring(cx: &mut Ctx, raw: &RawSessions) -> Option<Vec<SessionKey>> {
    let keys = match (&raw.keys, &raw.keys_file) {
        (Some(_), Some(_)) => {
            return cx.fail(PATH, "set either `keys` or `keys_file`, not both");
        }
        (None, None) => {
            return cx.fail(
                &key(PATH, "keys"),
                "`mode: sealed` needs `keys` or `keys_file`",
            )
        }
        (Some(list), None) => {
            let path = key(PATH, "keys");
            cx.list(&path, list, |cx, path, s| {
                let text = Secret::new(cx.non_empty(path, s)?);
                match decode_key(text.expose()) {
                    Ok(k) => Some(k),
                    Err(why) => cx.fail(path, why),
                }
            })?
        }
        (None, Some(file)) => keys_file(cx, &key(PATH, "keys_file"), file)?,
    };
    if keys.is_empty() {
        return cx.fail(&key(PATH, "keys"), "must list at least one key");
    }
    Some(keys)
}

/// One key per line; blank lines and `#` comments skipped. Errors name the line, never its text.
fn keys_file(cx: &mut Ctx, path: &str, s: &Str) -> Option<Vec<SessionKey>> {
    let text = cx.file_secret(path, s)?;
    let mut keys = Vec::new();
    let mut ok = true;
    for (n, line) in text.expose().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match decode_key(line) {
            Ok(k) => keys.push(k),
            Err(why) => {
                cx.err(path, format!("line {}: {why}", n + 1));
                ok = false;
            }
        }
    }
    if ok && keys.is_empty() {
        return cx.fail(path, "the file holds no key");
    }
    ok.then_some(keys)
}

/// Base64 (standard or URL-safe alphabet, padded or not) of exactly 32 bytes.
fn decode_key(text: &str) -> Result<SessionKey, String> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let text = text.trim();
    let bytes = GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(text))
        .map_err(|_| "not base64 (generate a key with `openssl rand -base64 32`)".to_owned())?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("a key is 32 bytes, this one is {}", b.len()))?;
    Ok(SessionKey(key))
}

/// `redis://host…` or `rediss://host…` (the rule `mcpgate_store::check_url` applies at start).
/// The URL may hold a password: errors never quote it.
fn redis_url(cx: &mut Ctx, path: &str, s: &Str) -> Option<Secret> {
    let value = cx.non_empty(path, s)?;
    let problem = match url::Url::parse(value.trim()) {
        Err(e) => Some(format!("not a URL (expected redis://host:port/db): {e}")),
        Ok(u) if !matches!(u.scheme(), "redis" | "rediss") => {
            Some("scheme must be redis:// or rediss://".to_owned())
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("missing host".to_owned()),
        Ok(_) => None,
    };
    match problem {
        Some(p) => cx.fail(path, p),
        None => Some(Secret::new(value.trim())),
    }
}
