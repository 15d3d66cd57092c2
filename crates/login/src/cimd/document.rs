//! The checks on a fetched client metadata document (RFC 7591 §2 fields, as profiled by
//! draft-ietf-oauth-client-id-metadata-document §4): it names itself, lists where codes may go,
//! and describes a public client that holds no secret.

use serde_json::{Map, Value};

use super::{reason, CimdError, ClientMetadata};

/// Most redirect URIs a document may list; real clients list one to a handful.
pub const MAX_REDIRECT_URIS: usize = 32;
/// Longest redirect URI or `client_uri` accepted.
pub const MAX_URI: usize = 2048;
/// Longest client name kept for the consent page, in characters (longer names are cut).
pub const MAX_CLIENT_NAME: usize = 80;

/// The checked metadata of `client_id` from its parsed document, fetched from `host`.
pub fn check_document(
    doc: &Map<String, Value>,
    client_id: &str,
    host: &str,
) -> Result<ClientMetadata, CimdError> {
    check_self_name(doc, client_id)?;
    check_no_secret(doc)?;
    check_auth_method(doc)?;
    let redirect_uris = redirect_uris(doc)?;
    let grant_types = grant_types(doc)?;
    check_response_types(doc)?;
    Ok(ClientMetadata {
        client_id: client_id.to_owned(),
        host: host.to_owned(),
        client_name: client_name(doc)?,
        client_uri: client_uri(doc)?,
        redirect_uris,
        grant_types,
    })
}

/// §4.1: the document's `client_id` equals the URL it was fetched from, compared as strings —
/// otherwise one host could serve a document speaking for another client.
fn check_self_name(doc: &Map<String, Value>, client_id: &str) -> Result<(), CimdError> {
    match doc.get("client_id") {
        Some(Value::String(id)) if id == client_id => Ok(()),
        Some(Value::String(id)) => Err(CimdError {
            reason: reason::ID_MISMATCH,
            detail: format!("the document names itself {id:?}, not the URL it was fetched from"),
        }),
        Some(_) => Err(CimdError {
            reason: reason::ID_MISMATCH,
            detail: "the document's `client_id` is not a string".into(),
        }),
        None => Err(CimdError {
            reason: reason::ID_MISMATCH,
            detail: "the document has no `client_id`".into(),
        }),
    }
}

/// §4.1: a document is public, so it must not carry a shared secret (nor claim to have one).
fn check_no_secret(doc: &Map<String, Value>) -> Result<(), CimdError> {
    for field in ["client_secret", "client_secret_expires_at"] {
        if doc.contains_key(field) {
            return Err(invalid(format!(
                "`{field}` present: a metadata document is public and must not carry a secret"
            )));
        }
    }
    Ok(())
}

/// Only public clients (PKCE, no client authentication) are served from metadata documents.
/// Shared-secret methods are forbidden by §4.1; `private_key_jwt` is legitimate in the draft but
/// not implemented here, so it is refused rather than silently downgraded to `none`.
fn check_auth_method(doc: &Map<String, Value>) -> Result<(), CimdError> {
    match doc.get("token_endpoint_auth_method") {
        None => Ok(()),
        Some(Value::String(m)) if m == "none" => Ok(()),
        Some(Value::String(m)) if m == "private_key_jwt" => Err(invalid(
            "`token_endpoint_auth_method: private_key_jwt` is not supported: only public \
             clients (`none`, with PKCE) may use a metadata document here"
                .into(),
        )),
        Some(Value::String(m)) => Err(invalid(format!(
            "`token_endpoint_auth_method: {m:?}` is not accepted: only `none` (public client)"
        ))),
        Some(_) => Err(invalid(
            "`token_endpoint_auth_method` is not a string".into(),
        )),
    }
}

/// RFC 7591 §2: where authorization codes may be sent; each must be acceptable as a redirect URI
/// at all (https, loopback http, or a private-use scheme).
fn redirect_uris(doc: &Map<String, Value>) -> Result<Vec<String>, CimdError> {
    let Some(Value::Array(list)) = doc.get("redirect_uris") else {
        return Err(invalid(
            "`redirect_uris` must be a non-empty array of strings".into(),
        ));
    };
    if list.is_empty() {
        return Err(invalid("`redirect_uris` is empty".into()));
    }
    if list.len() > MAX_REDIRECT_URIS {
        return Err(invalid(format!(
            "more than {MAX_REDIRECT_URIS} `redirect_uris`"
        )));
    }
    list.iter()
        .map(|v| {
            let Value::String(uri) = v else {
                return Err(invalid("`redirect_uris` holds a non-string".into()));
            };
            if uri.len() > MAX_URI {
                return Err(invalid(format!(
                    "a redirect URI is longer than {MAX_URI} bytes"
                )));
            }
            match mcpgate_config::redirect_uri_problem(uri) {
                None => Ok(uri.clone()),
                Some(problem) => Err(invalid(format!("redirect URI {uri:?}: {problem}"))),
            }
        })
        .collect()
}

