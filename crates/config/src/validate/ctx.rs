//! The validation context: collects errors and owns the reusable checks (interpolation,
//! required keys, URLs, durations, sizes, files, choices, lists).
//!
//! Every helper returns `None` exactly when it has reported an error, so callers can keep
//! going and report everything in one run. Error messages quote values as written in the
//! document (before interpolation) so that a secret from the environment never appears.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::error::{index, ConfigError};
use crate::interpolate::interpolate;
use crate::model::Secret;
use crate::raw::Str;
use crate::units;

pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) struct Ctx<'a> {
    base_dir: &'a Path,
    env: Env<'a>,
    pub(crate) errors: Vec<ConfigError>,
}

/// Which parts an http(s) URL may have besides scheme and host.
#[derive(Clone, Copy)]
pub(crate) struct UrlRules {
    pub path: bool,
    pub query: bool,
}

/// Whether a duration may be zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    Allowed,
    Rejected,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(base_dir: &'a Path, env: Env<'a>) -> Self {
        Ctx {
            base_dir,
            env,
            errors: Vec::new(),
        }
    }

    pub(crate) fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    /// Reports `message` and yields `None` (for `?`-less early exits).
    pub(crate) fn fail<T>(&mut self, path: &str, message: impl Into<String>) -> Option<T> {
        self.err(path, message);
        None
    }

    /// The value of a required key.
    pub(crate) fn required<'r, T>(&mut self, path: &str, value: &'r Option<T>) -> Option<&'r T> {
        match value {
            Some(v) => Some(v),
            None => self.fail(path, "missing required key"),
        }
    }

    /// The interpolated value of a scalar.
    pub(crate) fn string(&mut self, path: &str, s: &Str) -> Option<String> {
        match interpolate(&s.0, self.env) {
            Ok(v) => Some(v),
            Err(problems) => {
                for p in problems {
                    self.err(path, p.to_string());
                }
                None
            }
        }
    }

    /// The interpolated value, which must not be empty.
    pub(crate) fn non_empty(&mut self, path: &str, s: &Str) -> Option<String> {
        let v = self.string(path, s)?;
        if v.trim().is_empty() {
            return self.fail(path, "must not be empty");
        }
        Some(v)
    }

    /// A required, non-empty string.
    pub(crate) fn required_string(&mut self, path: &str, s: &Option<Str>) -> Option<String> {
        let s = self.required(path, s)?;
        self.non_empty(path, s)
    }

    /// Interpolates and parses a scalar; on failure reports
    /// `invalid <what> "<as written>"<detail>`.
    pub(crate) fn parse<T>(
        &mut self,
        path: &str,
        s: &Str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.string(path, s)?;
        match parse(&value) {
            Ok(v) => Some(v),
            Err(detail) => {
                let interpolated = if value != s.0 {
                    " (after interpolation)"
                } else {
                    ""
                };
                self.fail(
                    path,
                    format!("invalid {what} {:?}{interpolated}{detail}", s.0),
                )
            }
        }
    }

    /// Applies `f` to an optional value: `Some(None)` when absent, `None` on error.
    pub(crate) fn optional<T, R>(
        &mut self,
        value: &Option<T>,
        f: impl FnOnce(&mut Self, &T) -> Option<R>,
    ) -> Option<Option<R>> {
        match value {
            None => Some(None),
            Some(v) => f(self, v).map(Some),
        }
    }

    /// Validates every element (path `parent[i]`); `None` if any failed.
    pub(crate) fn list<T, R>(
        &mut self,
        path: &str,
        items: &[T],
        mut f: impl FnMut(&mut Self, &str, &T) -> Option<R>,
    ) -> Option<Vec<R>> {
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match f(self, &index(path, i), item) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Like [`Ctx::list`], for a required key that must hold at least one element.
    pub(crate) fn non_empty_list<T, R>(
        &mut self,
        path: &str,
        items: &Option<Vec<T>>,
        f: impl FnMut(&mut Self, &str, &T) -> Option<R>,
    ) -> Option<Vec<R>> {
        let items = self.required(path, items)?;
        if items.is_empty() {
            return self.fail(path, "must list at least one entry");
        }
        self.list(path, items, f)
    }

    /// Reports every key seen before (`duplicate <what> "<key>" (also at <first path>)`).
    pub(crate) fn unique<K: Eq + Hash + std::fmt::Debug>(
        &mut self,
        what: &str,
        entries: impl IntoIterator<Item = (String, K)>,
    ) {
        let mut seen: HashMap<K, String> = HashMap::new();
        for (path, key) in entries {
            if let Some(first) = seen.get(&key) {
                let msg = format!("duplicate {what} {key:?} (also at {first})");
                self.err(&path, msg);
            } else {
                seen.insert(key, path);
            }
        }
    }

    /// An optional duration (default when absent).
    pub(crate) fn duration(
        &mut self,
        path: &str,
        value: &Option<Str>,
        default: Duration,
        zero: Zero,
    ) -> Option<Duration> {
        let Some(s) = value else {
            return Some(default);
        };
        let d = self.parse(path, s, "duration", |v| {
            units::parse_duration(v)
                .ok_or_else(|| " (use e.g. 30s, 5m; units are ms, s, m, h, d)".to_owned())
        })?;
        if d.is_zero() && zero == Zero::Rejected {
            return self.fail(path, "must be greater than 0s");
        }
        Some(d)
    }

    /// An optional byte size (default when absent); must be > 0.
    pub(crate) fn size(&mut self, path: &str, value: &Option<Str>, default: u64) -> Option<u64> {
        let Some(s) = value else {
            return Some(default);
        };
        let n = self.parse(path, s, "size", |v| {
            units::parse_size(v).ok_or_else(|| " (use e.g. 65536, 64KiB, 4MiB)".to_owned())
        })?;
        if n == 0 {
            return self.fail(path, "must be greater than 0");
        }
        Some(n)
    }

    /// An optional keyword from `choices` (default when absent).
    pub(crate) fn choice<T: Copy>(
        &mut self,
        path: &str,
        value: &Option<Str>,
        default: T,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let Some(s) = value else {
            return Some(default);
        };
        self.parse(path, s, "value", |v| {
            choices
                .iter()
                .find(|(name, _)| *name == v)
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                    format!(" (expected one of: {})", names.join(", "))
                })
        })
    }

    /// An absolute `http`/`https` URL with a host, without userinfo or fragment.
    pub(crate) fn http_url(&mut self, path: &str, s: &Str, rules: UrlRules) -> Option<Url> {
        self.parse(path, s, "URL", |v| {
            let url = Url::parse(v.trim()).map_err(|e| format!(": {e}"))?;
            let problem = if !matches!(url.scheme(), "http" | "https") {
                Some("scheme must be http or https")
            } else if url.host_str().is_none_or(str::is_empty) {
                Some("missing host")
            } else if !url.username().is_empty() || url.password().is_some() {
                Some("must not contain credentials (user:password@)")
            } else if url.fragment().is_some() {
                Some("must not have a fragment ('#')")
            } else if !rules.query && url.query().is_some() {
                Some("must not have a query ('?')")
            } else if !rules.path && url.path() != "/" {
                Some("must not have a path")
            } else {
                None
            };
            match problem {
                Some(p) => Err(format!(": {p}")),
                None => Ok(url),
            }
        })
    }

    /// A path as written, resolved against the configuration's directory.
    pub(crate) fn file_path(&mut self, path: &str, s: &Str) -> Option<PathBuf> {
        let value = self.non_empty(path, s)?;
        Some(self.base_dir.join(value))
    }

    /// A file that must exist and be readable now (its contents are not read).
    pub(crate) fn readable_file(&mut self, path: &str, s: &Str) -> Option<PathBuf> {
        let file = self.file_path(path, s)?;
        let check = std::fs::File::open(&file).and_then(|f| f.metadata());
        match check {
            Ok(meta) if meta.is_dir() => self.fail(path, cannot_read(&file, "Is a directory")),
            Ok(_) => Some(file),
            Err(e) => self.fail(path, cannot_read(&file, &io_message(&e))),
        }
    }

    /// A secret read from a file (trailing newlines removed); never quoted in errors.
    pub(crate) fn file_secret(&mut self, path: &str, s: &Str) -> Option<Secret> {
        let file = self.file_path(path, s)?;
        match std::fs::read(&file) {
            Err(e) => self.fail(path, cannot_read(&file, &io_message(&e))),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => self.fail(path, cannot_read(&file, "not valid UTF-8")),
                Ok(text) => {
                    let value = text.trim_end_matches(['\r', '\n']);
                    if value.is_empty() {
                        return self.fail(path, format!("file {:?} is empty", file.display()));
                    }
                    Some(Secret::new(value))
                }
            },
        }
    }
}

fn cannot_read(file: &Path, why: &str) -> String {
    format!("cannot read {:?}: {why}", file.display().to_string())
}

/// An I/O error's text without the trailing ` (os error N)`.
fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(pos) if text.ends_with(')') => text[..pos].to_owned(),
        _ => text,
    }
}
