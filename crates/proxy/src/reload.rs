//! Live reload: on SIGHUP, or when the configuration file's content changes (read through any
//! symlinks, so a Kubernetes ConfigMap's `..data` swap is seen), the whole new configuration is
//! loaded, validated and compiled, then swapped into the shared snapshot in one step. A document
//! that fails anywhere is logged with every problem, metered, and changes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcpgate_auth::TokenValidator;
use mcpgate_config::{Config, ConfigError, ConfigErrors};
use sha2::{Digest, Sha256};

use crate::metrics::METRICS;
use crate::snapshot::{SharedSnapshot, Snapshot};

/// How often the file is read for changes. Reading a few KiB each second costs nothing, and
/// comparing content (not mtime) sees every kind of replacement: in place, rename, symlink swap.
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// Added to the longest JWKS fetch timeout of the new or changed issuers: how long a reload
/// waits for their first keys before swapping anyway (their tokens are refused as
/// `keys_unavailable` until the keys arrive, as at start).
const NEW_KEYS_MARGIN: Duration = Duration::from_secs(1);

/// SHA-256 of a configuration file's bytes: what the poll compares and the metrics report.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FileDigest([u8; 32]);

impl FileDigest {
    fn of(bytes: &[u8]) -> FileDigest {
        FileDigest(Sha256::digest(bytes).into())
    }
    /// The first 12 hex digits, as logs show it.
    pub fn short_hex(&self) -> String {
        hex::encode(&self.0[..6])
    }
    /// The first 48 bits as an integer: exact in a Prometheus float, enough to tell documents apart.
    fn as_gauge(&self) -> i64 {
        self.0[..6]
            .iter()
            .fold(0i64, |acc, b| (acc << 8) | i64::from(*b))
    }
}

/// Read and validate the configuration at `path` (relative paths inside resolve against its
/// directory, as `load_file` does), with the digest of exactly the bytes that were parsed.
pub fn load(path: &Path) -> Result<(Config, FileDigest), ConfigErrors> {
    let bytes = read(path)?;
    let digest = FileDigest::of(&bytes);
    Ok((parse(path, bytes)?, digest))
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigErrors> {
    std::fs::read(path).map_err(|e| {
        let message = format!("cannot read {:?}: {e}", path.display().to_string());
        ConfigErrors(vec![ConfigError::new("", message)])
    })
}

fn parse(path: &Path, bytes: Vec<u8>) -> Result<Config, ConfigErrors> {
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigErrors(vec![ConfigError::new(
            "",
            "the configuration file is not UTF-8",
        )])
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    mcpgate_config::parse_str(&text, base_dir, &mcpgate_config::env_lookup)
}

/// Why a reload changed nothing. `reason()` is the metric label and the log's `result`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the new configuration is invalid")]
    Invalid(Vec<String>),
    #[error("the new configuration changes settings that only a restart applies")]
    RestartRequired(Vec<&'static str>),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid",
            Refusal::RestartRequired(_) => "restart_required",
        }
    }

    /// One line for the status page: the problems, or the restart-only keys.
    pub fn summary(&self) -> String {
        match self {
            Refusal::Invalid(problems) => problems.join("; "),
            Refusal::RestartRequired(keys) => format!("needs a restart: {}", keys.join(", ")),
        }
    }
}

/// What starts a reload (logged).
#[derive(Clone, Copy, Debug)]
enum Trigger {
    Signal,
    FileChanged,
}

/// Owns the reload loop. One task runs it, so reloads never overlap.
pub struct Reloader {
    path: PathBuf,
    snapshot: SharedSnapshot,
    /// The configuration the current snapshot was compiled from.
    current: Config,
    /// The file content last loaded or refused: the poll reacts only to something new.
    seen: FileDigest,
    http: reqwest::Client,
    /// The rate-limit budgets' store, kept for the life of the process so budgets survive.
    rate_store: Option<Arc<dyn mcpgate_ratelimit::Store>>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        snapshot: SharedSnapshot,
        current: Config,
        digest: FileDigest,
        http: reqwest::Client,
        rate_store: Option<Arc<dyn mcpgate_ratelimit::Store>>,
    ) -> Reloader {
        record_success(digest);
        *status_lock() = Some(ConfigStatus {
            hash: Some(digest.short_hex()),
            loaded_at: SystemTime::now(),
            last_attempt: None,
        });
        // Every result present from the start, so a first refusal is a visible increase.
        for result in ["success", "invalid", "restart_required"] {
            METRICS.config_reloads.with_label_values(&[result]);
        }
        Reloader {
            path,
            snapshot,
            current,
            seen: digest,
            http,
            rate_store,
        }
    }

    /// Reload on every SIGHUP and every content change, until the process ends.
    pub async fn run(mut self, mut hangup: tokio::signal::unix::Signal) {
        let mut poll = tokio::time::interval(FILE_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = hangup.recv() => Trigger::Signal,
                _ = poll.tick() => {
                    if !self.file_changed() {
                        continue;
                    }
                    Trigger::FileChanged
                }
            };
            self.reload(trigger).await;
        }
    }

    /// True when the file now holds bytes other than the last ones loaded. An unreadable file
    /// (mid-replacement, or gone) is not a change: the running configuration stays.
    fn file_changed(&self) -> bool {
        std::fs::read(&self.path).is_ok_and(|bytes| FileDigest::of(&bytes) != self.seen)
    }

    async fn reload(&mut self, trigger: Trigger) {
        // The counter moves last: whoever sees a reload counted (a scrape, a test) also finds
        // its log lines and its status-page entry already written.
        match self.try_reload().await {
            Ok((digest, renewed)) => {
                record_success(digest);
                record_attempt(Ok(digest));
                tracing::info!(
                    ?trigger,
                    config_hash = %digest.short_hex(),
                    routes = self.current.routes.len(),
                    renewed_issuers = ?renewed,
                    "configuration reloaded"
                );
                METRICS.config_reloads.with_label_values(&["success"]).inc();
            }
            Err(refusal) => {
                log_refusal(trigger, &refusal);
                record_attempt(Err(refusal.summary()));
                METRICS
                    .config_reloads
                    .with_label_values(&[refusal.reason()])
                    .inc();
            }
        }
    }

    /// Load, validate, compile, then swap. Returns the new digest and the issuers that start
    /// afresh (new or changed); on refusal nothing outside `self.seen` has changed.
    async fn try_reload(&mut self) -> Result<(FileDigest, Vec<String>), Refusal> {
        let invalid = |errors: ConfigErrors| {
            Refusal::Invalid(errors.0.iter().map(ToString::to_string).collect())
        };
        let bytes = read(&self.path).map_err(invalid)?;
        // Remembered even if refused: the poll waits for the next edit instead of refusing the
        // same document every second.
        let digest = FileDigest::of(&bytes);
        self.seen = digest;
        let config = parse(&self.path, bytes).map_err(invalid)?;
        let fixed = mcpgate_config::restart_required(&self.current, &config);
        if !fixed.is_empty() {
            return Err(Refusal::RestartRequired(fixed));
        }
        let old = self.snapshot.load_full();
        let validator =
            TokenValidator::reuse_from(&old.validator, &config.issuers, self.http.clone());
        let renewed = validator.renewed_since(&old.validator);
        let snapshot = Snapshot::compile(&config, validator)
            .map_err(|e| Refusal::Invalid(vec![e.to_string()]))?
            .with_rate_limits(&config, self.rate_store.clone());
        resolve_upstreams(&snapshot, &old).await;
        wait_for_new_keys(&snapshot, &config, &renewed).await;
        crate::server::limit_request_heads(&config);
        // In-flight requests and open streams hold the snapshot they loaded; new ones get this.
        self.snapshot.store(Arc::new(snapshot));
        self.current = config;
        Ok((digest, renewed))
    }
}

