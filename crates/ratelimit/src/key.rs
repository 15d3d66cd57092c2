//! Budget keys: what a request is counted as. A rule's key facts (subject, client id, IP, route,
//! issuer, method, tool) are hashed with the rule name, so stores never hold a subject, a client
//! id or any part of a token, and a key's length never depends on what a client sent.

use std::net::{IpAddr, Ipv6Addr};

use mcpgate_config::RateKey;
use sha2::{Digest, Sha256};

/// What the gateway knows about a request when a rule is checked. A rule whose key needs a
/// fact the request lacks (a subject on an unauthenticated route, a tool outside `tools/call`)
/// does not apply to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The configured issuer name and the token's `sub`.
    pub subject: Option<(&'a str, &'a str)>,
    pub client_id: Option<&'a str>,
    /// Already normalised by [`client_ip`].
    pub ip: Option<IpAddr>,
    pub route: &'a str,
    pub issuer: Option<&'a str>,
    pub method: Option<&'a str>,
    pub tool: Option<&'a str>,
}

/// A hashed budget key (32 hex digits: 128 bits of SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BudgetKey(pub String);

/// The key of `rule`'s budget for this request, or `None` when a key fact is missing.
pub fn budget_key(rule: &str, parts: &[RateKey], facts: &Facts<'_>) -> Option<BudgetKey> {
    let mut h = Sha256::new();
    field(&mut h, rule.as_bytes());
    for part in parts {
        field(&mut h, part.name().as_bytes());
        match part {
            RateKey::Subject => {
                let (issuer, sub) = facts.subject?;
                field(&mut h, issuer.as_bytes());
                field(&mut h, sub.as_bytes());
            }
            RateKey::ClientId => field(&mut h, facts.client_id?.as_bytes()),
            RateKey::Ip => field(&mut h, facts.ip?.to_string().as_bytes()),
            RateKey::Route => field(&mut h, facts.route.as_bytes()),
            RateKey::Issuer => field(&mut h, facts.issuer?.as_bytes()),
            RateKey::Method => field(&mut h, facts.method?.as_bytes()),
            RateKey::Tool => field(&mut h, facts.tool?.as_bytes()),
        }
    }
    Some(BudgetKey(hex::encode(&h.finalize()[..16])))
}

/// Length-prefixed, so that ("ab", "c") and ("a", "bc") never hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The address a client is counted by. The `X-Forwarded-For` entry a trusted proxy appended
/// (the last one) when the peer is trusted, else the peer itself; an IPv6 client by its /64,
/// since one host usually holds a whole /64 and could otherwise rotate through 2^64 budgets.
pub fn client_ip(
    peer: Option<IpAddr>,
    peer_trusted: bool,
    x_forwarded_for: Option<&str>,
) -> Option<IpAddr> {
    let forwarded = x_forwarded_for
        .filter(|_| peer_trusted)
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded.or(peer).map(normalise)
}

fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts<'static> {
        Facts {
            subject: Some(("corp", "alice")),
            client_id: Some("app-1"),
            ip: Some("192.0.2.7".parse().unwrap()),
            route: "github",
            issuer: Some("corp"),
            method: Some("tools/call"),
            tool: Some("delete_repo"),
        }
    }

    #[test]
    fn keys_are_fixed_length_hashes_without_the_facts_in_them() {
        let k = budget_key("per-user", &[RateKey::Subject], &facts()).unwrap();
        assert_eq!(k.0.len(), 32);
        assert!(k.0.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!k.0.contains("alice"));
    }

    #[test]
    fn different_subjects_rules_and_issuers_have_different_budgets() {
        let base = budget_key("r", &[RateKey::Subject], &facts());
        let bob = Facts {
            subject: Some(("corp", "bob")),
            ..facts()
        };
        let other_issuer = Facts {
            subject: Some(("other", "alice")),
            ..facts()
        };
        assert_ne!(base, budget_key("r", &[RateKey::Subject], &bob));
        assert_ne!(base, budget_key("r", &[RateKey::Subject], &other_issuer));
        assert_ne!(base, budget_key("r2", &[RateKey::Subject], &facts()));
        // Another client of the same subject shares the subject's budget.
        let other_client = Facts {
            client_id: Some("app-2"),
            ..facts()
        };
        assert_eq!(base, budget_key("r", &[RateKey::Subject], &other_client));
    }

    #[test]
    fn combined_keys_tell_every_part_apart() {
        let parts = [RateKey::Subject, RateKey::Tool];
        let a = budget_key("r", &parts, &facts());
        let b = budget_key(
            "r",
            &parts,
            &Facts {
                tool: Some("delete_user"),
                ..facts()
            },
        );
        assert_ne!(a, b);
        // Field boundaries matter: ("corp", "alice") is not ("corpa", "lice").
        let shifted = Facts {
            subject: Some(("corpa", "lice")),
            ..facts()
        };
        assert_ne!(a, budget_key("r", &parts, &shifted));
    }

    #[test]
    fn a_missing_fact_means_the_rule_does_not_apply() {
        let anonymous = Facts {
            subject: None,
            ..facts()
        };
        assert_eq!(budget_key("r", &[RateKey::Subject], &anonymous), None);
        let no_tool = Facts {
            tool: None,
            ..facts()
        };
        assert_eq!(
            budget_key("r", &[RateKey::Ip, RateKey::Tool], &no_tool),
            None
        );
        assert!(budget_key("r", &[RateKey::Route], &Facts::default()).is_some());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let peer = Some("10.0.0.1".parse().unwrap());
        let xff = Some("6.6.6.6, 198.51.100.9");
        assert_eq!(client_ip(peer, false, xff), peer);
        assert_eq!(
            client_ip(peer, true, xff),
            Some("198.51.100.9".parse().unwrap())
        );
        assert_eq!(client_ip(peer, true, Some("garbage")), peer);
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_v4_as_v4() {
        let a = client_ip(Some("2001:db8:1:2:aaaa::1".parse().unwrap()), false, None);
        let b = client_ip(Some("2001:db8:1:2:bbbb::9".parse().unwrap()), false, None);
        assert_eq!(a, b);
        assert_eq!(a, Some("2001:db8:1:2::".parse().unwrap()));
        let mapped = client_ip(Some("::ffff:192.0.2.1".parse().unwrap()), false, None);
        assert_eq!(mapped, Some("192.0.2.1".parse().unwrap()));
    }
}
