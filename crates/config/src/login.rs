//! The `login` section: mcpgate as the OAuth 2.1 authorization server toward MCP clients, in
//! front of an OpenID Connect identity provider — as written, validated and modelled. Signing
//! keys are read and checked here, so `mcpgate check` reports a bad key before anything starts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use url::Url;

use crate::error::key;
use crate::model::{Algorithm, Secret};
use crate::raw::Str;
use crate::validate::{Ctx, UrlRules, Zero};

/// The `login` key as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogin {
    pub issuer: Option<Str>,
    pub signing_keys: Option<Vec<Str>>,
    pub upstream: Option<RawUpstreamIdp>,
    pub clients: Option<RawClients>,
    pub allowed_domains: Option<Vec<Str>>,
    pub require_email_verified: Option<bool>,
    pub allowed_groups: Option<Vec<Str>>,
    pub require_claims: Option<BTreeMap<String, Str>>,
    pub grants: Option<Vec<RawGrant>>,
    pub consent_remember: Option<Str>,
    pub tokens: Option<RawTokens>,
    pub store: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamIdp {
    pub issuer: Option<Str>,
    pub client_id: Option<Str>,
    pub client_secret_file: Option<Str>,
    pub client_secret: Option<Str>,
    pub scopes: Option<Vec<Str>>,
    pub params: Option<BTreeMap<String, Str>>,
    pub groups_claim: Option<Str>,
    pub ca_file: Option<Str>,
    pub timeout: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClients {
    pub metadata_documents: Option<bool>,
    pub dynamic_registration: Option<bool>,
    pub registered: Option<Vec<RawRegistered>>,
    pub fetch: Option<RawFetch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistered {
    pub client_id: Option<Str>,
    pub redirect_uris: Option<Vec<Str>>,
    pub name: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFetch {
    pub timeout: Option<Str>,
    pub max_size: Option<Str>,
    pub allow_private_networks: Option<bool>,
    pub ca_file: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrant {
    pub scopes: Option<Vec<Str>>,
    pub groups: Option<Vec<Str>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokens {
    pub access_ttl: Option<Str>,
    pub refresh_ttl: Option<Str>,
}

/// The front door's validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// The `iss` of every token the front door signs; RFC 8414 metadata hangs off it.
    /// No trailing slash (except a bare origin, which has none either).
    pub issuer: String,
    /// At least one; the first signs, all are published (rotation).
    pub signing_keys: Vec<SigningKey>,
    pub upstream: UpstreamIdp,
    pub clients: Clients,
    pub policy: LoginPolicy,
    /// Which user may be granted which scope; empty: any scope a route advertises.
    pub grants: Vec<Grant>,
    pub consent_remember: Duration,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub store: LoginStore,
}

impl Login {
    /// The issuer name routes use to trust what the front door signs (`auth.issuers: [login]`).
    pub const ISSUER_NAME: &'static str = "login";

    /// The public JWKS (RFC 7517) of the signing keys.
    pub fn jwks_json(&self) -> String {
        let keys: Vec<&serde_json::Value> = self.signing_keys.iter().map(|k| &k.jwk).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }
}

/// A signing key: PKCS#8 DER of a P-256 (ES256) or Ed25519 (EdDSA) private key.
#[derive(Clone, PartialEq)]
pub struct SigningKey {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    pub alg: Algorithm,
    /// The public key as a JWK (with `kid`, `alg`, `use: sig`).
    pub jwk: serde_json::Value,
    pkcs8: Vec<u8>,
}

impl SigningKey {
    /// Reads a PEM PKCS#8 private key: P-256 → ES256, Ed25519 → EdDSA.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, String> {
        signing_key(pem)
    }

    /// The private key; call only where a token is signed.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, {})", self.alg, self.kid)
    }
}

/// The OpenID Connect provider users really sign in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdp {
    /// Exactly as the provider's discovery document and ID tokens name it.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    /// Extra authorize parameters (Google `hd`, Entra `domain_hint`, `prompt`).
    pub params: BTreeMap<String, String>,
    /// The ID-token claim holding the user's groups.
    pub groups_claim: String,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients {
    /// Client ID Metadata Documents: a `client_id` that is an https URL is fetched.
    pub metadata_documents: bool,
    /// RFC 7591 `/register`.
    pub dynamic_registration: bool,
    pub registered: Vec<RegisteredClient>,
    pub fetch: MetadataFetch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub name: Option<String>,
}

/// Guards on fetching a client's metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFetch {
    pub timeout: Duration,
    pub max_size: u64,
    /// Allow documents on loopback, private, link-local and metadata addresses (tests only).
    pub allow_private_networks: bool,
    /// Extra CA bundle trusted for the fetch (besides the system roots).
    pub ca_file: Option<PathBuf>,
}

impl Default for MetadataFetch {
    fn default() -> Self {
        MetadataFetch {
            timeout: Duration::from_secs(5),
            max_size: 16 * 1024,
            allow_private_networks: false,
            ca_file: None,
        }
    }
}

/// Who may log in at all, checked at login and again at every refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Lower-case email domains; empty: any.
    pub allowed_domains: Vec<String>,
    pub require_email_verified: bool,
    /// Any of these groups; empty: any.
    pub allowed_groups: Vec<String>,
    pub require_claims: BTreeMap<String, String>,
}

