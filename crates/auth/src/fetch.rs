//! Bounded HTTP to the IdP: every call has a timeout and a response-size cap, never follows
//! redirects (the client is built that way) and parses JSON strictly.

use std::time::Duration;

use serde_json::{Map, Value};

/// Largest JWKS or discovery document accepted.
pub(crate) const MAX_DOCUMENT: usize = 512 * 1024;
/// Largest introspection answer accepted.
pub(crate) const MAX_INTROSPECTION: usize = 64 * 1024;

/// A JSON object fetched from the IdP, with its `Cache-Control: max-age` if any.
pub(crate) struct Fetched {
    pub body: Map<String, Value>,
    pub max_age: Option<Duration>,
}

/// Read at most `cap` bytes of `resp`, failing (not truncating) beyond it.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(format!("response larger than {cap} bytes"));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading response: {e}"))?
    {
        if buf.len() + chunk.len() > cap {
            return Err(format!("response larger than {cap} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Send `req`, require 200, and parse the body as one strict JSON object.
pub(crate) async fn json_object(
    req: reqwest::RequestBuilder,
    timeout: Duration,
    cap: usize,
) -> Result<Fetched, String> {
    let work = async {
        let resp = req
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {}", without_url(&e)))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("unexpected status {status}"));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let bytes = read_capped(resp, cap).await?;
        let limits = mcpgate_json::Limits {
            max_depth: 32,
            max_bytes: cap,
        };
        let body = mcpgate_json::parse_object(&bytes, limits).map_err(|e| e.to_string())?;
        Ok(Fetched { body, max_age })
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
}

/// reqwest errors print the whole URL (query included, where a misconfigured secret could sit);
/// callers that may name the endpoint prefix [`printable_url`] instead. Add the underlying cause:
/// reqwest's own text stops at "error sending request".
pub fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(&format!(" for url ({url})"), "");
        s = s.replace(url.as_str(), "<url>");
    }
    match root_cause(e) {
        Some(cause) if e.is_connect() => format!("connect error: {cause}"),
        Some(cause) => format!("{s}: {cause}"),
        None => s,
    }
}

/// The innermost error (`Connection refused`, `invalid peer certificate: …`).
fn root_cause<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e (dyn std::error::Error + 'static)> {
    let mut cause = e.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause)
}

/// Scheme, host, port and path only: what an operator needs to find the endpoint in a log.
pub fn printable_url(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// `max-age` from a `Cache-Control` value; `no-cache`/`no-store` read as zero.
pub(crate) fn parse_max_age(value: &str) -> Option<Duration> {
    let mut found = None;
    for directive in value.split(',') {
        let d = directive.trim();
        let lower = d.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            found = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_urls_keep_the_endpoint_and_drop_what_may_be_secret() {
        let u = url::Url::parse("https://user:pw@idp.example.com:8443/jwks?key=s3cret#x").unwrap();
        assert_eq!(printable_url(&u), "https://idp.example.com:8443/jwks");
    }

    #[tokio::test]
    async fn a_failed_fetch_says_why_and_never_prints_the_query() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/jwks?token=s3cret");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let req = reqwest::Client::new().get(&url);
        let Err(e) = json_object(req, Duration::from_secs(5), MAX_DOCUMENT).await else {
            panic!("nothing listens there");
        };
        assert!(e.to_lowercase().contains("refused"), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("<url>"), "{e}");
    }

    #[test]
    fn cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_max_age("Max-Age=\"60\""),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("max-age=300, no-cache"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}
