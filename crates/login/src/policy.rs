//! Who may log in (`allowed_domains`, verified email, `allowed_groups`, `require_claims`) and
//! which scopes a user may be granted (`grants`) — checked at login and again at each refresh.

use mcpgate_config::{Grant, LoginPolicy};
use serde_json::Value;

use crate::idp::User;

/// The first rule `user` fails, as a stable reason; `Ok` when they may log in.
pub fn check_login(policy: &LoginPolicy, user: &User) -> Result<(), &'static str> {
    if !policy.allowed_domains.is_empty() {
        let domain = user
            .email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase());
        if !domain.is_some_and(|d| policy.allowed_domains.contains(&d)) {
            return Err("login_domain_not_allowed");
        }
        if policy.require_email_verified && !user.email_verified {
            return Err("login_email_unverified");
        }
    }
    if !policy.allowed_groups.is_empty()
        && !user
            .groups
            .iter()
            .any(|g| policy.allowed_groups.contains(g))
    {
        return Err("login_group_not_allowed");
    }
    for (claim, want) in &policy.require_claims {
        if !claim_has(user.claims.get(claim), want) {
            return Err("login_claim_mismatch");
        }
    }
    Ok(())
}

/// A claim matches a wanted value if it is that string, or an array containing it.
fn claim_has(claim: Option<&Value>, want: &str) -> bool {
    match claim {
        Some(Value::String(s)) => s == want,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(want)),
        Some(Value::Bool(b)) => b.to_string() == want,
        Some(Value::Number(n)) => n.to_string() == want,
        _ => false,
    }
}

/// The scopes to grant: those requested (all `offered` when none are), that the route offers
/// and that a grant gives this user. Without `grants`, every offered scope may be granted.
/// Order follows `offered`, so the same request always yields the same `scope` string.
pub fn grant_scopes(
    grants: &[Grant],
    user: &User,
    offered: &[String],
    requested: Option<&str>,
) -> Vec<String> {
    let requested: Option<Vec<&str>> = requested.map(|r| r.split_ascii_whitespace().collect());
    offered
        .iter()
        .filter(|s| requested.as_ref().is_none_or(|r| r.contains(&s.as_str())))
        .filter(|s| grants.is_empty() || grants.iter().any(|g| grants_scope(g, user, s)))
        .cloned()
        .collect()
}

fn grants_scope(grant: &Grant, user: &User, scope: &str) -> bool {
    grant.scopes.iter().any(|s| s == scope)
        && (grant.groups.is_empty() || grant.groups.iter().any(|g| user.groups.contains(g)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: &str, verified: bool, groups: &[&str]) -> User {
        let mut claims = serde_json::Map::new();
        claims.insert("tenant".into(), "acme".into());
        User {
            sub: "u1".into(),
            email: Some(email.into()),
            email_verified: verified,
            name: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            claims,
        }
    }

    #[test]
    fn the_domain_rule_needs_a_verified_email() {
        let p = LoginPolicy {
            allowed_domains: vec!["example.com".into()],
            require_email_verified: true,
            ..Default::default()
        };
        assert_eq!(check_login(&p, &user("a@Example.COM", true, &[])), Ok(()));
        assert_eq!(
            check_login(&p, &user("a@evil.example", true, &[])),
            Err("login_domain_not_allowed")
        );
        assert_eq!(
            check_login(&p, &user("a@example.com.evil", true, &[])),
            Err("login_domain_not_allowed")
        );
        assert_eq!(
            check_login(&p, &user("a@example.com", false, &[])),
            Err("login_email_unverified")
        );
    }

    #[test]
    fn groups_and_claims_are_checked() {
        let mut p = LoginPolicy {
            allowed_groups: vec!["staff".into()],
            ..Default::default()
        };
        assert_eq!(check_login(&p, &user("a@x", true, &["staff"])), Ok(()));
        assert_eq!(
            check_login(&p, &user("a@x", true, &["guests"])),
            Err("login_group_not_allowed")
        );
        p.allowed_groups.clear();
        p.require_claims.insert("tenant".into(), "other".into());
        assert_eq!(
            check_login(&p, &user("a@x", true, &[])),
            Err("login_claim_mismatch")
        );
    }

    #[test]
    fn scopes_are_what_was_asked_offered_and_granted() {
        let offered: Vec<String> = ["mcp:read", "mcp:write", "mcp:admin"]
            .map(String::from)
            .to_vec();
        let grants = vec![
            Grant {
                scopes: vec!["mcp:read".into(), "mcp:write".into()],
                groups: vec![],
            },
            Grant {
                scopes: vec!["mcp:admin".into()],
                groups: vec!["admins".into()],
            },
        ];
        let bob = user("b@x", true, &[]);
        let alice = user("a@x", true, &["admins"]);
        assert_eq!(
            grant_scopes(&grants, &bob, &offered, None),
            ["mcp:read", "mcp:write"]
        );
        assert_eq!(grant_scopes(&grants, &alice, &offered, None), offered);
        assert_eq!(
            grant_scopes(&grants, &bob, &offered, Some("mcp:admin mcp:read other")),
            ["mcp:read"]
        );
        assert_eq!(
            grant_scopes(&[], &bob, &offered, Some("mcp:admin")),
            ["mcp:admin"]
        );
    }
}