/// `scopes` may be granted to users in any of `groups` (no groups: to every user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
}

/// Where codes, refresh tokens, consents and registered clients live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LoginStore {
    #[default]
    Memory,
    Redis {
        url: Secret,
    },
}

const PATH: &str = "login";
const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(600);
const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(30 * 86_400);
const DEFAULT_CONSENT: Duration = Duration::from_secs(30 * 86_400);
/// An access token outliving this is a revocation that never comes (one access-token lifetime is
/// how long a user disabled at the IdP keeps access).
const MAX_ACCESS_TTL: Duration = Duration::from_secs(3600);
const ANY_URL: UrlRules = UrlRules {
    path: true,
    query: false,
};

pub(crate) fn login(cx: &mut Ctx, raw: &RawLogin, public_url: Option<&Url>) -> Option<Login> {
    let p = |k: &str| key(PATH, k);
    let issuer = match &raw.issuer {
        Some(s) => cx.http_url(&p("issuer"), s, ANY_URL).map(|u| trim_url(&u)),
        None => public_url.map(trim_url),
    };
    let signing_keys = signing_keys(cx, &p("signing_keys"), &raw.signing_keys);
    let upstream = cx
        .required(&p("upstream"), &raw.upstream)
        .and_then(|u| upstream(cx, &p("upstream"), u));
    let clients = clients(cx, &p("clients"), raw.clients.as_ref());
    let policy = policy(cx, raw);
    let grants = cx
        .optional(&raw.grants, |cx, g| cx.list(&p("grants"), g, grant))
        .map(Option::unwrap_or_default);
    let consent_remember = cx.duration(
        &p("consent_remember"),
        &raw.consent_remember,
        DEFAULT_CONSENT,
        Zero::Allowed,
    );
    let (access_ttl, refresh_ttl) = tokens(cx, raw.tokens.as_ref());
    let store = store(cx, &raw.store);
    Some(Login {
        issuer: issuer?,
        signing_keys: signing_keys?,
        upstream: upstream?,
        clients: clients?,
        policy: policy?,
        grants: grants?,
        consent_remember: consent_remember?,
        access_ttl: access_ttl?,
        refresh_ttl: refresh_ttl?,
        store: store?,
    })
}

/// A URL as an issuer string: `Url` always writes a bare origin with `/`; RFC 8414 issuers
/// compare as strings, so keep the form people write.
fn trim_url(u: &Url) -> String {
    u.as_str().trim_end_matches('/').to_owned()
}

fn signing_keys(cx: &mut Ctx, path: &str, raw: &Option<Vec<Str>>) -> Option<Vec<SigningKey>> {
    let keys = cx.non_empty_list(path, raw, |cx, path, s| {
        let file = cx.readable_file(path, s)?;
        let pem = std::fs::read(&file).ok()?;
        match signing_key(&pem) {
            Ok(k) => Some(k),
            Err(why) => cx.fail(path, format!("{:?}: {why}", file.display().to_string())),
        }
    })?;
    cx.unique(
        "signing key",
        keys.iter()
            .enumerate()
            .map(|(i, k)| (crate::error::index(path, i), k.kid.clone())),
    );
    Some(keys)
}

