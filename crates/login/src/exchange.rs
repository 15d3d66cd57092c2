//! What the front door sees of an HTTP request and what it answers, as plain values: the proxy
//! copies a request in and writes the answer out, so every flow is testable without a server.

use std::net::IpAddr;

use serde_json::Value;

/// One request to a front-door endpoint, body already read (bounded by the proxy).
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub query: Option<String>,
    pub cookie: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
    pub client_ip: Option<IpAddr>,
}

impl LoginRequest {
    /// Query parameters; a repeated parameter is an error for OAuth (RFC 6749 §3.1), so the
    /// caller asks [`Params::single`] which refuses duplicates.
    pub fn query_params(&self) -> Params {
        Params::parse(self.query.as_deref().unwrap_or_default().as_bytes())
    }

    /// `application/x-www-form-urlencoded` body parameters (RFC 6749 §4.1.3), else none.
    pub fn form(&self) -> Params {
        let is_form = self.content_type.as_deref().is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        if is_form {
            Params::parse(&self.body)
        } else {
            Params::default()
        }
    }

    /// The value of one cookie.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookie.as_deref()?.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// Decoded `name=value` pairs in order.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The parameter's value; `Err` when it is sent more than once.
    pub fn single(&self, name: &str) -> Result<Option<&str>, String> {
        let mut found = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("`{name}` is repeated"));
        }
        Ok(first.map(String::as_str).filter(|v| !v.is_empty()))
    }
}

/// The answer to write back.
#[derive(Debug, Clone)]
pub struct LoginResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Stable snake_case reason when the request was refused (metrics, audit).
    pub reason: Option<&'static str>,
    /// What the front door did, when it did something worth counting (`token_issued`, …).
    pub event: Option<&'static str>,
}

/// The security headers of every answer: nothing framed (clickjacking of the consent page),
/// sniffed or sent on as a referrer (codes in URLs). `Cache-Control: no-store` (RFC 6749 §5.1)
/// is on every answer the gateway writes itself, so the writer adds it.
const COMMON: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// Pages carry no script and load nothing; forms post only to the front door itself.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                        frame-ancestors 'none'; base-uri 'none'";

