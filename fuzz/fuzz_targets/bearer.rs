//! Fuzzes bearer-token extraction from an `Authorization` header value (`bearer_token`).
//!
//! Properties (function docs, RFC 6750 §2.1): another scheme or no scheme is `Ok(None)`; the
//! Bearer scheme (any case) gives either a non-empty token68 of at most `MAX_TOKEN_LEN` bytes
//! that appears verbatim in the header, or an error; never anything else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_auth::{bearer_token, token_hash, MAX_TOKEN_LEN};

fn token68(t: &[u8]) -> bool {
    let body = t.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body > 0
        && t[..body]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let trimmed = {
        let s = data
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(data.len());
        let e = data
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(s, |i| i + 1);
        &data[s..e.max(s)]
    };
    let scheme = trimmed.split(|&b| b == b' ').next().unwrap_or_default();
    let is_bearer = scheme.eq_ignore_ascii_case(b"bearer");
    match bearer_token(Some(data)) {
        Ok(None) => assert!(!is_bearer, "Bearer scheme read as absent"),
        Ok(Some(t)) => {
            assert!(is_bearer, "token from another scheme");
            assert!(!t.is_empty() && t.len() <= MAX_TOKEN_LEN);
            assert!(token68(t.as_bytes()), "{t:?} is not token68");
            assert!(
                trimmed.ends_with(t.as_bytes()),
                "token not taken from the header's end"
            );
            assert_eq!(token_hash(t).len(), 16);
        }
        Err(_) => assert!(is_bearer, "error for a non-Bearer scheme"),
    }
    assert_eq!(bearer_token(None), Ok(None));
});