/// Reads a PEM PKCS#8 private key: P-256 → ES256, Ed25519 → EdDSA.
fn signing_key(pem: &[u8]) -> Result<SigningKey, String> {
    let der = match rustls_pemfile::private_key(&mut &pem[..]) {
        Ok(Some(rustls_pki_types::PrivateKeyDer::Pkcs8(k))) => k.secret_pkcs8_der().to_vec(),
        Ok(Some(_)) => {
            return Err("not a PKCS#8 key (convert with `openssl pkcs8 -topk8 -nocrypt`)".into())
        }
        _ => {
            return Err(
                "no PEM private key found (generate one with `openssl genpkey -algorithm ed25519`)"
                    .into(),
            )
        }
    };
    let rng = ring::rand::SystemRandom::new();
    let p256 = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    if let Ok(pair) = ring::signature::EcdsaKeyPair::from_pkcs8(p256, &der, &rng) {
        use ring::signature::KeyPair;
        let point = pair.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        let thumb = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(x),
            b64(y)
        );
        let kid = b64(&sha256(thumb.as_bytes()));
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y),
            "kid": kid, "alg": "ES256", "use": "sig"});
        return Ok(SigningKey {
            kid,
            alg: Algorithm::ES256,
            jwk,
            pkcs8: der,
        });
    }
    if let Ok(pair) = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
        use ring::signature::KeyPair;
        let x = b64(pair.public_key().as_ref());
        let kid = b64(&sha256(
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#).as_bytes(),
        ));
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x,
            "kid": kid, "alg": "EdDSA", "use": "sig"});
        return Ok(SigningKey {
            kid,
            alg: Algorithm::EdDSA,
            jwk,
            pkcs8: der,
        });
    }
    Err("not a P-256 or Ed25519 key (ES256 and EdDSA are supported)".into())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

fn upstream(cx: &mut Ctx, path: &str, raw: &RawUpstreamIdp) -> Option<UpstreamIdp> {
    let p = |k: &str| key(path, k);
    // Kept as written: ID tokens' `iss` is compared exactly (OIDC Core §3.1.3.7), and some
    // IdPs end theirs with a slash (Auth0) while others do not.
    let issuer = cx.required(&p("issuer"), &raw.issuer).and_then(|s| {
        cx.http_url(&p("issuer"), s, ANY_URL)?;
        cx.string(&p("issuer"), s).map(|v| v.trim().to_owned())
    });
    let client_id = cx.required_string(&p("client_id"), &raw.client_id);
    let client_secret = match (&raw.client_secret, &raw.client_secret_file) {
        (Some(_), Some(_)) => cx.fail(
            path,
            "set `client_secret` or `client_secret_file`, not both",
        ),
        (Some(s), None) => cx
            .non_empty(&p("client_secret"), s)
            .map(|v| Some(Secret::new(v))),
        (None, Some(f)) => cx.file_secret(&p("client_secret_file"), f).map(Some),
        (None, None) => Some(None),
    };
    let scopes = match &raw.scopes {
        None => Some(vec!["openid".into(), "email".into(), "profile".into()]),
        Some(list) => cx.list(&p("scopes"), list, |cx, path, s| cx.non_empty(path, s)),
    };
    if scopes
        .as_ref()
        .is_some_and(|s| !s.iter().any(|s| s == "openid"))
    {
        cx.err(
            &p("scopes"),
            "must include `openid` (the login needs an ID token)",
        );
    }
    let params = cx
        .optional(&raw.params, |cx, m| {
            let mut out = BTreeMap::new();
            for (name, v) in m {
                if RESERVED_PARAMS.contains(&name.as_str()) {
                    return cx.fail(&key(&p("params"), name), "is set by mcpgate itself");
                }
                out.insert(name.clone(), cx.string(&key(&p("params"), name), v)?);
            }
            Some(out)
        })
        .map(Option::unwrap_or_default);
    let groups_claim = match &raw.groups_claim {
        Some(s) => cx.non_empty(&p("groups_claim"), s),
        None => Some("groups".into()),
    };
    let ca_file = cx.optional(&raw.ca_file, |cx, s| cx.readable_file(&p("ca_file"), s));
    let timeout = cx.duration(
        &p("timeout"),
        &raw.timeout,
        Duration::from_secs(10),
        Zero::Rejected,
    );
    Some(UpstreamIdp {
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
        scopes: scopes?,
        params: params?,
        groups_claim: groups_claim?,
        ca_file: ca_file?,
        timeout: timeout?,
    })
}

