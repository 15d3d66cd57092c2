//! RFC 7591 Dynamic Client Registration: what a client may register (bounded, checked) and the
//! answer it gets. Such clients are unverified: the consent page says so.

use mcpgate_config::redirect_uri_problem;
use serde_json::{json, Map, Value};

use crate::clients::{Client, ClientKind};
use crate::secrets::{hash, random_secret};

/// More than this many redirect URIs is not a client, it is a probe.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_CHARS: usize = 100;

/// A registration refused: RFC 7591 §3.2.2 error code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationError {
    pub error: &'static str,
    pub description: String,
}

fn invalid(error: &'static str, description: impl Into<String>) -> RegistrationError {
    RegistrationError {
        error,
        description: description.into(),
    }
}

/// A checked registration: the client to store and the secret to hand out once (if any).
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: Option<String>,
    pub answer: Value,
}

/// Checks a registration request and mints the client.
pub fn register(body: &[u8], now: u64) -> Result<Registered, RegistrationError> {
    let doc: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| invalid("invalid_client_metadata", "the body is not a JSON object"))?;
    let redirect_uris = redirect_uris(doc.get("redirect_uris"))?;
    let auth_method = auth_method(doc.get("token_endpoint_auth_method"))?;
    check_grants(&doc)?;
    let application_type = application_type(doc.get("application_type"))?;
    let name = client_name(doc.get("client_name"))?;
    let secret = (auth_method != "none").then(random_secret);
    let id = format!("dyn-{}", &random_secret()[..22]);
    let mut answer = json!({
        "client_id": id,
        "client_id_issued_at": now,
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_method": auth_method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "application_type": application_type,
    });
    if let Some(n) = &name {
        answer["client_name"] = n.as_str().into();
    }
    if let Some(s) = &secret {
        answer["client_secret"] = s.as_str().into();
        answer["client_secret_expires_at"] = 0.into();
    }
    let client = Client {
        id,
        name,
        kind: ClientKind::Unverified,
        redirect_uris,
        secret_hash: secret.as_deref().map(hash),
        refresh: true,
    };
    Ok(Registered {
        client,
        secret,
        answer,
    })
}

fn redirect_uris(v: Option<&Value>) -> Result<Vec<String>, RegistrationError> {
    let list = v
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            invalid(
                "invalid_redirect_uri",
                "`redirect_uris` must be a non-empty array",
            )
        })?;
    if list.len() > MAX_REDIRECT_URIS {
        return Err(invalid("invalid_redirect_uri", "at most 10 redirect URIs"));
    }
    list.iter()
        .map(|u| {
            let u = u
                .as_str()
                .filter(|u| u.len() <= MAX_URI_LEN)
                .ok_or_else(|| {
                    invalid("invalid_redirect_uri", "a redirect URI must be a string")
                })?;
            match redirect_uri_problem(u) {
                Some(why) => Err(invalid("invalid_redirect_uri", format!("{u}: {why}"))),
                None => Ok(u.to_owned()),
            }
        })
        .collect()
}

/// RFC 7591 §2: the default is `client_secret_basic`.
fn auth_method(v: Option<&Value>) -> Result<&'static str, RegistrationError> {
    match v.map(|v| v.as_str()) {
        None => Ok("client_secret_basic"),
        Some(Some("none")) => Ok("none"),
        Some(Some("client_secret_basic")) => Ok("client_secret_basic"),
        Some(Some("client_secret_post")) => Ok("client_secret_post"),
        _ => Err(invalid(
            "invalid_client_metadata",
            "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
        )),
    }
}

/// Only the code flow (and refresh) is served: an implicit or password client is refused.
fn check_grants(doc: &Map<String, Value>) -> Result<(), RegistrationError> {
    let all_in = |key: &str, allowed: &[&str]| match doc.get(key) {
        None => true,
        Some(Value::Array(l)) => l
            .iter()
            .all(|g| g.as_str().is_some_and(|g| allowed.contains(&g))),
        Some(_) => false,
    };
    if !all_in("grant_types", &["authorization_code", "refresh_token"]) {
        return Err(invalid(
            "invalid_client_metadata",
            "grant_types may only be authorization_code and refresh_token",
        ));
    }
    if !all_in("response_types", &["code"]) {
        return Err(invalid(
            "invalid_client_metadata",
            "response_types may only be code",
        ));
    }
    Ok(())
}

fn application_type(v: Option<&Value>) -> Result<&'static str, RegistrationError> {
    match v.map(|v| v.as_str()) {
        None | Some(Some("web")) => Ok("web"),
        Some(Some("native")) => Ok("native"),
        _ => Err(invalid(
            "invalid_client_metadata",
            "application_type must be web or native",
        )),
    }
}

/// A display name, control characters removed and length bounded (it is shown on consent).
fn client_name(v: Option<&Value>) -> Result<Option<String>, RegistrationError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let clean: String = s
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_NAME_CHARS)
                .collect();
            Ok(Some(clean.trim().to_owned()).filter(|s| !s.is_empty()))
        }
        Some(_) => Err(invalid(
            "invalid_client_metadata",
            "client_name must be a string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_client_registers_without_a_secret() {
        let body = br#"{"redirect_uris":["http://127.0.0.1:3000/cb"],"token_endpoint_auth_method":"none","client_name":"CLI\u0007 tool","application_type":"native"}"#;
        let r = register(body, 1).unwrap();
        assert!(r.secret.is_none());
        assert_eq!(r.client.kind, ClientKind::Unverified);
        assert_eq!(r.client.name.as_deref(), Some("CLI tool"));
        assert_eq!(r.answer["token_endpoint_auth_method"], "none");
        assert!(r.answer.get("client_secret").is_none());
    }

    #[test]
    fn the_default_is_a_confidential_client() {
        let r = register(br#"{"redirect_uris":["https://app.example/cb"]}"#, 1).unwrap();
        let secret = r.secret.unwrap();
        assert_eq!(r.answer["client_secret"], secret.as_str());
        assert!(r.client.secret_matches(Some(&secret)));
    }

    #[test]
    fn bad_registrations_are_refused() {
        let cases: [&[u8]; 8] = [
            b"not json",
            br#"{}"#,
            br#"{"redirect_uris":[]}"#,
            br#"{"redirect_uris":["http://evil.example/cb"]}"#,
            br#"{"redirect_uris":["javascript:alert(1)"]}"#,
            br#"{"redirect_uris":["https://a.example/cb#x"]}"#,
            br#"{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}"#,
            br#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
        ];
        for body in cases {
            assert!(
                register(body, 1).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many = format!(
            r#"{{"redirect_uris":[{}]}}"#,
            [r#""https://a.example/cb""#; 11].join(",")
        );
        assert!(register(many.as_bytes(), 1).is_err());
    }
}