/// Start the key refresh of new or changed issuers and give their first fetch a chance to
/// land before the swap, so their tokens are not refused in the meantime.
async fn wait_for_new_keys(snapshot: &Snapshot, config: &Config, renewed: &[String]) {
    snapshot.validator.start_background();
    let first_fetch = config
        .issuers
        .iter()
        .filter(|i| i.jwks.is_some() && renewed.contains(&i.name))
        .map(|i| i.jwks_refresh.timeout + NEW_KEYS_MARGIN)
        .max();
    let Some(wait) = first_fetch else { return };
    if !snapshot.validator.wait_ready(wait).await {
        tracing::warn!(issuers = ?renewed, "reloading before every new issuer's keys arrived");
    }
}

/// Give every upstream of `new` its addresses before it serves: those `old` already resolved for
/// the same host, else a lookup now (a failure is logged and the background loop keeps trying,
/// as at start).
async fn resolve_upstreams(new: &Snapshot, old: &Snapshot) {
    for upstream in new.upstreams().filter(|u| u.needs_dns()) {
        for known in old.upstreams() {
            upstream.adopt_addresses(known);
        }
        if upstream.has_addresses() {
            continue;
        }
        if let Err(e) = upstream.resolve().await {
            tracing::warn!(host = %upstream.host, error = %e, "upstream DNS resolution failed; retrying in the background");
        }
    }
}

fn log_refusal(trigger: Trigger, refusal: &Refusal) {
    let result = refusal.reason();
    match refusal {
        Refusal::Invalid(problems) => {
            for problem in problems {
                tracing::error!(?trigger, result, %problem, "configuration reload refused");
            }
        }
        Refusal::RestartRequired(keys) => tracing::error!(
            ?trigger,
            result,
            ?keys,
            "configuration reload refused: these keys change only with a restart; nothing was applied"
        ),
    }
}

/// The configuration in use and the last reload attempt, for the status page.
#[derive(Clone)]
pub struct ConfigStatus {
    /// Short hash of the file in use (`None`: not from a file, as in `demo`).
    pub hash: Option<String>,
    pub loaded_at: SystemTime,
    /// When the last reload was tried and its outcome (the problems when refused).
    pub last_attempt: Option<(SystemTime, Result<(), String>)>,
}

static STATUS: std::sync::Mutex<Option<ConfigStatus>> = std::sync::Mutex::new(None);

fn status_lock() -> std::sync::MutexGuard<'static, Option<ConfigStatus>> {
    STATUS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The configuration status; before any file was loaded, the process start.
pub fn config_status(started: SystemTime) -> ConfigStatus {
    status_lock().clone().unwrap_or(ConfigStatus {
        hash: None,
        loaded_at: started,
        last_attempt: None,
    })
}

fn record_attempt(outcome: Result<FileDigest, String>) {
    let now = SystemTime::now();
    let mut status = status_lock();
    let previous = status.take();
    *status = Some(match outcome {
        Ok(digest) => ConfigStatus {
            hash: Some(digest.short_hex()),
            loaded_at: now,
            last_attempt: Some((now, Ok(()))),
        },
        Err(problems) => ConfigStatus {
            last_attempt: Some((now, Err(problems))),
            ..previous.unwrap_or(ConfigStatus {
                hash: None,
                loaded_at: now,
                last_attempt: None,
            })
        },
    });
}

fn record_success(digest: FileDigest) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    METRICS.config_last_success.set(now);
    METRICS.config_hash.set(digest.as_gauge());
}
