//! Bounded HTTP to the upstream IdP: one client per provider (never follows redirects, trusts
//! the configured extra CA), a timeout on every call, a cap on every answer, strict JSON, and
//! error texts that never carry a URL's query, a code or a token.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mcpgate_auth::{printable_url as printable, transport_error};
use mcpgate_config::UpstreamIdp;
use serde_json::{Map, Value};
use url::Url;

/// Largest discovery document, JWKS, token or userinfo answer accepted.
pub(crate) const MAX_RESPONSE: usize = 256 * 1024;

/// The HTTP client for one provider: rustls on ring, system roots plus `ca_file`.
pub(crate) fn client(config: &UpstreamIdp) -> Result<reqwest::Client, String> {
    // reqwest is built without a crypto provider; ring is the process's one provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        // A redirect could carry the client secret or a code elsewhere: refuse all.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.timeout)
        .timeout(config.timeout)
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no PEM certificate", path.display()));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| e.to_string())
}

/// What a token endpoint answered.
pub(crate) enum TokenAnswer {
    Issued(Map<String, Value>),
    /// An OAuth error answer (RFC 6749 §5.2): its `error` code, sanitized.
    Refused(String),
}

/// `GET url` (with a bearer token, for userinfo), require 200 and a JSON object.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &Url,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<Map<String, Value>, String> {
    let mut req = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let (status, body) = send(req, timeout).await?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{} answered {status}", printable(url)));
    }
    json_object(&body).map_err(|e| format!("{}: {e}", printable(url)))
}

/// `POST` a form to a token endpoint, with `client_secret_basic` when `basic` is given.
/// 200 with JSON: issued; 400/401 with an OAuth error body: refused; anything else: an error
/// (the IdP is unavailable or broken).
pub(crate) async fn post_token(
    http: &reqwest::Client,
    url: &Url,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<TokenAnswer, String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = http
        .post(url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    if let Some((id, secret)) = basic {
        req = req.header(reqwest::header::AUTHORIZATION, basic_auth(id, secret));
    }
    let (status, body) = send(req, timeout).await?;
    let parsed = json_object(&body);
    match status.as_u16() {
        200 => parsed
            .map(TokenAnswer::Issued)
            .map_err(|e| format!("{}: {e}", printable(url))),
        400 | 401 => match parsed.ok().as_ref().and_then(|m| m.get("error")) {
            Some(Value::String(code)) => Ok(TokenAnswer::Refused(error_code(code))),
            _ => Err(format!(
                "{} answered {status} without an OAuth error",
                printable(url)
            )),
        },
        _ => Err(format!("{} answered {status}", printable(url))),
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64'd
/// (a secret with `:` or non-ASCII otherwise breaks at strict IdPs).
pub(crate) fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// An IdP's `error` value as safe to log: RFC 6749 §5.2's character set, at most 64 characters.
fn error_code(code: &str) -> String {
    code.chars()
        .filter(|c| matches!(c, '\x20'..='\x7e') && *c != '"' && *c != '\\')
        .take(64)
        .collect()
}

async fn send(
    req: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let work = async {
        let resp = req.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status();
        let body = read_capped(resp, MAX_RESPONSE).await?;
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
}

/// Reads at most `cap` bytes, failing (not truncating) beyond it.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(format!("answer larger than {cap} bytes"));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&e))? {
        if buf.len() + chunk.len() > cap {
            return Err(format!("answer larger than {cap} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("answer is not a JSON object".into()),
        Err(e) => Err(format!("answer is not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        // RFC 6749 §2.3.1 example-style: ':' and ' ' in a secret survive the round trip.
        let h = basic_auth("my client", "s3:cr et");
        let decoded = STANDARD.decode(h.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client:s3%3Acr+et");
    }

    #[test]
    fn idp_error_codes_are_sanitized() {
        assert_eq!(error_code("invalid_grant"), "invalid_grant");
        assert_eq!(error_code("bad\n\"code\"\u{1b}"), "badcode");
        assert_eq!(error_code(&"x".repeat(500)).len(), 64);
    }
}
