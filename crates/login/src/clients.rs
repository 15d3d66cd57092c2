//! Who a client is — configured, registered dynamically (RFC 7591) or described by its metadata
//! document (CIMD) — and which redirect URIs it may use (exact match; any port on a loopback
//! redirect, RFC 8252 §7.3).

use std::sync::Arc;
use std::time::Duration;

use mcpgate_config::Clients;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cimd::MetadataFetcher;
use crate::secrets::same_secret;
use crate::store::{Kind, Records, StoreError};

/// How the front door knows a client; shown on the consent page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientKind {
    /// Listed in the configuration by the operator.
    Configured,
    /// Registered itself through `/oauth/register`: nobody vouches for its name.
    Unverified,
    /// Its id is the URL of its metadata document, fetched from this verified host.
    Metadata { host: String },
}

/// A client the front door will deal with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    pub name: Option<String>,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// SHA-256 of the secret of a confidential client registered dynamically.
    pub secret_hash: Option<String>,
    /// Whether it may hold refresh tokens (a metadata document must ask for `refresh_token`).
    #[serde(default = "yes")]
    pub refresh: bool,
}

fn yes() -> bool {
    true
}

impl Client {
    /// Whether `uri` is one of the client's redirect URIs (RFC 9700 §4.1.3: exact string
    /// match, except the port of a loopback redirect, which the native app picks at run time).
    pub fn redirect_allowed(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| r == uri || same_loopback_redirect(r, uri))
    }

    /// Whether the client must prove a secret at `/oauth/token`.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    /// Checks the secret presented by a confidential client.
    pub fn secret_matches(&self, secret: Option<&str>) -> bool {
        match (&self.secret_hash, secret) {
            (Some(h), Some(s)) => same_secret(h, &crate::secrets::hash(s)),
            (None, _) => true,
            (Some(_), None) => false,
        }
    }
}

/// RFC 8252 §7.3: `http` on a loopback IP literal, same host, path and query, any port.
/// `localhost` is not a literal (§8.3 recommends against it), so it needs an exact match.
fn same_loopback_redirect(registered: &str, presented: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &Url| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && loopback(&a)
        && a.host() == b.host()
        && a.path() == b.path()
        && a.query() == b.query()
        && b.fragment().is_none()
        && b.username().is_empty()
        && b.password().is_none()
}

/// Why a client is not known.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("unknown client")]
    Unknown,
    #[error("{0}")]
    Metadata(#[from] crate::cimd::CimdError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ClientError {
    pub fn reason(&self) -> &'static str {
        match self {
            ClientError::Unknown => "client_unknown",
            ClientError::Metadata(e) => e.reason,
            ClientError::Store(_) => "login_store_unavailable",
        }
    }
}

/// How long a dynamically registered client is kept. Clients re-register when theirs is gone.
pub const DYNAMIC_CLIENT_TTL: Duration = Duration::from_secs(90 * 86_400);

/// Finds clients by id, in the order the MCP authorization spec gives: configured, metadata
/// document (an https URL), dynamically registered.
pub struct ClientRegistry {
    config: Clients,
    fetcher: Option<MetadataFetcher>,
    records: Records,
}

impl ClientRegistry {
    pub fn new(config: &Clients, records: Records) -> Result<ClientRegistry, String> {
        let fetcher = match config.metadata_documents {
            true => Some(MetadataFetcher::new(&config.fetch)?),
            false => None,
        };
        Ok(ClientRegistry {
            config: config.clone(),
            fetcher,
            records,
        })
    }

    pub fn dynamic_registration(&self) -> bool {
        self.config.dynamic_registration
    }

    pub fn metadata_documents(&self) -> bool {
        self.fetcher.is_some()
    }

    pub async fn find(&self, id: &str) -> Result<Client, ClientError> {
        if let Some(c) = self.config.registered.iter().find(|c| c.client_id == id) {
            return Ok(Client {
                id: c.client_id.clone(),
                name: c.name.clone(),
                kind: ClientKind::Configured,
                redirect_uris: c.redirect_uris.clone(),
                secret_hash: None,
                refresh: true,
            });
        }
        if id.starts_with("https://") {
            let fetcher = self.fetcher.as_ref().ok_or(ClientError::Unknown)?;
            let doc = fetcher.client(id).await?;
            return Ok(metadata_client(&doc));
        }
        if !self.config.dynamic_registration {
            return Err(ClientError::Unknown);
        }
        let found: Option<Client> = self.records.get(Kind::Client, id).await?;
        found.ok_or(ClientError::Unknown)
    }

    pub async fn save_dynamic(&self, client: &Client) -> Result<(), StoreError> {
        self.records
            .put(Kind::Client, &client.id, client, DYNAMIC_CLIENT_TTL)
            .await
    }
}

fn metadata_client(doc: &Arc<crate::cimd::ClientMetadata>) -> Client {
    Client {
        id: doc.client_id.clone(),
        name: doc.client_name.clone(),
        kind: ClientKind::Metadata {
            host: doc.host.clone(),
        },
        redirect_uris: doc.redirect_uris.clone(),
        secret_hash: None,
        refresh: doc.allows_refresh(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            id: "c".into(),
            name: None,
            kind: ClientKind::Configured,
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            secret_hash: None,
            refresh: true,
        }
    }

    #[test]
    fn redirects_match_exactly() {
        let c = client(&["https://app.example/cb"]);
        assert!(c.redirect_allowed("https://app.example/cb"));
        assert!(!c.redirect_allowed("https://app.example/cb/"));
        assert!(!c.redirect_allowed("https://app.example/cb?x=1"));
        assert!(!c.redirect_allowed("https://app.example:8443/cb"));
        assert!(!c.redirect_allowed("https://evil.example/cb"));
    }

    #[test]
    fn a_loopback_redirect_may_use_any_port() {
        let c = client(&["http://127.0.0.1/callback", "http://[::1]:1/cb"]);
        assert!(c.redirect_allowed("http://127.0.0.1:49152/callback"));
        assert!(c.redirect_allowed("http://[::1]:3000/cb"));
        assert!(!c.redirect_allowed("http://127.0.0.1:49152/other"));
        assert!(!c.redirect_allowed("http://127.0.0.2:49152/callback"));
        assert!(!c.redirect_allowed("https://127.0.0.1:49152/callback"));
        assert!(!c.redirect_allowed("http://user@127.0.0.1:1/callback"));
        // `localhost` is a name, not a literal: exact match only.
        let c = client(&["http://localhost:3030/callback"]);
        assert!(c.redirect_allowed("http://localhost:3030/callback"));
        assert!(!c.redirect_allowed("http://localhost:3031/callback"));
    }

    #[test]
    fn a_confidential_client_needs_its_secret() {
        let mut c = client(&[]);
        assert!(c.secret_matches(None));
        c.secret_hash = Some(crate::secrets::hash("s3cret"));
        assert!(c.secret_matches(Some("s3cret")));
        assert!(!c.secret_matches(Some("guess")));
        assert!(!c.secret_matches(None));
    }
}
