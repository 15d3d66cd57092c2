//! Request-path normalisation, done once before routing.
//!
//! The raw request target is split from its query, percent-decoded exactly once, checked for
//! characters that let a path mean different things to different parsers, and reduced with
//! RFC 3986 dot-segment removal. The result is what routing sees *and* what the upstream receives
//! (re-encoded), so a path can never match one route here and another one upstream.

use std::fmt;

/// A request path after normalisation, plus its untouched query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// Decoded, dot-segment-free, no empty segments; always starts with `/`.
    pub path: String,
    /// The raw query (without `?`), passed through as received.
    pub query: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not an origin-form target (`/...`).
    NotOriginForm,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// An encoded `/`, `\`, `%`, NUL or control character, or a decoded byte sequence that is not UTF-8.
    ForbiddenEncoding,
    /// A raw `\`, `;`, control character or whitespace.
    ForbiddenCharacter,
    /// `..` climbing above the root.
    EscapesRoot,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotOriginForm => "request target must be an absolute path",
            PathError::BadPercentEncoding => "malformed percent-encoding in path",
            PathError::ForbiddenEncoding => "path contains a forbidden percent-encoded character",
            PathError::ForbiddenCharacter => "path contains a forbidden character",
            PathError::EscapesRoot => "path escapes the root",
        })
    }
}

impl std::error::Error for PathError {}

/// Normalise a raw request target (`/a/b?x=1`). See the module docs for the rules.
pub fn normalize_path(raw: &str) -> Result<NormalizedPath, PathError> {
    let (raw_path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (raw, None),
    };
    let raw_path = raw_path.split('#').next().unwrap_or_default();
    if !raw_path.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    let decoded = percent_decode(raw_path)?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::EscapesRoot);
                }
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    // A trailing slash is part of the resource name below a route (`/messages/` is not
    // `/messages` to many servers); `routing` ignores one on the route path itself.
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    if path.is_empty() || trailing {
        path.push('/');
    }
    Ok(NormalizedPath { path, query })
}

fn percent_decode(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| hex_value(*c));
            let lo = bytes.get(i + 2).and_then(|c| hex_value(*c));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadPercentEncoding);
            };
            let decoded = hi << 4 | lo;
            if matches!(decoded, b'/' | b'\\' | b'%' | b';') || decoded < 0x20 || decoded == 0x7f {
                return Err(PathError::ForbiddenEncoding);
            }
            out.push(decoded);
            i += 3;
        } else {
            if b == b'\\' || b == b';' || b <= 0x20 || b == 0x7f {
                return Err(PathError::ForbiddenCharacter);
            }
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::ForbiddenEncoding)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode a normalised path for the wire: everything outside RFC 3986 `pchar` and `/`.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize_path(p).map(|n| n.path)
    }

    #[test]
    fn plain_paths_are_unchanged() {
        assert_eq!(norm("/github/mcp").unwrap(), "/github/mcp");
        assert_eq!(norm("/").unwrap(), "/");
    }

    #[test]
    fn query_is_kept_apart() {
        let n = normalize_path("/a/messages?sessionId=x%2Fy").unwrap();
        assert_eq!(n.path, "/a/messages");
        assert_eq!(n.query.as_deref(), Some("sessionId=x%2Fy"));
    }

    #[test]
    fn dot_segments_are_resolved() {
        assert_eq!(norm("/github/mcp/../admin").unwrap(), "/github/admin");
        assert_eq!(norm("/github/./mcp").unwrap(), "/github/mcp");
        // RFC 3986 §5.2.4: a final `..` leaves a trailing slash (the routing ignores it on a
        // route's own path, see `routing`).
        assert_eq!(norm("/github/mcp/..").unwrap(), "/github/");
    }

    #[test]
    fn encoded_dots_are_decoded_before_resolution() {
        assert_eq!(norm("/github/mcp/%2e%2e/admin").unwrap(), "/github/admin");
        assert_eq!(norm("/github/mcp/%2E%2e/%2e/x").unwrap(), "/github/x");
        assert_eq!(norm("/github/mcp/.%2e/admin").unwrap(), "/github/admin");
    }

    #[test]
    fn empty_segments_collapse() {
        assert_eq!(norm("//github//mcp").unwrap(), "/github/mcp");
        assert_eq!(norm("///").unwrap(), "/");
    }

    #[test]
    fn a_trailing_slash_is_kept() {
        assert_eq!(norm("//github//mcp/").unwrap(), "/github/mcp/");
        assert_eq!(norm("/legacy/messages/").unwrap(), "/legacy/messages/");
        assert_eq!(norm("/a/b/.").unwrap(), "/a/b/");
    }

    #[test]
    fn climbing_above_root_is_refused() {
        assert_eq!(norm("/.."), Err(PathError::EscapesRoot));
        assert_eq!(norm("/a/../../b"), Err(PathError::EscapesRoot));
        assert_eq!(norm("/%2e%2e/etc"), Err(PathError::EscapesRoot));
    }

    #[test]
    fn smuggling_characters_are_refused() {
        assert_eq!(
            norm("/github/mcp;/../admin"),
            Err(PathError::ForbiddenCharacter)
        );
        assert_eq!(norm("/github/mcp%3b/x"), Err(PathError::ForbiddenEncoding));
        assert_eq!(norm("/github%2fmcp"), Err(PathError::ForbiddenEncoding));
        assert_eq!(norm("/github%5cmcp"), Err(PathError::ForbiddenEncoding));
        assert_eq!(norm("/github\\mcp"), Err(PathError::ForbiddenCharacter));
        assert_eq!(norm("/a%00b"), Err(PathError::ForbiddenEncoding));
        assert_eq!(norm("/a%252e%252e"), Err(PathError::ForbiddenEncoding));
        assert_eq!(norm("/a b"), Err(PathError::ForbiddenCharacter));
        assert_eq!(norm("/a%zz"), Err(PathError::BadPercentEncoding));
        assert_eq!(norm("/a%2"), Err(PathError::BadPercentEncoding));
        assert_eq!(norm("/a%c3%28"), Err(PathError::ForbiddenEncoding));
    }

    #[test]
    fn absolute_form_and_garbage_are_refused() {
        assert_eq!(norm("http://evil/x"), Err(PathError::NotOriginForm));
        assert_eq!(norm("*"), Err(PathError::NotOriginForm));
        assert_eq!(norm(""), Err(PathError::NotOriginForm));
    }

    #[test]
    fn unicode_survives_round_trip() {
        let n = norm("/caf%C3%A9").unwrap();
        assert_eq!(n, "/café");
        assert_eq!(encode_path(&n), "/caf%C3%A9");
    }

    #[test]
    fn encoding_keeps_pchars() {
        assert_eq!(encode_path("/a:b@c/d-e_f~g"), "/a:b@c/d-e_f~g");
        assert_eq!(encode_path("/a\"b<c>"), "/a%22b%3Cc%3E");
    }
}