/// Authorize parameters the front door sets itself; `params` must not override them.
const RESERVED_PARAMS: [&str; 9] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

fn clients(cx: &mut Ctx, path: &str, raw: Option<&RawClients>) -> Option<Clients> {
    let Some(raw) = raw else {
        return Some(Clients {
            metadata_documents: true,
            dynamic_registration: false,
            registered: Vec::new(),
            fetch: MetadataFetch::default(),
        });
    };
    let p = |k: &str| key(path, k);
    let registered = cx
        .optional(&raw.registered, |cx, list| {
            cx.list(&p("registered"), list, registered)
        })
        .map(Option::unwrap_or_default);
    if let Some(list) = &registered {
        cx.unique(
            "client_id",
            list.iter().enumerate().map(|(i, c)| {
                (
                    crate::error::index(&p("registered"), i),
                    c.client_id.clone(),
                )
            }),
        );
    }
    let fetch = cx
        .optional(&raw.fetch, |cx, f| fetch(cx, &p("fetch"), f))
        .map(Option::unwrap_or_default);
    Some(Clients {
        metadata_documents: raw.metadata_documents.unwrap_or(true),
        dynamic_registration: raw.dynamic_registration.unwrap_or(false),
        registered: registered?,
        fetch: fetch?,
    })
}

fn registered(cx: &mut Ctx, path: &str, raw: &RawRegistered) -> Option<RegisteredClient> {
    let p = |k: &str| key(path, k);
    let client_id = cx.required_string(&p("client_id"), &raw.client_id);
    if client_id
        .as_deref()
        .is_some_and(|id| id.starts_with("https://"))
    {
        cx.err(
            &p("client_id"),
            "an https URL is a metadata document's id; pick a plain name",
        );
    }
    let redirect_uris =
        cx.non_empty_list(&p("redirect_uris"), &raw.redirect_uris, |cx, path, s| {
            let v = cx.non_empty(path, s)?;
            match crate::login::redirect_uri_problem(&v) {
                Some(why) => cx.fail(path, why),
                None => Some(v),
            }
        });
    let name = cx.optional(&raw.name, |cx, s| cx.non_empty(&p("name"), s));
    Some(RegisteredClient {
        client_id: client_id?,
        redirect_uris: redirect_uris?,
        name: name?,
    })
}

/// Why a redirect URI is unacceptable (RFC 9700 §2.1: exact, no fragment; https, or http only
/// on loopback per RFC 8252 §7.3; private-use schemes for native apps), or `None`.
pub fn redirect_uri_problem(uri: &str) -> Option<&'static str> {
    let Ok(u) = Url::parse(uri) else {
        return Some("not an absolute URL");
    };
    if u.fragment().is_some() {
        return Some("must not have a fragment");
    }
    match u.scheme() {
        "https" => None,
        "http" => match u.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => None,
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => None,
            Some(url::Host::Domain("localhost")) => None,
            _ => Some("http is allowed only on a loopback address (RFC 8252)"),
        },
        "javascript" | "data" | "file" | "vbscript" => Some("scheme not allowed"),
        // A private-use scheme (`com.example.app:/cb`, RFC 8252 §7.1) needs a dot.
        s if s.contains('.') => None,
        _ => Some("use https, loopback http, or a reverse-domain private-use scheme"),
    }
}

