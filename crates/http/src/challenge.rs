//! `WWW-Authenticate: Bearer …` challenges (RFC 6750 §3, RFC 9728 §5.1) as MCP clients expect
//! them, and the Protected Resource Metadata URL they point at.

/// Build a Bearer challenge. Parameters are quoted and escaped; absent ones are left out.
pub fn bearer_challenge(
    resource_metadata: &str,
    scope: Option<&str>,
    error: Option<&str>,
    error_description: Option<&str>,
) -> String {
    let mut params: Vec<String> = Vec::with_capacity(4);
    if let Some(e) = error {
        params.push(format!("error=\"{}\"", escape(e)));
    }
    if let Some(d) = error_description {
        params.push(format!("error_description=\"{}\"", escape(d)));
    }
    if let Some(s) = scope.filter(|s| !s.is_empty()) {
        params.push(format!("scope=\"{}\"", escape(s)));
    }
    params.push(format!(
        "resource_metadata=\"{}\"",
        escape(resource_metadata)
    ));
    format!("Bearer {}", params.join(", "))
}

fn escape(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// The RFC 9728 path-inserted metadata URL for a resource URL:
/// `https://h/github/mcp` → `https://h/.well-known/oauth-protected-resource/github/mcp`.
pub fn resource_metadata_url(resource: &url::Url) -> String {
    let origin = resource.origin().ascii_serialization();
    let path = resource.path().trim_end_matches('/');
    format!("{origin}/.well-known/oauth-protected-resource{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_challenge() {
        assert_eq!(
            bearer_challenge(
                "https://g/.well-known/oauth-protected-resource/x",
                Some("mcp:read"),
                None,
                None
            ),
            r#"Bearer scope="mcp:read", resource_metadata="https://g/.well-known/oauth-protected-resource/x""#
        );
    }

    #[test]
    fn error_challenge_is_escaped() {
        let c = bearer_challenge("u", None, Some("invalid_token"), Some("bad \"token\"\n"));
        assert_eq!(
            c,
            r#"Bearer error="invalid_token", error_description="bad \"token\"", resource_metadata="u""#
        );
    }

    #[test]
    fn metadata_url_inserts_well_known() {
        let u = url::Url::parse("https://MCP.example.com/github/mcp").unwrap();
        assert_eq!(
            resource_metadata_url(&u),
            "https://mcp.example.com/.well-known/oauth-protected-resource/github/mcp"
        );
        let root = url::Url::parse("https://mcp.example.com/").unwrap();
        assert_eq!(
            resource_metadata_url(&root),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        let port = url::Url::parse("http://127.0.0.1:8080/a").unwrap();
        assert_eq!(
            resource_metadata_url(&port),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a"
        );
    }
}