/// The grant types the client may use. Absent means `["authorization_code"]` (RFC 7591 §2); the
/// front door serves only the code flow and its refresh.
fn grant_types(doc: &Map<String, Value>) -> Result<Vec<String>, CimdError> {
    let Some(value) = doc.get("grant_types") else {
        return Ok(vec!["authorization_code".into()]);
    };
    let types = string_array(value, "grant_types")?;
    if let Some(other) = types
        .iter()
        .find(|t| *t != "authorization_code" && *t != "refresh_token")
    {
        return Err(invalid(format!(
            "grant type {other:?} is not offered (only `authorization_code` and `refresh_token`)"
        )));
    }
    if !types.iter().any(|t| t == "authorization_code") {
        return Err(invalid(
            "`grant_types` must include `authorization_code`".into(),
        ));
    }
    Ok(types)
}

/// OAuth 2.1 has only the code response type.
fn check_response_types(doc: &Map<String, Value>) -> Result<(), CimdError> {
    match doc.get("response_types") {
        None => Ok(()),
        Some(v) if string_array(v, "response_types")? == ["code"] => Ok(()),
        Some(_) => Err(invalid("`response_types` must be `[\"code\"]`".into())),
    }
}

/// The name shown on the consent page, made safe to show: control and bidirectional-formatting
/// characters removed (they could make `evil.example` render as something else), cut to
/// [`MAX_CLIENT_NAME`] characters. The page must still HTML-escape it.
fn client_name(doc: &Map<String, Value>) -> Result<Option<String>, CimdError> {
    match doc.get("client_name") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => Ok(displayable(name)),
        Some(_) => Err(invalid("`client_name` is not a string".into())),
    }
}

/// `name` without invisible or reordering characters, trimmed and bounded; `None` when nothing
/// visible is left.
pub fn displayable(name: &str) -> Option<String> {
    let mut clean: String = name.chars().filter(|c| !is_hidden(*c)).collect();
    if clean.chars().count() > MAX_CLIENT_NAME {
        clean = clean.chars().take(MAX_CLIENT_NAME - 1).collect();
        clean.push('…');
    }
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

/// Control characters, and the format characters that reorder or hide text (Unicode bidi
/// controls, zero-width characters, the BOM).
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}')
}

/// The client's home page, if given: only an https URL (it may be rendered as a link, and a
/// `javascript:` link on a consent page is script in our origin).
fn client_uri(doc: &Map<String, Value>) -> Result<Option<String>, CimdError> {
    match doc.get("client_uri") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(uri)) => {
            let ok =
                uri.len() <= MAX_URI && url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https");
            if ok {
                Ok(Some(uri.clone()))
            } else {
                Err(invalid("`client_uri` must be an https URL".into()))
            }
        }
        Some(_) => Err(invalid("`client_uri` is not a string".into())),
    }
}

fn string_array(value: &Value, field: &str) -> Result<Vec<String>, CimdError> {
    let Value::Array(list) = value else {
        return Err(invalid(format!("`{field}` must be an array of strings")));
    };
    list.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(format!("`{field}` holds a non-string"))),
        })
        .collect()
}