fn fetch(cx: &mut Ctx, path: &str, raw: &RawFetch) -> Option<MetadataFetch> {
    let p = |k: &str| key(path, k);
    let d = MetadataFetch::default();
    let timeout = cx.duration(&p("timeout"), &raw.timeout, d.timeout, Zero::Rejected);
    let max_size = cx.size(&p("max_size"), &raw.max_size, d.max_size);
    let ca_file = cx.optional(&raw.ca_file, |cx, s| cx.readable_file(&p("ca_file"), s));
    Some(MetadataFetch {
        timeout: timeout?,
        max_size: max_size?,
        allow_private_networks: raw.allow_private_networks.unwrap_or(false),
        ca_file: ca_file?,
    })
}

fn policy(cx: &mut Ctx, raw: &RawLogin) -> Option<LoginPolicy> {
    let p = |k: &str| key(PATH, k);
    let lower = |cx: &mut Ctx, path: &str, s: &Str| cx.non_empty(path, s).map(|v| v.to_lowercase());
    let allowed_domains = cx
        .optional(&raw.allowed_domains, |cx, l| {
            cx.list(&p("allowed_domains"), l, lower)
        })
        .map(Option::unwrap_or_default);
    let allowed_groups = cx
        .optional(&raw.allowed_groups, |cx, l| {
            cx.list(&p("allowed_groups"), l, |cx, path, s| cx.non_empty(path, s))
        })
        .map(Option::unwrap_or_default);
    let require_claims = cx
        .optional(&raw.require_claims, |cx, m| {
            let mut out = BTreeMap::new();
            for (name, v) in m {
                out.insert(
                    name.clone(),
                    cx.string(&key(&p("require_claims"), name), v)?,
                );
            }
            Some(out)
        })
        .map(Option::unwrap_or_default);
    Some(LoginPolicy {
        allowed_domains: allowed_domains?,
        require_email_verified: raw.require_email_verified.unwrap_or(true),
        allowed_groups: allowed_groups?,
        require_claims: require_claims?,
    })
}

fn grant(cx: &mut Ctx, path: &str, raw: &RawGrant) -> Option<Grant> {
    let p = |k: &str| key(path, k);
    let scopes = cx.non_empty_list(&p("scopes"), &raw.scopes, |cx, path, s| {
        cx.non_empty(path, s)
    });
    let groups = cx
        .optional(&raw.groups, |cx, l| {
            cx.list(&p("groups"), l, |cx, path, s| cx.non_empty(path, s))
        })
        .map(Option::unwrap_or_default);
    Some(Grant {
        scopes: scopes?,
        groups: groups?,
    })
}

fn tokens(cx: &mut Ctx, raw: Option<&RawTokens>) -> (Option<Duration>, Option<Duration>) {
    let p = |k: &str| key(&key(PATH, "tokens"), k);
    let (access, refresh) = raw.map_or((&None, &None), |t| (&t.access_ttl, &t.refresh_ttl));
    let access_ttl = cx
        .duration(&p("access_ttl"), access, DEFAULT_ACCESS_TTL, Zero::Rejected)
        .and_then(|d| {
            if d > MAX_ACCESS_TTL {
                cx.fail(
                    &p("access_ttl"),
                    "must be at most 1h (a disabled user keeps access this long)",
                )
            } else {
                Some(d)
            }
        });
    let refresh_ttl = cx.duration(
        &p("refresh_ttl"),
        refresh,
        DEFAULT_REFRESH_TTL,
        Zero::Allowed,
    );
    (access_ttl, refresh_ttl)
}

fn store(cx: &mut Ctx, raw: &Option<Str>) -> Option<LoginStore> {
    let Some(s) = raw else {
        return Some(LoginStore::Memory);
    };
    let path = key(PATH, "store");
    let value = cx.non_empty(&path, s)?;
    if value == "memory" {
        return Some(LoginStore::Memory);
    }
    match Url::parse(value.trim()) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.has_host() => {
            Some(LoginStore::Redis {
                url: Secret::new(value.trim()),
            })
        }
        _ => cx.fail(&path, "expected `memory` or a redis:// / rediss:// URL"),
    }
}