impl LoginResponse {
    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> LoginResponse {
        let headers: Vec<(&'static str, String)> =
            COMMON.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        LoginResponse {
            status,
            content_type,
            headers,
            body,
            reason: None,
            event: None,
        }
    }

    pub fn json(status: u16, value: &Value) -> LoginResponse {
        let body = serde_json::to_vec(value).unwrap_or_default();
        LoginResponse::new(status, "application/json", body)
    }

    /// An RFC 6749 §5.2 error answered to the client directly.
    pub fn oauth_error(status: u16, error: &str, description: &str) -> LoginResponse {
        let value = serde_json::json!({ "error": error, "error_description": description });
        LoginResponse::json(status, &value)
    }

    /// A page for the person in the browser (HTML, escaped by the caller).
    pub fn html(status: u16, html: String) -> LoginResponse {
        let mut r = LoginResponse::new(status, "text/html; charset=utf-8", html.into_bytes());
        r.headers
            .push(("content-security-policy", PAGE_CSP.to_owned()));
        r
    }

    /// A page whose form is answered with a redirect to `redirect_uri` (the consent page).
    /// Browsers apply CSP `form-action` (CSP Level 3 §6.4.1) to the redirects that follow a
    /// form submission too (HTML's navigate fetch repeats the check at each redirect), so with
    /// `'self'` alone the browser stops on the consent page and the client never gets its
    /// code. The client's redirect origin is allowed beside `'self'`, and nothing wider.
    pub fn html_form_redirecting_to(
        status: u16,
        html: String,
        redirect_uri: &str,
    ) -> LoginResponse {
        let mut r = LoginResponse::html(status, html);
        if let Some(source) = form_redirect_source(redirect_uri) {
            let csp = PAGE_CSP.replace(
                "form-action 'self';",
                &format!("form-action 'self' {source};"),
            );
            r.headers
                .retain(|(name, _)| *name != "content-security-policy");
            r.headers.push(("content-security-policy", csp));
        }
        r
    }

    /// No body (a CORS preflight answer).
    pub fn empty(status: u16) -> LoginResponse {
        LoginResponse::new(status, "text/plain; charset=utf-8", Vec::new())
    }

    /// 303 See Other: after a POST the browser follows with a GET (RFC 9110 §15.4.4).
    pub fn redirect(location: &str) -> LoginResponse {
        let mut r = LoginResponse::new(303, "text/plain; charset=utf-8", Vec::new());
        r.headers.push(("location", location.to_owned()));
        r
    }

    pub fn with_cookie(mut self, cookie: String) -> LoginResponse {
        self.headers.push(("set-cookie", cookie));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> LoginResponse {
        self.headers.push((name, value));
        self
    }

    pub fn counted(mut self, event: &'static str) -> LoginResponse {
        self.event = Some(event);
        self
    }

    pub fn refused(mut self, reason: &'static str) -> LoginResponse {
        self.reason = Some(reason);
        self
    }
}

/// The CSP source expression (CSP Level 3 §2.3.1) matching a redirect URI: its origin for
/// http(s), its scheme for a private-use scheme (RFC 8252 §7.1). An IPv6 literal has no
/// host-source spelling, so its scheme stands in (`http:` for `http://[::1]:port`, the only
/// IPv6 redirect accepted: loopback). `None` (the page keeps `'self'` alone, failing closed)
/// for anything that is not plainly one token of URL characters: a header is never built from
/// a value that could end the directive.
fn form_redirect_source(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let source = match (url.scheme(), url.host()) {
        ("http" | "https", Some(url::Host::Ipv6(_))) => format!("{}:", url.scheme()),
        ("http" | "https", Some(_)) => url.origin().ascii_serialization(),
        ("http" | "https", None) => return None,
        // Only a reverse-domain private-use scheme (what registration accepts); never one
        // that runs or reads something in the browser.
        (scheme, _) if scheme.contains('.') => format!("{scheme}:"),
        _ => return None,
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '+');
    source.chars().all(plain).then_some(source)
}

pub use mcpgate_http::escape_html;

#[cfg(test)]
mod tests {
    use super::*;

    fn csp_of(r: &LoginResponse) -> Vec<&str> {
        r.headers
            .iter()
            .filter(|(name, _)| *name == "content-security-policy")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn a_consent_form_may_redirect_to_its_client_and_nowhere_else() {
        let with = |source: &str| {
            PAGE_CSP.replace(
                "form-action 'self';",
                &format!("form-action 'self' {source};"),
            )
        };
        for (redirect, source) in [
            ("http://127.0.0.1:5555/callback", "http://127.0.0.1:5555"),
            ("https://app.example.com/cb?x=1", "https://app.example.com"),
            ("https://App.Example.COM:443/cb", "https://app.example.com"),
            (
                "https://app.example.com:8443/cb",
                "https://app.example.com:8443",
            ),
            ("com.example.app:/oauth/cb", "com.example.app:"),
            // No host-source spells an IPv6 literal: the scheme stands in.
            ("http://[::1]:7777/cb", "http:"),
        ] {
            let r = LoginResponse::html_form_redirecting_to(200, String::new(), redirect);
            assert_eq!(csp_of(&r), vec![with(source).as_str()], "{redirect}");
            assert!(csp_of(&r)[0].contains("frame-ancestors 'none'"));
        }
    }

    #[test]
    fn an_unusable_redirect_leaves_the_form_to_the_front_door_alone() {
        for redirect in [
            "",
            "not a url",
            "/relative/cb",
            "data:text/html,<x>;y",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "blob:https://app.example.com/x",
            "myapp:/cb",
        ] {
            let r = LoginResponse::html_form_redirecting_to(200, String::new(), redirect);
            assert_eq!(csp_of(&r), vec![PAGE_CSP], "{redirect}");
        }
        // Error pages and every other page: 'self' only.
        assert_eq!(
            csp_of(&LoginResponse::html(400, String::new())),
            vec![PAGE_CSP]
        );
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let p = Params::parse(b"a=1&b=2&a=3");
        assert!(p.single("a").is_err());
        assert_eq!(p.single("b"), Ok(Some("2")));
        assert_eq!(p.single("c"), Ok(None));
    }

    #[test]
    fn a_form_needs_its_content_type() {
        let mut r = LoginRequest {
            body: b"grant_type=x".to_vec(),
            ..Default::default()
        };
        assert_eq!(r.form().single("grant_type"), Ok(None));
        r.content_type = Some("application/x-www-form-urlencoded; charset=UTF-8".into());
        assert_eq!(r.form().single("grant_type"), Ok(Some("x")));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let r = LoginRequest {
            cookie: Some("a-b=1; a=2".into()),
            ..Default::default()
        };
        assert_eq!(r.cookie("a"), Some("2"));
        assert_eq!(r.cookie("b"), None);
    }
}
