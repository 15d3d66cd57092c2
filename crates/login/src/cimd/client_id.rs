//! Which strings may name a metadata-document client: an https URL with a path
//! (draft-ietf-oauth-client-id-metadata-document §3), in the one canonical spelling that is both
//! fetched and compared.

use url::Url;

use super::{reason, CimdError};

/// Longest `client_id` accepted: a URL, not a payload (it is a cache key and is logged).
pub const MAX_CLIENT_ID: usize = 2048;

/// `client_id` as the URL to fetch, or why it cannot name a metadata document.
///
/// The draft compares client identifiers as plain strings (RFC 3986 §6.2.1), and the document
/// must name itself with the exact URL it was fetched from. A URL parser normalises (`/a/../b`,
/// `HTTPS://Example.COM:443/x`), so the string is accepted only when it is already in the
/// canonical form the parser writes: what is fetched, compared and shown is then one string.
pub fn parse_client_id(client_id: &str) -> Result<Url, CimdError> {
    if client_id.len() > MAX_CLIENT_ID {
        return Err(invalid(format!("longer than {MAX_CLIENT_ID} bytes")));
    }
    let url = Url::parse(client_id).map_err(|e| invalid(format!("not an absolute URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(invalid("must be an https URL".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry a user name or password".into()));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a fragment".into()));
    }
    if has_dot_segment(client_id) {
        return Err(invalid("must not contain `.` or `..` path segments".into()));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(invalid(
            "needs a path: a bare origin cannot name a client".into(),
        ));
    }
    if url.as_str() != client_id {
        return Err(invalid(format!(
            "not in canonical form (it would be fetched as {:?})",
            url.as_str()
        )));
    }
    Ok(url)
}

/// True when the raw path of `raw` (an absolute URL) has a `.` or `..` segment, percent-encoded
/// or not: URL parsers resolve those away, so they are looked for before parsing (§3).
fn has_dot_segment(raw: &str) -> bool {
    let Some((_, rest)) = raw.split_once("://") else {
        return false;
    };
    let Some(start) = rest.find(['/', '\\', '?', '#']) else {
        return false;
    };
    let path = &rest[start..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split(['/', '\\']).any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    })
}

fn invalid(detail: String) -> CimdError {
    CimdError {
        reason: reason::CLIENT_ID_INVALID,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(id: &str) -> String {
        match parse_client_id(id) {
            Ok(u) => panic!("{id} accepted as {u}"),
            Err(e) => {
                assert_eq!(e.reason, reason::CLIENT_ID_INVALID, "{id}");
                e.detail
            }
        }
    }

    #[test]
    fn https_urls_with_a_path_are_accepted() {
        for id in [
            "https://app.example.com/oauth/client.json",
            "https://app.example.com/c",
            "https://app.example.com:8443/client",
            "https://app.example.com/client?v=2",
            "https://127.0.0.1:9000/client",
            "https://[2001:db8::1]/client",
        ] {
            let url = parse_client_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(url.as_str(), id);
        }
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(refused("http://app.example.com/client").contains("https"));
        refused("ftp://app.example.com/client");
        refused("file:///etc/passwd");
        refused("javascript:alert(1)");
        refused("app.example.com/client");
        refused("");
    }

    #[test]
    fn a_bare_origin_is_refused() {
        assert!(refused("https://app.example.com").contains("path"));
        assert!(refused("https://app.example.com/").contains("path"));
        refused("https://app.example.com/?x=1");
    }

    #[test]
    fn fragments_and_userinfo_are_refused() {
        assert!(refused("https://app.example.com/client#x").contains("fragment"));
        refused("https://app.example.com/client#");
        assert!(refused("https://user@app.example.com/client").contains("user"));
        refused("https://user:pw@app.example.com/client");
        refused("https://:pw@app.example.com/client");
    }

    #[test]
    fn dot_segments_are_refused_even_encoded() {
        for id in [
            "https://app.example.com/a/../client",
            "https://app.example.com/./client",
            "https://app.example.com/client/.",
            "https://app.example.com/client/..",
            "https://app.example.com/a/%2e%2e/client",
            "https://app.example.com/a/%2E/client",
            "https://app.example.com/a/.%2e/client",
            "https://app.example.com/a\\..\\client",
        ] {
            assert!(refused(id).contains("segment"), "{id}");
        }
        // Dots inside a segment are just characters.
        assert!(parse_client_id("https://app.example.com/.well-known/client").is_ok());
        assert!(parse_client_id("https://app.example.com/a..b").is_ok());
    }

    #[test]
    fn non_canonical_spellings_are_refused() {
        for id in [
            "https://App.Example.com/client",
            "https://app.example.com:443/client",
            "HTTPS://app.example.com/client",
            " https://app.example.com/client",
            "https://app.example.com/cli\tent",
            "https://0x7f.1/client",
            "https://2130706433/client",
            "https://app.example.com/a b",
        ] {
            refused(id);
        }
    }

    #[test]
    fn an_overlong_client_id_is_refused() {
        let id = format!("https://app.example.com/{}", "a".repeat(MAX_CLIENT_ID));
        assert!(refused(&id).contains("longer"));
    }
}
