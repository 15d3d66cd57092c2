//! Per-request cost of a token check: a cached JWT, uncached RS256 and ES256 verification (every
//! token new, so the signature is checked), and a cached introspection answer.
//!
//! `cargo bench -p mcpgate-auth --bench validate`

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate_auth::{RouteTrust, TokenValidator};
use serde_json::json;

const RESOURCE: &str = "https://mcp.example.com/github/mcp";
const ISS: &str = "https://idp.example.com";
/// Distinct tokens per pool; a fresh validator (empty cache) is built when a pool is used up.
const POOL: usize = 1000;

struct Key {
    kid: &'static str,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

fn key(kid: &'static str, alg: Algorithm, encoding: EncodingKey) -> Key {
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Key {
        kid,
        alg,
        encoding,
        jwk: serde_json::to_value(jwk).unwrap(),
    }
}

fn mint(k: &Key, sub: usize) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(k.alg);
    header.kid = Some(k.kid.into());
    header.typ = Some("at+jwt".into());
    let claims = json!({"iss": ISS, "sub": format!("user-{sub}"), "aud": RESOURCE, "exp": now + 3600, "iat": now,
        "scope": "mcp:read mcp:write", "email": "user@example.com", "email_verified": true, "groups": ["mcp-users"]});
    jsonwebtoken::encode(&header, &claims, &k.encoding).unwrap()
}

fn validator(yaml_issuers: &str) -> TokenValidator {
    let yaml = format!(
        "public_url: https://mcp.example.com\nlisteners: [{{bind: '127.0.0.1:1'}}]\nissuers:\n{yaml_issuers}\nroutes:\n  - {{name: r, path: /mcp, upstream: {{url: 'http://127.0.0.1:1/mcp'}}, auth: none}}\n"
    );
    let config = mcpgate_config::parse_str(&yaml, std::path::Path::new("."), &|_| None).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    TokenValidator::new(&config.issuers, reqwest::Client::new())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rsa = key(
        "rsa",
        Algorithm::RS256,
        EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/rsa-issuer.pem")).unwrap(),
    );
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec = key(
        "ec",
        Algorithm::ES256,
        EncodingKey::from_ec_der(&pair.serialize_der()),
    );
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [rsa.jwk, ec.jwk]}).to_string()).unwrap();
    let jwt_issuer = format!(
        "  - name: idp\n    issuer: {ISS}\n    jwks_file: {}\n",
        jwks.display()
    );
    let trust = RouteTrust::new(vec!["idp".into()], RESOURCE.into());
    let fresh_validator = || {
        let v = validator(&jwt_issuer);
        // Load the keys (outside any measurement).
        rt.block_on(v.validate(&mint(&ec, usize::MAX), &trust))
            .unwrap();
        v
    };

    let mut group = c.benchmark_group("token_check");
    group.measurement_time(Duration::from_secs(5));

    let v = fresh_validator();
    let token = mint(&ec, 0);
    rt.block_on(v.validate(&token, &trust)).unwrap();
    group.bench_function("cached_jwt", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(v.validate(&token, &trust).await.unwrap());
                }
                start.elapsed()
            })
        })
    });

    for (name, k) in [("uncached_es256", &ec), ("uncached_rs256", &rsa)] {
        let pool: Vec<String> = (0..POOL).map(|i| mint(k, i)).collect();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut v = fresh_validator();
                for i in 0..iters as usize {
                    if i > 0 && i % POOL == 0 {
                        v = fresh_validator();
                    }
                    let t = &pool[i % POOL];
                    let start = Instant::now();
                    std::hint::black_box(rt.block_on(v.validate(t, &trust)).unwrap());
                    total += start.elapsed();
                }
                total
            })
        });
    }

    let idp = rt
        .block_on(mcpgate_sample::DemoIssuer::start(
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let v = validator(&format!(
        "  - name: idp\n    issuer: {}\n    introspection:\n      endpoint: {}\n      client_id: demo-client\n      client_secret: demo-secret\n",
        idp.issuer_url(),
        idp.introspection_url()
    ));
    let opaque = idp.mint_opaque(json!({"sub": "svc", "aud": RESOURCE, "scope": "mcp:read"}));
    rt.block_on(v.validate(&opaque, &trust)).unwrap();
    group.bench_function("cached_introspection", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(v.validate(&opaque, &trust).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    assert_eq!(
        idp.introspections(),
        1,
        "the introspection bench measured cache hits only"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
