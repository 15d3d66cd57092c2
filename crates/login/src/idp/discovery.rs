//! The provider's metadata (OpenID Connect Discovery 1.0): where it lives, and the checks on
//! what comes back — the exact issuer (§4.3), the endpoints we need, and their schemes.

use serde_json::{Map, Value};
use url::Url;

/// The endpoints and flags of the provider the front door uses.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub userinfo_endpoint: Option<Url>,
    /// RFC 9207 §3: the provider sends `iss` with every authorization response.
    pub iss_parameter_supported: bool,
}

/// `<issuer>/.well-known/openid-configuration` (Discovery §4.1: the issuer's path kept, any
/// trailing slash dropped before the suffix).
pub(crate) fn discovery_url(issuer: &str) -> Result<Url, String> {
    let base = issuer.trim_end_matches('/');
    Url::parse(&format!("{base}/.well-known/openid-configuration"))
        .map_err(|e| format!("issuer is not a URL: {e}"))
}

/// Checks a discovery document against the configured `issuer`.
pub(crate) fn parse(issuer: &str, doc: &Map<String, Value>) -> Result<Metadata, String> {
    // Discovery §4.3: the document's issuer MUST be identical to the one it was fetched for,
    // or a compromised or mix-up endpoint could name another issuer's keys and tokens.
    match doc.get("issuer") {
        Some(Value::String(s)) if s == issuer => {}
        Some(Value::String(s)) => {
            return Err(format!(
                "the document's issuer {s:?} is not the configured {issuer:?}"
            ))
        }
        _ => return Err("the document has no issuer".into()),
    }
    let https_issuer = issuer.starts_with("https://");
    let endpoint = |name: &str| -> Result<Option<Url>, String> {
        let Some(v) = doc.get(name) else {
            return Ok(None);
        };
        let s = v
            .as_str()
            .ok_or_else(|| format!("{name} is not a string"))?;
        let u = Url::parse(s).map_err(|e| format!("{name}: {e}"))?;
        // Every endpoint is https when the issuer is; plain http only for an http issuer
        // (a loopback test or demo provider).
        let scheme_ok = u.scheme() == "https" || (!https_issuer && u.scheme() == "http");
        if !scheme_ok || u.fragment().is_some() || u.host().is_none() {
            return Err(format!("{name} must be an https URL without a fragment"));
        }
        Ok(Some(u))
    };
    let required =
        |name: &str| endpoint(name)?.ok_or_else(|| format!("the document has no {name}"));
    Ok(Metadata {
        authorization_endpoint: required("authorization_endpoint")?,
        token_endpoint: required("token_endpoint")?,
        jwks_uri: required("jwks_uri")?,
        userinfo_endpoint: endpoint("userinfo_endpoint")?,
        iss_parameter_supported: doc
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(extra: Value) -> Map<String, Value> {
        let mut d = json!({
            "issuer": "https://idp.example.com/tenant",
            "authorization_endpoint": "https://idp.example.com/authorize",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://keys.example.com/jwks",
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                d.as_object_mut().unwrap().remove(k);
            } else {
                d[k] = v.clone();
            }
        }
        d.as_object().unwrap().clone()
    }

    #[test]
    fn discovery_url_keeps_the_issuer_path() {
        assert_eq!(
            discovery_url("https://idp.example.com/tenant")
                .unwrap()
                .as_str(),
            "https://idp.example.com/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example.com").unwrap().as_str(),
            "https://idp.example.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn a_good_document() {
        let m = parse("https://idp.example.com/tenant", &doc(json!({}))).unwrap();
        assert_eq!(m.token_endpoint.as_str(), "https://idp.example.com/token");
        assert!(m.userinfo_endpoint.is_none());
        assert!(!m.iss_parameter_supported);
    }

    #[test]
    fn refusals() {
        let iss = "https://idp.example.com/tenant";
        for (extra, why) in [
            (
                json!({"issuer": "https://idp.example.com/tenant/"}),
                "issuer",
            ),
            (
                json!({"issuer": "https://evil.example.com/tenant"}),
                "issuer",
            ),
            (json!({"issuer": null}), "no issuer"),
            (json!({"token_endpoint": null}), "no token_endpoint"),
            (json!({"jwks_uri": null}), "no jwks_uri"),
            (
                json!({"authorization_endpoint": null}),
                "no authorization_endpoint",
            ),
            (
                json!({"token_endpoint": "http://idp.example.com/token"}),
                "https",
            ),
            (json!({"jwks_uri": 5}), "not a string"),
        ] {
            let e = parse(iss, &doc(extra.clone())).unwrap_err();
            assert!(e.contains(why), "{extra}: {e}");
        }
    }
}
