//! RFC 7662 token introspection: one client per issuer that asks the IdP whether an opaque token
//! is active. Results are cached by the validator; this module only speaks the protocol.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mcpgate_config::{ClientAuthMethod, Introspection};
use serde_json::{Map, Value};
use url::form_urlencoded;

use crate::fetch::{self, MAX_INTROSPECTION};

/// Talks to one introspection endpoint.
pub(crate) struct Introspector {
    pub config: Introspection,
    http: reqwest::Client,
}

/// What the endpoint said.
pub(crate) enum Answer {
    /// `active: true`, with the response's members.
    Active(Map<String, Value>),
    /// `active` false or absent.
    Inactive,
}

impl Introspector {
    pub fn new(config: Introspection, http: reqwest::Client) -> Introspector {
        Introspector { config, http }
    }

    /// Ask about `token`. `Err` means we could not get an answer (down, slow, non-200, garbage):
    /// the caller must fail closed with 503, never treat it as inactive or active.
    pub async fn introspect(&self, token: &str) -> Result<Answer, String> {
        let req = self.request(token);
        let got = fetch::json_object(req, self.config.timeout, MAX_INTROSPECTION).await?;
        Ok(match got.body.get("active") {
            Some(Value::Bool(true)) => Answer::Active(got.body),
            _ => Answer::Inactive,
        })
    }

    /// The introspection request (built synchronously: the form serializer is not `Send`).
    fn request(&self, token: &str) -> reqwest::RequestBuilder {
        let c = &self.config;
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", token)
            .append_pair("token_type_hint", "access_token");
        let mut req = self.http.post(c.endpoint.clone());
        match c.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: form-encode id and secret before Basic encoding.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let creds = format!("{}:{}", enc(&c.client_id), enc(c.client_secret.expose()));
                req = req.header(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(creds)),
                );
            }
            ClientAuthMethod::ClientSecretPost => {
                form.append_pair("client_id", &c.client_id)
                    .append_pair("client_secret", c.client_secret.expose());
            }
        }
        req.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form.finish())
    }

    pub fn cache_ttl(&self) -> Duration {
        self.config.cache_ttl
    }

    pub fn negative_cache_ttl(&self) -> Duration {
        self.config.negative_cache_ttl
    }

    /// Whether an active answer without an audience may stand (the issuer opted in).
    pub fn accepts_missing_audience(&self) -> bool {
        self.config.accept_missing_audience
    }
}
