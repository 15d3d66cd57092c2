//! Resource URIs as the upstream will act on them. MCP SDK servers parse `params.uri` as a WHATWG
//! URL (the Python SDK through pydantic, the TypeScript SDK through `new URL`): scheme case, dot
//! segments (also `%2e`), `file:/x` and `file://localhost/x`, backslashes and embedded tabs or
//! newlines all collapse. Rules are judged against that same form, with percent-encoded
//! unreserved characters decoded (RFC 3986 §6.2.2.2), so no spelling of a denied URI slips past.
//! What stays ambiguous after that — an encoded `/`, `\`, `%` or NUL that a server may decode
//! into structure — is refused rather than guessed.

use std::borrow::Cow;

/// A URI that cannot be judged unambiguously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous;

/// The form rules are matched against, or [`Ambiguous`].
pub fn canonical_resource_uri(raw: &str) -> Result<String, Ambiguous> {
    let parsed = url::Url::parse(raw).map_err(|_| Ambiguous)?;
    let decoded = decode_unreserved(parsed.as_str())?;
    // Decoding may form new dot segments (`.%2e` spelled otherwise): settle them, and refuse
    // anything that still moves on a second look.
    let settled = url::Url::parse(&decoded).map_err(|_| Ambiguous)?;
    if settled.as_str() != decoded {
        return Err(Ambiguous);
    }
    Ok(decoded.into_owned())
}

/// A rule pattern in the same form, where it parses as a URL (`*` passes through unchanged);
/// otherwise as written.
pub fn canonical_pattern(pattern: &str) -> String {
    canonical_resource_uri(pattern).unwrap_or_else(|_| pattern.to_owned())
}

/// Decode `%XX` of unreserved characters; refuse encodings a server could turn into structure.
fn decode_unreserved(s: &str) -> Result<Cow<'_, str>, Ambiguous> {
    if !s.contains('%') {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let next = s[i..].chars().next().ok_or(Ambiguous)?;
            out.push(next);
            i += next.len_utf8();
            continue;
        }
        let hex = s.get(i + 1..i + 3).ok_or(Ambiguous)?;
        let byte = u8::from_str_radix(hex, 16).map_err(|_| Ambiguous)?;
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b'/' | b'\\' | b'%' | 0 => return Err(Ambiguous),
            _ => out.push_str(&s[i..i + 3]),
        }
        i += 3;
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_uri_comes_to_one_form() {
        let want = "file:///secret/keys";
        for spelling in [
            "file:///secret/keys",
            "FILE:///secret/keys",
            "file:///public/../secret/keys",
            "file:///public/%2e%2e/secret/keys",
            "file:///public/.%2E/secret/keys",
            "file:///./secret/./keys",
            "file:/secret/keys",
            "file://localhost/secret/keys",
            "file:///public\\..\\secret\\keys",
            "  file:///secret/keys  ",
            "file:///sec\tret/ke\nys",
            "file:///%73ecret/%6Beys",
            "file:///public/%2e%2E/%73ecret/keys",
        ] {
            assert_eq!(
                canonical_resource_uri(spelling).as_deref(),
                Ok(want),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn what_a_server_might_decode_into_structure_is_ambiguous() {
        for spelling in [
            "file:///public%2F..%2Fsecret/keys",
            "file:///public/..%5Csecret/keys",
            "file:///secret%252Fkeys",
            "file:///secret%00/keys",
            "file:///secret/%zz",
            "file:///secret/%4",
            "no scheme at all",
            "",
        ] {
            assert_eq!(
                canonical_resource_uri(spelling),
                Err(Ambiguous),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn other_schemes_and_encodings_keep_their_meaning() {
        assert_eq!(
            canonical_resource_uri("db://Prod/Users?id=1").as_deref(),
            Ok("db://Prod/Users?id=1")
        );
        assert_eq!(
            canonical_resource_uri("file:///caf%C3%A9/menu").as_deref(),
            Ok("file:///caf%C3%A9/menu")
        );
        assert_eq!(
            canonical_resource_uri("HTTPS://Example.COM:443/a/../b").as_deref(),
            Ok("https://example.com/b")
        );
        assert_eq!(canonical_pattern("FILE:///secret/*"), "file:///secret/*");
        assert_eq!(canonical_pattern("notes-*"), "notes-*");
    }
}
