//! Configuration errors: each names the key path it is about (`routes[1].upstream.url`).

use std::fmt;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// Key path such as `routes[1].upstream.url`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one load (at least one).
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError::new(path, message)])
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `parent.key`, or `key` at the top level.
pub(crate) fn key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A structural (serde) error, with serde_path_to_error's path in our `a[0].b` style.
pub(crate) fn structural(err: serde_path_to_error::Error<yaml_serde::Error>) -> ConfigError {
    use serde_path_to_error::Segment;
    let mut path = String::new();
    for segment in err.path().iter() {
        path = match segment {
            Segment::Seq { index: i } => index(&path, *i),
            Segment::Map { key: k } | Segment::Enum { variant: k } => key(&path, k),
            Segment::Unknown => key(&path, "?"),
        };
    }
    // yaml_serde prefixes its own (parent) path, e.g. `routes[0].upstream: unknown field ...`.
    let message = err.inner().to_string();
    let message = match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.is_empty() && path.starts_with(prefix) => rest.to_owned(),
        _ => message,
    };
    ConfigError::new(path, message)
}
