//! The records the flows keep between requests: a login in progress, an issued code, a
//! refresh-token family. Serializable so that Redis can share them between replicas.

use serde::{Deserialize, Serialize};

use crate::clients::Client;
use crate::idp::User;

/// The user as the front door remembers them (the ID token's claims are not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

impl From<&User> for UserRecord {
    fn from(u: &User) -> UserRecord {
        UserRecord {
            sub: u.sub.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            groups: u.groups.clone(),
        }
    }
}

/// What `/oauth/authorize` asked for, checked; shared by the pending login and the code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub client: Client,
    pub redirect_uri: String,
    /// The client's own `state`, returned untouched.
    pub state: Option<String>,
    pub code_challenge: String,
    /// The route's canonical resource URL: the token's audience.
    pub resource: String,
    pub route: String,
    /// The `scope` parameter as sent, if any.
    pub requested_scope: Option<String>,
}

/// A login between `/oauth/authorize` and the code, keyed by the hash of the browser cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub grant: Grant,
    /// The front door's own round trip to the IdP.
    pub idp_state: String,
    pub nonce: String,
    pub idp_verifier: String,
    /// Set once the IdP has answered and the user passed the login policy.
    pub user: Option<UserRecord>,
    pub idp_refresh: Option<String>,
    /// The scopes to grant (space-separated), once the user is known.
    pub scope: Option<String>,
    /// The consent form's CSRF token, once the page was shown.
    pub csrf: Option<String>,
}

/// An issued authorization code (single use, ≤ 60 s), keyed by the code's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    pub grant: Grant,
    pub user: UserRecord,
    pub scope: String,
    pub idp_refresh: Option<String>,
}

/// One login of one client: the refresh tokens rotated from it share the family.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Family {
    pub id: String,
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    pub user: UserRecord,
    /// The IdP's refresh token: how each refresh re-checks the user at the IdP.
    pub idp_refresh: Option<String>,
}

/// A live refresh token, keyed by its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub family: String,
    pub client_id: String,
}