fn invalid(detail: String) -> CimdError {
    CimdError {
        reason: reason::INVALID,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "https://app.example.com/client.json";

    fn doc(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "client_id": ID,
            "client_name": "Example App",
            "redirect_uris": ["http://127.0.0.1:33418/callback", "https://app.example.com/cb"],
        });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        match base {
            Value::Object(m) => m,
            _ => unreachable!("built as an object"),
        }
    }

    fn refused(d: &Map<String, Value>) -> CimdError {
        match check_document(d, ID, "app.example.com") {
            Ok(m) => panic!("accepted: {m:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_minimal_public_client_is_accepted() {
        let m = check_document(&doc(json!({})), ID, "app.example.com").expect("valid");
        assert_eq!(m.client_id, ID);
        assert_eq!(m.host, "app.example.com");
        assert_eq!(m.client_name.as_deref(), Some("Example App"));
        assert_eq!(m.redirect_uris.len(), 2);
        assert_eq!(m.grant_types, ["authorization_code"]);
        assert_eq!(m.client_uri, None);
    }

    #[test]
    fn the_full_set_of_public_fields_is_accepted() {
        let d = doc(json!({
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_uri": "https://app.example.com/",
            "logo_uri": "https://app.example.com/logo.png",
            "scope": "mcp"
        }));
        let m = check_document(&d, ID, "app.example.com").expect("valid");
        assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(m.client_uri.as_deref(), Some("https://app.example.com/"));
    }

    #[test]
    fn the_document_must_name_itself_exactly() {
        for other in [
            json!("https://app.example.com/client.json/"),
            json!("https://APP.example.com/client.json"),
            json!("https://evil.example/client.json"),
            json!(42),
        ] {
            let mut d = doc(json!({}));
            d.insert("client_id".into(), other);
            assert_eq!(refused(&d).reason, reason::ID_MISMATCH);
        }
        let mut d = doc(json!({}));
        d.remove("client_id");
        assert_eq!(refused(&d).reason, reason::ID_MISMATCH);
    }

    #[test]
    fn redirect_uris_must_be_a_non_empty_list_of_acceptable_uris() {
        for bad in [
            json!([]),
            json!("https://app.example.com/cb"),
            json!([42]),
            json!(["javascript:alert(1)"]),
            json!(["http://app.example.com/cb"]),
            json!(["https://app.example.com/cb#frag"]),
            json!(["/relative"]),
        ] {
            let d = doc(json!({ "redirect_uris": bad }));
            assert_eq!(refused(&d).reason, reason::INVALID, "{bad}");
        }
        let mut d = doc(json!({}));
        d.remove("redirect_uris");
        assert_eq!(refused(&d).reason, reason::INVALID);
        let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
            .map(|i| format!("https://app.example.com/cb{i}"))
            .collect();
        assert_eq!(
            refused(&doc(json!({ "redirect_uris": many }))).reason,
            reason::INVALID
        );
    }

    #[test]
    fn only_public_clients_are_served() {
        let e = refused(&doc(
            json!({ "token_endpoint_auth_method": "private_key_jwt" }),
        ));
        assert_eq!(e.reason, reason::INVALID);
        assert!(e.detail.contains("private_key_jwt"), "{}", e.detail);
        for m in [
            json!("client_secret_basic"),
            json!("client_secret_post"),
            json!(null),
        ] {
            let d = doc(json!({ "token_endpoint_auth_method": m }));
            assert_eq!(refused(&d).reason, reason::INVALID);
        }
    }

    #[test]
    fn a_document_carrying_a_secret_is_refused() {
        for field in ["client_secret", "client_secret_expires_at"] {
            let mut d = doc(json!({}));
            d.insert(field.into(), json!("s3cret"));
            let e = refused(&d);
            assert_eq!(e.reason, reason::INVALID);
            assert!(e.detail.contains(field));
            assert!(!e.detail.contains("s3cret"), "never echo a secret");
        }
    }

    #[test]
    fn grant_types_are_the_code_flow_only() {
        for bad in [
            json!(["refresh_token"]),
            json!(["authorization_code", "client_credentials"]),
            json!(["implicit"]),
            json!([]),
            json!("authorization_code"),
        ] {
            let d = doc(json!({ "grant_types": bad }));
            assert_eq!(refused(&d).reason, reason::INVALID, "{bad}");
        }
    }

    #[test]
    fn response_types_are_code_only() {
        for bad in [
            json!(["token"]),
            json!(["code", "token"]),
            json!([]),
            json!("code"),
        ] {
            let d = doc(json!({ "response_types": bad }));
            assert_eq!(refused(&d).reason, reason::INVALID, "{bad}");
        }
    }

    #[test]
    fn client_uri_must_be_https() {
        for bad in [
            json!("javascript:alert(1)"),
            json!("http://app.example.com/"),
            json!("not a url"),
            json!(7),
        ] {
            let d = doc(json!({ "client_uri": bad }));
            assert_eq!(refused(&d).reason, reason::INVALID, "{bad}");
        }
    }

    #[test]
    fn client_names_are_made_safe_to_show() {
        assert_eq!(
            displayable("Good\u{202E}moc.elgoog\u{0007}\n App"),
            Some("Goodmoc.elgoog App".into())
        );
        assert_eq!(displayable("\u{200B}\u{FEFF}  "), None);
        let long = displayable(&"x".repeat(500)).expect("kept");
        assert_eq!(long.chars().count(), MAX_CLIENT_NAME);
        assert!(long.ends_with('…'));
        let d = doc(json!({ "client_name": ["array"] }));
        assert_eq!(refused(&d).reason, reason::INVALID);
        let d = doc(json!({ "client_name": "\u{0000}" }));
        let m = check_document(&d, ID, "app.example.com").expect("valid");
        assert_eq!(m.client_name, None);
    }
}
